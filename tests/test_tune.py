"""kayan tune on the tiny model: trials as run folders, dev only, pruning, budgets, resume, bad spaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from kayan import corpora
from kayan.training import train
from tests.test_training import fast_config


@pytest.fixture
def loaded(monkeypatch):
    """Every corpus ref read from now on."""
    refs = []
    real = corpora.load

    def spy(ref, *args, **kwargs):
        refs.append(ref)
        return real(ref, *args, **kwargs)

    monkeypatch.setattr(corpora, "load", spy)
    return refs


def test_training_hook_stops_after_an_evaluation_and_test_stays_unread(tmp_path, loaded):
    seen = []
    summary = train(fast_config(tmp_path), on_evaluate=lambda line: seen.append(line) or True, test=False)
    assert [line["epoch"] for line in seen] == [1.0] and "dev_f1" in seen[0]
    assert summary["epochs"] == 1.0 and summary["test_f1"] is None
    assert not (Path(summary["run_dir"]) / "test_metrics.json").exists()
    assert loaded and not any(ref.endswith(":test") for ref in loaded)
