"""``kayan`` and ``python -m kayan``: the command, with Ctrl-C honoured from the first instant.

The console script starts here rather than in :mod:`kayan.cli` because importing the command's
modules takes a moment, and a Ctrl-C during an import would otherwise end in a traceback: here it
is the one line and status 130 of any interrupted command. (Only this file's few lines run before.)
"""

import sys


def main(argv=None) -> int:
    """Import and run :func:`kayan.cli.main`; a KeyboardInterrupt while importing it is status 130."""
    try:
        from kayan.cli import main as run  # inside the try: a Ctrl-C during this import is caught

        return run(argv)
    except KeyboardInterrupt:  # kayan.cli.main answers those of the commands; these came before it could
        print("kayan: interrupted", file=sys.stderr)
        exec("pass")  # as kayan.cli._forget_the_caught_interrupt: python -m would otherwise end killed by SIGINT
        return 130


if __name__ == "__main__":
    sys.exit(main())
