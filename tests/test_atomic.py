"""Atomic writes keep the usual file permissions (a package must be readable by others)."""

from __future__ import annotations

import os

import pytest

from kayan import atomic
from kayan.errors import KayanError


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic.write_text(tmp_path / "a.txt", "x")
        with atomic.folder(tmp_path / "out") as tmp:
            (tmp / "b.txt").write_text("y")
    finally:
        os.umask(mask)
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "out").stat().st_mode & 0o777) == "0o755"


def test_weights_written_0600_by_a_library_become_readable_and_umask_is_untouched(tmp_path):
    import safetensors.torch
    import torch

    mask = os.umask(0o022)
    try:
        with atomic.folder(tmp_path / "pkg") as tmp:
            safetensors.torch.save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))  # safetensors makes 0600
            atomic.write_text(tmp / "kayan.json", "{}")
        assert os.umask(0o022) == 0o022  # never changed behind the caller's back
    finally:
        os.umask(mask)
    assert oct((tmp_path / "pkg" / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "pkg" / "kayan.json").stat().st_mode & 0o777) == "0o644"


_WRITER = """
import sys, pathlib
from kayan.atomic import folder
target = pathlib.Path(sys.argv[1])
for i in range(int(sys.argv[3])):
    with folder(target) as tmp:
        (tmp / "who").write_text(sys.argv[2] + str(i))
"""

_READER = """
import os, sys, time
target, missing, checks = sys.argv[1], 0, 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    checks += 1
    missing += not os.path.isdir(target)
print(missing, checks)
"""


def test_concurrent_writers_and_a_reader_of_one_folder(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "out"
    with atomic.folder(target) as tmp:
        (tmp / "who").write_text("first")
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(target), "4"], stdout=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(target), name, "40"], stderr=subprocess.PIPE, text=True)
               for name in "abc"]
    errors = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0], errors
    missing, checks = map(int, reader.communicate(timeout=60)[0].split())
    assert checks > 0 and missing == 0
    assert (target / "who").read_text() in {f"{n}39" for n in "abc"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or .old folder left behind


def test_second_writer_without_overwrite_fails_clearly(tmp_path):
    target = tmp_path / "pkg"
    with pytest.raises(KayanError, match="already exists .*pass --overwrite"):
        with atomic.folder(target, overwrite=False) as first:
            (first / "a").write_text("1")
            with atomic.folder(target, overwrite=False) as second:  # another writer finishes first
                (second / "b").write_text("2")
    assert [p.name for p in target.iterdir()] == ["b"] and sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]


@pytest.mark.parametrize("where", ["under_a_file", "read_only"])
def test_unwritable_output_is_one_kayan_error(tmp_path, where):
    if where == "under_a_file":
        (tmp_path / "file").write_text("x")
        target = tmp_path / "file" / "out"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (tmp_path / "ro").mkdir(mode=0o555)
        target = tmp_path / "ro" / "out"
    with pytest.raises(KayanError, match=f"cannot write {target}"):
        atomic.write_text(target / "a.txt", "x")
    with pytest.raises(KayanError, match=f"cannot write {target}"):
        with atomic.folder(target):
            pass


def test_read_only_file_system_is_one_kayan_error(tmp_path, monkeypatch):
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(KayanError, match=f"cannot write {tmp_path / 'out'}: Read-only file system; choose a writable folder"):
        with atomic.folder(tmp_path / "out"):
            pass
    with pytest.raises(KayanError, match="cannot write .*a.txt: Read-only file system"):
        atomic.write_text(tmp_path / "a.txt", "x")
