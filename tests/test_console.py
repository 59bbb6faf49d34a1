"""What `kayan train` shows: a progress bar and aligned evaluation lines; library noise in train.log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST

REPO = Path(__file__).resolve().parent.parent
EVALUATION_LINE = re.compile(r"^epoch +\d+\.\d\d  step +\d+  loss +(\S+)  dev P \d\.\d{4}  R \d\.\d{4}  F1 \d\.\d{4}( +best)?$", re.M)


def _train(tmp_path: Path, *flags: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    overrides = [arg for item in FAST for arg in ("--set", item)]
    command = [sys.executable, "-m", "kayan.cli", "train", str(REPO / "configs" / "quickstart.yaml"), *overrides,
               "--set", "training.epochs=2", "--set", f"output.dir={tmp_path}", *flags]
    env = None if cache is None else {**os.environ, "KAYAN_CACHE_DIR": str(cache)}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)


@pytest.fixture(scope="module")
def window_cache(tmp_path_factory):
    """A window cache of its own, empty when the first run of this module starts (first use)."""
    return tmp_path_factory.mktemp("window-cache")


@pytest.fixture(scope="module")
def normal(tmp_path_factory, window_cache):
    out = tmp_path_factory.mktemp("normal")
    return out, _train(out, cache=window_cache)


@pytest.fixture(scope="module")
def cached(tmp_path_factory, window_cache, normal):
    """The same run again, its windows read from the cache the first one filled."""
    out = tmp_path_factory.mktemp("cached")
    return out, _train(out, cache=window_cache)


def _console(stderr: str, out: Path) -> list[str]:
    """What the terminal kept, progress-bar frames aside, with the run's folder written OUT."""
    lines = (line.strip() for line in re.split(r"[\r\n]", stderr.replace(str(out), "OUT")))
    return [line for line in lines if line and not line.startswith("train:")]


@pytest.mark.parametrize("which", ["normal", "cached"])
def test_one_aligned_line_per_evaluation_and_no_library_noise(which, request):
    out, done = request.getfixturevalue(which)
    assert done.returncode == 0, done.stderr
    lines = EVALUATION_LINE.findall(done.stderr)
    assert len(lines) == 2  # epochs=2, one evaluation each
    for noise in ("{'eval_f1'", "{'loss'", "Writing model shards", "LOAD REPORT", "***** Running training", "Caching processed",
                  "tokenizing windows"):
        assert noise not in done.stderr, noise
    assert "train:" in done.stderr  # the progress bar


def test_first_use_and_cached_use_print_the_same_console(normal, cached, window_cache):
    built = [path for path in window_cache.rglob("*.arrow") if not path.name.startswith(".")]
    assert len(built) == 1  # one set of windows: the second run read the first one's
    assert _console(cached[1].stderr, cached[0]) == _console(normal[1].stderr, normal[0])


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
