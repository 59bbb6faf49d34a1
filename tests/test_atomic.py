"""Atomic writes keep the usual file permissions (a package must be readable by others)."""

from __future__ import annotations

import os

from kayan import atomic


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
