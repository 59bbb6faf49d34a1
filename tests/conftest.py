"""Shared fixtures: where ../shared lives, and skips with a reason when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KAYAN_SHARED_DIR", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
ANERCORP_DIR = SHARED_DATA / "ANERcorp-CamelLabSplits"
ANERCORP_TRAIN = ANERCORP_DIR / "ANERCorp_CamelLab_train.reconstructed.txt"
ANERCORP_TEST = ANERCORP_DIR / "ANERCorp_CamelLab_test.txt"
CONLLEVAL = SHARED / "tools" / "conlleval.pl"
SAMPLE_DIR = REPO / "data" / "sample"

needs_shared = pytest.mark.skipif(
    not ANERCORP_TEST.exists(),
    reason=f"../shared corpora not found at {SHARED_DATA} (set KAYAN_SHARED_DIR); CI always has them",
)


@pytest.fixture(autouse=True)
def _kayan_data_dir(monkeypatch, tmp_path_factory):
    """Point the corpus registry at ../shared/data, as a user would with KAYAN_DATA_DIR, and keep the
    window cache (kayan.hffeatures) in this session's temporary folder, not the user's home."""
    monkeypatch.setenv("KAYAN_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("KAYAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kayan-cache"))


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The tiny run and packages of tests/tiny_package.py (run, package, noisy), built once per session."""
    from tests.tiny_package import build

    return build(tmp_path_factory)


@pytest.fixture(scope="session")
def seed_runs(built, tmp_path_factory):
    """Two tiny runs that differ only in their seed (``built["run"]``'s 12345, and 7): ensemble members."""
    from tests.tiny_package import build_seed_run

    return [built["run"], build_seed_run(tmp_path_factory, 7)]
