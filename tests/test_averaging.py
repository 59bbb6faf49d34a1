"""Averaged weights (``training.ema_decay``): the average by hand, what dev scores, what the run keeps, resume, bad values."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from kayan.cli import main
from kayan.training import train
from kayan.training.averaging import AVERAGE_FILE, WeightAverage, decay_at
from kayan.training.word_trainer import WordLevelTrainer
from tests.conftest import FAST, REPO, fast_config


def _state(step: int):
    return SimpleNamespace(global_step=step, is_world_process_zero=True, best_model_checkpoint=None)


def test_the_average_equals_one_computed_by_hand(tmp_path):
    model = torch.nn.Linear(2, 1)
    model.bias.requires_grad_(False)  # frozen: never averaged
    average, args = WeightAverage(0.5), SimpleNamespace(output_dir=str(tmp_path), load_best_model_at_end=False)
    w0 = model.weight.detach().clone()
    average.on_train_begin(args, _state(0), None, model=model)
    steps = {1: torch.tensor([[1.0, 2.0]]), 2: torch.tensor([[3.0, -1.0]]), 10: torch.tensor([[0.0, 4.0]])}
    expected = w0
    for step, weights in steps.items():
        with torch.no_grad():
            model.weight.copy_(weights)
        average.on_step_end(args, _state(step), None, model=model)
        d = {1: 2 / 11, 2: 3 / 12, 10: 0.5}[step]  # min(0.5, (1 + n) / (10 + n)): warm-up, then the decay itself
        assert decay_at(0.5, step) == pytest.approx(d)
        expected = d * expected + (1 - d) * weights
        assert torch.allclose(average.average["weight"], expected, atol=1e-6), step
    assert set(average.average) == {"weight"}
    with average.swapped_in(model):  # what a dev evaluation scores
        assert torch.allclose(model.weight, expected, atol=1e-6)
    assert torch.equal(model.weight.detach(), steps[10])  # the trained weights are back
    (tmp_path / "checkpoint-10").mkdir()
    average.on_save(args, _state(10), None)
    again = WeightAverage(0.5)
    again.on_train_begin(args, _state(10), None, model=model)  # a resumed run reads the checkpoint's average
    assert torch.equal(again.average["weight"], average.average["weight"])
    again.on_train_end(args, _state(10), None, model=model)  # the run keeps the average
    assert torch.allclose(model.weight, expected, atol=1e-6)


@pytest.fixture(scope="module")
def averaged_run(tmp_path_factory):
    """A tiny run with the average on, the weights recorded after every step and what each dev tagging read."""
    out = tmp_path_factory.mktemp("averaged")
    recorded, tagged = [], []
    begin, step_end, tag = WeightAverage.on_train_begin, WeightAverage.on_step_end, WordLevelTrainer.tag

    def record(self, args, state, control, model=None, **kwargs):
        recorded.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        record(self, args, state, control, model)
        return begin(self, args, state, control, model=model, **kwargs)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        record(self, args, state, control, model)
        return step_end(self, args, state, control, model=model, **kwargs)

    def recording_tag(self, sentences):
        name = "classifier.weight"
        current = dict(self.model.named_parameters())[name]
        tagged.append(bool(torch.equal(current, self.weight_average.average[name])))
        return tag(self, sentences)

    patch = pytest.MonkeyPatch()
    patch.setattr(WeightAverage, "on_train_begin", on_train_begin)
    patch.setattr(WeightAverage, "on_step_end", on_step_end)
    patch.setattr(WordLevelTrainer, "tag", recording_tag)
    try:
        summary = train(fast_config(out, "training.ema_decay=0.9", "training.max_steps=6", "training.eval_steps=3",
                                    "training.early_stopping_patience=0"), test=False)
    finally:
        patch.undo()
    return Path(summary["run_dir"]), summary, recorded, tagged


def test_model_is_the_hand_computed_average_of_the_selected_evaluation(averaged_run):
    run_dir, summary, recorded, _ = averaged_run
    assert len(recorded) == 7  # the starting weights and those after each of the 6 steps
    expected = dict(recorded[0])
    averages = {}
    for step, weights in enumerate(recorded[1:], start=1):
        d = decay_at(0.9, step)
        expected = {name: d * expected[name] + (1 - d) * weights[name] for name in expected}
        averages[step] = expected
    best = int(Path(summary["best_checkpoint"]).name.split("-")[1])
    saved = load_file(str(run_dir / "model" / "model.safetensors"))
    compared = [name for name in averages[best] if name in saved]
    assert "classifier.weight" in compared and len(compared) > 5
    for name in compared:
        assert torch.allclose(saved[name], averages[best][name], atol=1e-6), name
        # not the trained weights of that step: the average differs from them
    assert not torch.allclose(saved["classifier.weight"], recorded[best]["classifier.weight"], atol=1e-6)
    checkpoint = load_file(str(run_dir / "checkpoints" / f"checkpoint-{best}" / AVERAGE_FILE))
    assert torch.equal(checkpoint["classifier.weight"], saved["classifier.weight"])


def test_dev_scores_the_average_first_and_the_weights_for_comparison(averaged_run):
    run_dir, summary, _, tagged = averaged_run
    assert tagged == [True, False, True, False]  # two evaluations: the average (selection), then the weights
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [3, 6] and all("dev_f1_unaveraged" in line for line in lines)
    notes = summary["weight_average"]
    assert notes["ema_decay"] == 0.9
    assert notes["best_dev_f1_unaveraged"] == max(line["dev_f1_unaveraged"] for line in lines)
    assert json.loads((run_dir / "summary.json").read_text())["weight_average"] == notes


def test_off_by_default_adds_nothing(tmp_path):
    summary = train(fast_config(tmp_path, "training.max_steps=3", "training.eval_steps=3"), test=False)
    run_dir = Path(summary["run_dir"])
    assert "weight_average" not in summary
    assert "dev_f1_unaveraged" not in (run_dir / "metrics.jsonl").read_text()
    assert not list(run_dir.glob(f"checkpoints/*/{AVERAGE_FILE}"))


def _uninterrupted_and_resumed(tmp_path, *settings):
    config = [*settings, "training.ema_decay=0.8", "training.max_steps=9", "training.eval_steps=3", "training.logging_steps=3",
              "training.early_stopping_patience=0", "training.select_best=false"]
    whole = train(fast_config(tmp_path / "whole", *config), test=False)
    evaluations = []

    def stop_at_the_second(line):
        evaluations.append(line)
        if len(evaluations) == 2:  # after checkpoint-3, before checkpoint-6 is saved
            raise RuntimeError("crash")
        return False

    with pytest.raises(RuntimeError):
        train(fast_config(tmp_path / "cut", *config), on_evaluate=stop_at_the_second, test=False)
    assert [p.name for p in (tmp_path / "cut" / "quickstart" / "checkpoints").iterdir()] == ["checkpoint-3"]
    resumed = train(fast_config(tmp_path / "cut", *config), resume=True, test=False)
    return Path(whole["run_dir"]), Path(resumed["run_dir"])


def test_resume_continues_the_average(tmp_path):
    whole, resumed = _uninterrupted_and_resumed(tmp_path)
    a, b = (load_file(str(run / "model" / "model.safetensors")) for run in (whole, resumed))
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    assert (whole / "metrics.jsonl").read_text() == (resumed / "metrics.jsonl").read_text()


def cli_train(out: Path, *sets: str, flag: str | None = None) -> list[str]:
    config = [*FAST, f"output.dir={out}", "training.max_steps=3", "training.eval_steps=3", *sets]
    return ["train", str(REPO / "configs" / "quickstart.yaml"), *[a for s in config for a in ("--set", s)],
            *([flag] if flag else [])]


def test_resume_refuses_to_turn_the_average_on_or_to_miss_it(tmp_path, capsys):
    assert main(cli_train(tmp_path / "plain")) == 0
    capsys.readouterr()
    assert main(cli_train(tmp_path / "plain", "training.ema_decay=0.9", "training.max_steps=6", flag="--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume with training.ema_decay changed (0.0 → 0.9)" in err, err

    assert main(cli_train(tmp_path / "avg", "training.ema_decay=0.9")) == 0
    (tmp_path / "avg" / "quickstart" / "checkpoints" / "checkpoint-3" / AVERAGE_FILE).unlink()  # cut off while saving
    capsys.readouterr()
    assert main(cli_train(tmp_path / "avg", "training.ema_decay=0.9", "training.max_steps=6", flag="--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"checkpoint-3: cannot resume from this checkpoint (no {AVERAGE_FILE}" in err, err


@pytest.mark.parametrize("value, message", [
    ("1", "config key training.ema_decay is 1; it must be 0 (off) or below 1 (e.g. 0.999)"),
    ("1.5", "config key training.ema_decay is 1.5; it must be at least 0.0 and at most 1.0"),
    ("-0.1", "config key training.ema_decay is -0.1; it must be at least 0.0"),
    ("yes", "config key training.ema_decay: expected float, got True"),
])
def test_bad_decay_is_one_line_naming_the_key(tmp_path, capsys, value, message):
    assert main(cli_train(tmp_path, f"training.ema_decay={value}")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "quickstart").exists()


def test_refit_averages_too(tmp_path, monkeypatch):
    ended = []
    end = WeightAverage.on_train_end

    def on_train_end(self, args, state, control, model=None, **kwargs):
        ended.append(Path(args.output_dir).name)
        return end(self, args, state, control, model=model, **kwargs)

    monkeypatch.setattr(WeightAverage, "on_train_end", on_train_end)
    summary = train(fast_config(tmp_path, "training.ema_decay=0.9", "training.max_steps=3", "training.eval_steps=3",
                                "training.refit=true"), test=False)
    assert ended == ["checkpoints", "refit-checkpoints"]  # the dev-selected model and the refit model are averages
    assert summary["model"] == "refit" and summary["weight_average"]["ema_decay"] == 0.9
