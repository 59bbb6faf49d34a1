"""What `kayan train` shows: a progress bar and aligned evaluation lines; library noise in train.log."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST

REPO = Path(__file__).resolve().parent.parent
EVALUATION_LINE = re.compile(r"^epoch +\d+\.\d\d  step +\d+  loss +(\S+)  dev P \d\.\d{4}  R \d\.\d{4}  F1 \d\.\d{4}( +best)?$", re.M)


def _train(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    overrides = [arg for item in FAST for arg in ("--set", item)]
    command = [sys.executable, "-m", "kayan.cli", "train", str(REPO / "configs" / "quickstart.yaml"), *overrides,
               "--set", "training.epochs=2", "--set", f"output.dir={tmp_path}", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)


@pytest.fixture(scope="module")
def normal(tmp_path_factory):
    out = tmp_path_factory.mktemp("normal")
    return out, _train(out)


def test_one_aligned_line_per_evaluation_and_no_library_noise(normal):
    out, done = normal
    assert done.returncode == 0, done.stderr
    lines = EVALUATION_LINE.findall(done.stderr)
    assert len(lines) == 2  # epochs=2, one evaluation each
    for noise in ("{'eval_f1'", "{'loss'", "Writing model shards", "LOAD REPORT", "***** Running training", "Caching processed"):
        assert noise not in done.stderr, noise
    assert "train:" in done.stderr  # the progress bar


def test_library_noise_goes_to_train_log(normal):
    out, _ = normal
    log = (out / "quickstart" / "train.log").read_text(encoding="utf-8")
    assert "Running training" in log and '"eval_f1"' in log
    assert EVALUATION_LINE.search(re.sub(r"^\S+ \S+ kayan INFO ", "", log, flags=re.M))


def test_the_summary_says_scores_and_where_things_went(normal):
    out, done = normal
    assert re.search(r"^best dev F1 \d\.\d{4}; test F1 \d\.\d{4}", done.stdout, re.M)
    assert f"run folder  {out / 'quickstart'}" in done.stdout and "train.log" in done.stdout


def test_quiet_shows_only_the_summary(tmp_path):
    done = _train(tmp_path, "--quiet")
    assert done.returncode == 0, done.stderr
    assert not EVALUATION_LINE.search(done.stderr) and "train:" not in done.stderr
    assert "best dev F1" in done.stdout and "curves:" not in done.stdout + done.stderr


def test_verbose_and_quiet_exclude_each_other(tmp_path):
    done = _train(tmp_path, "--quiet", "--verbose")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr
