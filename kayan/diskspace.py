"""A full disk, as the libraries that write model files report it.

Python's own writes raise ``OSError`` with errno 28 (ENOSPC) or 122 (EDQUOT), which the command line already
turns into one line. The model files are written by libraries that do not: safetensors raises its own
``SafetensorError`` whose text ends in ``(os error 28)``, and ``torch.save`` a ``RuntimeError`` about the
writer's position (``unexpected pos ...``, from ``basic_ios::clear: iostream error``) with no errno at all.
For that last one only the free space left on the disk tells a full disk from a bug.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

LOW_SPACE = 1 << 30  # below 1 GiB free, a failed torch.save is taken for a full disk (a me5-small checkpoint is ~0.7 GB)
_FULL_TEXTS = ("No space left on device", "os error 28", "Disk quota exceeded", "os error 122")
_TORCH_WRITER_TEXTS = ("inline_container", "PytorchStreamWriter", "iostream error")


def _chain(error: BaseException | None):
    """``error`` and the exceptions it was raised from or during, once each."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def nearest_existing(path: str | os.PathLike) -> Path:
    """``path`` itself when it exists, else its nearest existing parent: where a write to it would land.

    >>> nearest_existing("/no-such-folder/run/checkpoint-1") == Path("/")
    True
    """
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(folder: str | os.PathLike) -> int:
    """Free bytes on the disk holding ``folder`` (its nearest existing parent when it is not there yet)."""
    return shutil.disk_usage(nearest_existing(folder)).free


def is_full_disk(error: BaseException, folder: str | os.PathLike | None = None) -> bool:
    """Whether ``error`` says the disk (of ``folder``, where the failed write went) is full.

    >>> is_full_disk(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> is_full_disk(RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"))
    True
    >>> is_full_disk(ValueError("a bug"))
    False
    >>> is_full_disk(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"))  # no folder: unknown
    False
    """
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(link) for text in _FULL_TEXTS):
            return True
    torch_writer = any(text in str(link) for link in _chain(error) for text in _TORCH_WRITER_TEXTS)
    return torch_writer and folder is not None and free_bytes(folder) < LOW_SPACE
