"""Reading whole files: a UTF-8 text (a BOM skipped), a JSON object, or a file's sha256; a file that cannot be
read fails in one line naming it."""

from __future__ import annotations

import hashlib
import json
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


def read_json_object(path: Path, *, fix: str) -> dict:
    """A JSON file that holds an object, as a dict; anything else fails in one line that ends with ``fix``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "k.json"
    >>> _ = p.write_text("[1]")
    >>> read_json_object(p, fix="re-package the model")
    Traceback (most recent call last):
    kayan.errors.KayanError: ...k.json: expected a JSON object; re-package the model
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KayanError(f"{path}: not valid JSON ({error}); {fix}") from None
    if not isinstance(data, dict):
        raise KayanError(f"{path}: expected a JSON object; {fix}")
    return data


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, as hex (corpus files against the registry, weights against kayan.json)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
