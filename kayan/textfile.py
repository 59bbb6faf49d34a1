"""Read a whole UTF-8 text file, or fail with one line naming it (a BOM is skipped)."""

from __future__ import annotations

import os
from pathlib import Path

from kayan.errors import KayanError


def read_utf8(path: str | os.PathLike, *, what: str = "the file") -> str:
    """The text of ``path``; a missing file or bytes that are not UTF-8 raise :class:`KayanError`.

    Args:
        path: the file.
        what: how the message calls the file (``"the predictions file"``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.txt"
    >>> _ = p.write_bytes("\\ufeffبغداد".encode("utf-8"))
    >>> read_utf8(p)
    'بغداد'
    """
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise KayanError(f"{path}: cannot read {what} ({error.strerror}); check the path") from None
    except UnicodeDecodeError as error:
        raise KayanError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None
