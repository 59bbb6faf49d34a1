"""Kayan against the plain transformers recipe on ANERcorp; the code is the ``benchmark`` package
beside this file (scripts/benchmark/), whose docstring says what is measured and how.

    python scripts/benchmark.py --encoder tiny --quick
"""

from benchmark.run import main  # scripts/ is on the path when this file runs; the package wins over this module

if __name__ == "__main__":
    main()
