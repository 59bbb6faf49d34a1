"""training.refit: after dev selection, the final model is trained again on train + dev."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kayan.data import corpora
from kayan.errors import KayanError
from kayan.training import train
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def refit_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("refit")
    summary = train(fast_config(out, "training.refit=true", "training.epochs=2"))
    return Path(summary["run_dir"]), summary


def test_run_folder_keeps_both_models_and_says_which_is_model(refit_run):
    run_dir, summary = refit_run
    for name in ("model/model.safetensors", "model-dev-selected/model.safetensors", "selection.json",
                 "test_metrics.json", "test_metrics_dev_selected.json", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert summary["model"] == "refit"
    train_n, dev_n = len(corpora.load_split("sample:train").sentences), len(corpora.load_split("sample:dev").sentences)
    assert summary["refit_train_sentences"] == train_n + dev_n
    meta = json.loads((run_dir / "model" / "kayan.json").read_text())
    assert meta["training_data"]["train"] == ["sample:train", "sample:dev"]
    selected = json.loads((run_dir / "model-dev-selected" / "kayan.json").read_text())
    assert selected["training_data"]["train"] == ["sample:train"]
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert summary["test_f1"] == report["default"]["micro"]["f1"]
    assert summary["test_f1_dev_selected"] == json.loads((run_dir / "test_metrics_dev_selected.json").read_text())["default"]["micro"]["f1"]


def test_refit_trains_the_selected_epochs_on_more_sentences(refit_run):
    run_dir, summary = refit_run
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best = max(lines, key=lambda line: line["dev_f1"])  # the first of equals, as the Trainer keeps it
    assert summary["selected_epochs"] == pytest.approx(best["epoch"], abs=1e-3)
    assert best["step"] <= summary["refit_steps"] < 2 * best["step"]  # the same epochs over 10% more sentences


def test_resume_after_the_selection_phase_redoes_only_the_refit(refit_run, tmp_path):
    run_dir, summary = refit_run
    copy = tmp_path / "quickstart"
    shutil.copytree(run_dir, copy)
    for name in ("model", "refit-checkpoints"):
        shutil.rmtree(copy / name)
    (copy / "summary.json").unlink()
    selection_checkpoints = sorted(p.name for p in (copy / "checkpoints").iterdir())
    again = train(fast_config(tmp_path, "training.refit=true", "training.epochs=2"), resume=True)
    assert again["test_f1"] == summary["test_f1"] and again["refit_steps"] == summary["refit_steps"]
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == selection_checkpoints
    assert (copy / "model" / "model.safetensors").is_file()


def test_resume_from_a_damaged_refit_checkpoint_is_refused_before_anything_changes(refit_run, tmp_path):
    run_dir, _ = refit_run
    copy = tmp_path / "quickstart"
    shutil.copytree(run_dir, copy)
    last = sorted((copy / "refit-checkpoints").iterdir())[-1]
    (last / "trainer_state.json").unlink()  # the refit was killed while saving this checkpoint
    before = {path: path.read_bytes() if path.is_file() else None for path in sorted(copy.rglob("*"))}
    with pytest.raises(KayanError) as error:
        train(fast_config(tmp_path, "training.refit=true", "training.epochs=2"), resume=True)
    assert str(error.value).startswith(f"{last}: cannot resume from this checkpoint (no trainer_state.json"), error.value
    assert {path: path.read_bytes() if path.is_file() else None for path in sorted(copy.rglob("*"))} == before
