"""Atomic writes: an output is either the previous complete version or the new one, never half.

Files are written to a unique temporary name in the same folder, flushed, then renamed over the
target (rename is atomic on POSIX within a filesystem). Folders are built beside the target under a
unique name and swapped in at the end, under a lock on the parent folder, so that concurrent writers
of one target take turns. Where Linux offers ``renameat2(RENAME_EXCHANGE)`` the swap is one atomic
exchange, so a reader never finds the target missing; elsewhere the old folder is renamed aside
first. Files and folders get the usual permissions (0666 / 0777 less the umask), whatever mode the
library that wrote them chose, so that others may read a package; the process umask is never changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import tempfile
from glob import escape as glob_escape
from pathlib import Path
from typing import Callable, Iterator

from kayan.errors import KayanError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _umask() -> int:
    """The process umask, read from /proc where possible (setting it to read it races with threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # fallback where /proc is missing (macOS): restored at once
    os.umask(mask)
    return mask


def _unwritable(path: Path, error: OSError) -> KayanError:
    """The one-line error for an output that cannot be created (read-only, under a file, no space)."""
    return KayanError(f"cannot write {path}: {error.strerror or error}; choose a writable folder "
                      "(check the path, its permissions and free space)")


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(path, error) from None


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = write_text(p, "كيان")
    >>> p.read_text(encoding="utf-8")
    'كيان'
    """
    path = Path(path)
    _make_parent(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    except OSError as error:
        raise _unwritable(path, error) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _usual_permissions(root: Path) -> None:
    """Give every file under ``root`` mode 0666 and every folder 0777, less the umask (keeping x bits)."""
    mask = _umask()
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, (0o777 if executable else 0o666) & ~mask)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` (flock on the folder itself: no lock file is left behind)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; swaps are still atomic renames
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(tmp: Path, path: Path, overwrite: bool, check: Callable[[Path], None] | None) -> None:
    """Put the finished folder ``tmp`` at ``path`` (called under the parent's lock)."""
    if not path.exists() and not path.is_symlink():
        os.rename(tmp, path)
        return
    if not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise KayanError(f"{path} already exists (another process may have just written it); "
                         "pass --overwrite to replace it, or choose another folder")
    if check is not None:
        check(path)
    if path.is_dir() and not path.is_symlink() and _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous content
        return
    old = path.with_name(f".{path.name}.{secrets.token_hex(6)}.old")
    os.rename(path, old)
    os.rename(tmp, path)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (one we may not signal runs too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(path: Path) -> list[Path]:
    """Remove the half-built folders of ``path`` left by processes that died while writing it; returns them.

    :func:`folder` names its temporary folder ``.NAME.PID.XXXX.partial``: one whose process is gone
    (killed outright, or by a signal it could not clean up after) is no one's. Folders of live
    processes, and any other name, are left alone.
    """
    removed = []
    for candidate in path.parent.glob(f".{glob_escape(path.name)}.*.partial"):
        pid = candidate.name[len(path.name) + 2:].split(".", 1)[0]
        if candidate.is_dir() and not candidate.is_symlink() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def folder(path: str | os.PathLike, *, overwrite: bool = True,
           check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Build a folder under a temporary name and swap it in at ``path`` when the block ends.

    If the block raises (or the process dies), ``path`` keeps its previous complete content,
    or stays absent; the temporary folder is removed when possible. Two processes writing the
    same ``path`` take turns; readers never see it missing (where the system can exchange
    folders atomically).

    Args:
        path: the folder to write.
        overwrite: replace an existing non-empty ``path``; when False and ``path`` exists by the
            time the new folder is ready (another process wrote it meanwhile), raise KayanError.
        check: a last look at an existing ``path``, under the lock just before the swap; it raises
            to keep ``path`` as it is (:func:`kayan.outputs.folder` refuses what Kayan did not write).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with folder(target) as tmp:
    ...     _ = (tmp / "a.txt").write_text("1")
    >>> sorted(p.name for p in target.iterdir())
    ['a.txt']
    """
    path = Path(path)
    _make_parent(path)
    sweep_stale(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent))
    except OSError as error:
        raise _unwritable(path, error) from None
    try:
        yield tmp
        _usual_permissions(tmp)  # mkdtemp makes 0700 and safetensors writes 0600; others may read a package
        with _locked(path.parent):
            _swap_in(tmp, path, overwrite, check)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
