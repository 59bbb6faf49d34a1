"""Shared fixtures and helpers: a cold, private home for the whole session, where ../shared lives (and
skips with a reason when it does not), the tiny packages, a fast training config, and the conlleval.pl
comparison."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KAYAN_SHARED_DIR", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"

# Every cache and config folder the suite (and the commands it runs) could touch, in a folder made fresh
# for this session: set before anything imports datasets, transformers or matplotlib (they read these
# variables at import), so no test reads or writes the user's home and no run is helped by an earlier one.
# `make test`, CI and a bare `pytest` all get the same. KAYAN_DATA_DIR points the corpus registry at
# ../shared/data, as a user would.
# A process the suite starts (a probe importing this module) keeps the session's folder: it changes nothing.
_INHERITED = os.environ.get("KAYAN_TESTS_COLD")
COLD = Path(_INHERITED) if _INHERITED else Path(tempfile.mkdtemp(prefix="kayan-tests-"))
os.environ["KAYAN_TESTS_COLD"] = str(COLD)
ISOLATED_ENV = {
    "HOME": COLD / "home", "KAYAN_CACHE_DIR": COLD / "kayan", "HF_HOME": COLD / "huggingface",
    "HF_DATASETS_CACHE": COLD / "huggingface" / "datasets", "XDG_CACHE_HOME": COLD / "cache",
    "XDG_CONFIG_HOME": COLD / "config", "MPLCONFIGDIR": COLD / "matplotlib", "KAYAN_DATA_DIR": SHARED_DATA,
}
for _name, _folder in ISOLATED_ENV.items():
    os.environ[_name] = str(_folder)
(COLD / "home").mkdir(exist_ok=True)

import pytest  # noqa: E402  (after the environment above)

from kayan.config import load_config  # noqa: E402
from kayan.evaluation.metrics import score  # noqa: E402

ANERCORP_DIR = SHARED_DATA / "ANERcorp-CamelLabSplits"
ANERCORP_TRAIN = ANERCORP_DIR / "ANERCorp_CamelLab_train.reconstructed.txt"
ANERCORP_TEST = ANERCORP_DIR / "ANERCorp_CamelLab_test.txt"
CONLLEVAL = SHARED / "tools" / "conlleval.pl"
SAMPLE_DIR = REPO / "kayan" / "data" / "sample"

needs_shared = pytest.mark.skipif(
    not ANERCORP_TEST.exists(),
    reason=f"../shared corpora not found at {SHARED_DATA} (set KAYAN_SHARED_DIR); CI always has them",
)


def pytest_unconfigure(config):
    if not _INHERITED:
        shutil.rmtree(COLD, ignore_errors=True)


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


# ---------------------------------------------------------------- tiny training runs

FAST = [
    "model.tiny.vocab_size=600", "model.tiny.hidden_size=32", "model.tiny.num_hidden_layers=1",
    "model.tiny.intermediate_size=64", "training.window=64", "training.stride=16", "training.epochs=3",
    "training.batch_size=16", "training.learning_rate=1e-2", "training.logging_steps=5",
]
"""Config overrides that make the quickstart recipe train a tiny model in seconds."""


def fast_config(tmp_path: Path, *extra: str):
    """The quickstart recipe with :data:`FAST`, writing its run folder under ``tmp_path``."""
    return load_config(REPO / "configs" / "quickstart.yaml", [*FAST, f"output.dir={tmp_path}", *extra])


# ---------------------------------------------------------------- conlleval.pl and word-tag files

needs_perl = pytest.mark.skipif(
    shutil.which("perl") is None or not CONLLEVAL.exists(), reason="perl or conlleval.pl missing"
)


def read_two_columns(path):
    """A minimal reader of ``word tag`` files (the project's reader has its own tests)."""
    sentences, words = [], []
    for line in path.read_text(encoding="utf-8-sig").splitlines() + [""]:
        if line.strip():
            words.append(tuple(line.split()))
        elif words:
            sentences.append(([w for w, _ in words], [t for _, t in words]))
            words = []
    return sentences


def corrupt(gold, *, seed=7, rate=0.08, types=("PERS", "LOC", "ORG", "MISC")):
    """Seeded random tag flips, producing ill-formed sequences too (I- after O, B-X I-Y ...)."""
    rng = random.Random(seed)
    labels = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    return [[rng.choice(labels) if rng.random() < rate else tag for tag in sent] for sent in gold]


def _conlleval(gold, pred, tmp_path):
    """conlleval.pl's report on ``word gold predicted`` lines written from the tags."""
    lines = []
    for n, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        lines += [f"w{n}_{i} {g} {p}" for i, (g, p) in enumerate(zip(gold_tags, pred_tags))] + [""]
    path = tmp_path / "conlleval.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with path.open("rb") as handle:
        out = subprocess.run(["perl", str(CONLLEVAL)], stdin=handle, capture_output=True, check=True, text=True)
    return out.stdout


def _parse_conlleval(text):
    overall = re.search(r"accuracy:\s*([\d.]+)%; precision:\s*([\d.]+)%; recall:\s*([\d.]+)%; FB1:\s*([\d.]+)", text)
    types = {
        m[1]: tuple(float(x) for x in m.groups()[1:])
        for m in re.finditer(r"^\s*(\S+): precision:\s*([\d.]+)%; recall:\s*([\d.]+)%; FB1:\s*([\d.]+)\s+(\d+)$",
                             text, re.M)
    }
    return tuple(float(x) for x in overall.groups()), types


def assert_equals_conlleval(gold, pred, tmp_path):
    """kayan.evaluation.metrics.score gives conlleval.pl's accuracy, overall and per-type P/R/F1 (to its 2 decimals)."""
    (accuracy, precision, recall, f1), types = _parse_conlleval(_conlleval(gold, pred, tmp_path))
    ours = score(gold, pred)
    assert f"{100 * ours['accuracy']:.2f}" == f"{accuracy:.2f}"
    micro = ours["micro"]
    ours_overall = [f"{100 * micro[k]:.2f}" for k in ("precision", "recall", "f1")]
    assert ours_overall == [f"{x:.2f}" for x in (precision, recall, f1)]
    assert set(types) == set(ours["types"])
    for kind, (p, r, f, found) in types.items():
        row = ours["types"][kind]
        assert [f"{100 * row[k]:.2f}" for k in ("precision", "recall", "f1")] == [f"{x:.2f}" for x in (p, r, f)], kind
        assert row["predicted"] == found
