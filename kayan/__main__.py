"""``kayan`` and ``python -m kayan``: the command, with Ctrl-C honoured from the first instant.

The console script starts here rather than in :mod:`kayan.cli` because importing the command's
modules takes a moment, and a Ctrl-C during an import would otherwise end in a traceback: here it
is the one line and status 130 of any interrupted command. (Only this file's few lines run before.)
"""

import sys

INTERRUPTED = 130


def main(argv=None) -> int:
    """Import and run :func:`kayan.cli.main`; a KeyboardInterrupt while importing it is status 130."""
    try:
        from kayan.cli import main as run  # inside the try: a Ctrl-C during this import is caught

        status = run(argv)
    except KeyboardInterrupt:  # kayan.cli.main answers those of the commands; these came before it could
        print("kayan: interrupted", file=sys.stderr)
        status = INTERRUPTED
    if status == INTERRUPTED:
        _forget_the_caught_interrupt()
    return status


def _forget_the_caught_interrupt() -> None:
    """Keep ``python -m kayan`` interrupted at status 130, not killed by SIGINT.

    CPython (3.11) marks a KeyboardInterrupt as unhandled whenever one leaves code run from a string
    (``exec``: a dataclass's generated ``__init__``, met while a module imports), even though the command
    caught it; ``python -m`` then ends by killing itself with SIGINT instead of exiting 130. Running a
    string that raises nothing clears the mark.
    """
    exec("pass")


if __name__ == "__main__":
    sys.exit(main())
