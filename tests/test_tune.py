"""kayan tune on the tiny model: trials as run folders, dev only, pruning, budgets, resume, bad spaces."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest

from kayan import training
from kayan.cli import main
from kayan.config import load_config
from kayan.data import corpora
from kayan.errors import KayanError
from kayan.training import train
from kayan.training.tuning import tune
from tests.conftest import FAST, REPO, fast_config


@pytest.fixture
def loaded(monkeypatch):
    """Every corpus ref read from now on."""
    refs = []
    real = corpora.load_split

    def spy(ref, *args, **kwargs):
        refs.append(ref)
        return real(ref, *args, **kwargs)

    monkeypatch.setattr(corpora, "load_split", spy)
    return refs


def test_training_hook_stops_after_an_evaluation_and_test_stays_unread(tmp_path, loaded):
    seen = []
    summary = train(fast_config(tmp_path), on_evaluate=lambda line: seen.append(line) or True, test=False)
    assert [line["epoch"] for line in seen] == [1.0] and "dev_f1" in seen[0]
    assert summary["epochs"] == 1.0 and summary["test_f1"] is None
    assert not (Path(summary["run_dir"]) / "test_metrics.json").exists()
    assert loaded and not any(ref.endswith(":test") for ref in loaded)


CONFIG = str(REPO / "configs" / "quickstart.yaml")
SPACE = ["tune.training.learning_rate={low: 1e-3, high: 1e-2, log: true}", "tune.training.epochs=[1, 2]",
         "tune.training.batch_size=[16, 32]", "tune.training.warmup_ratio={low: 0, high: 0.2}",
         "tune.training.window=[32, 64]", "tune.training.label_all_subwords=[false, true]"]


def study_of(tune_dir: Path):
    return optuna.load_study(study_name="kayan-tune", storage=f"sqlite:///{tune_dir / 'study.db'}")


def cli_sets(*overrides: str) -> list[str]:
    return [word for override in [*FAST, *overrides] for word in ("--set", override)]


def test_three_trials_write_run_folders_a_table_and_a_recipe_train_accepts(tmp_path, loaded, capsys):
    assert main(["tune", CONFIG, *cli_sets(*SPACE), "--trials", "3", "--out-dir", str(tmp_path / "tune"), "--quiet"]) == 0
    tune_dir = tmp_path / "tune" / "quickstart"
    assert sorted(p.name for p in tune_dir.glob("trial-*")) == ["trial-000", "trial-001", "trial-002"]
    for run in tune_dir.glob("trial-*"):
        assert (run / "model" / "model.safetensors").is_file() and (run / "metrics.jsonl").is_file()
        assert not list(run.glob("test_*")) and json.loads((run / "summary.json").read_text())["test_f1"] is None
    assert loaded and not any(ref.endswith(":test") for ref in loaded)  # test is never read while searching
    rows = list(csv.DictReader((tune_dir / "trials.csv").open(encoding="utf-8")))
    keys = [s.split("=")[0].removeprefix("tune.") for s in SPACE]
    assert list(rows[0]) == ["trial", "state", "dev_f1", "epochs_run", "seconds", *keys]
    assert [(r["trial"], r["state"]) for r in rows] == [("0", "complete"), ("1", "complete"), ("2", "complete")]
    assert all(float(r["epochs_run"]) == float(r["training.epochs"]) for r in rows)
    out = capsys.readouterr().out
    assert out.startswith("| trial | state | dev F1 | epochs run | seconds | learning_rate |")
    assert (tune_dir / "trials.md").read_text(encoding="utf-8") in out + "\n" and "3 of 3 trials finished" in out
    best = study_of(tune_dir).best_trial
    recipe = load_config(tune_dir / "best.yaml")
    assert recipe.training.learning_rate == best.params["training.learning_rate"]
    assert recipe.training.window == best.params["training.window"] and recipe.output.dir == "train"
    assert f"best: {tune_dir / f'trial-{best.number:03d}'}" in out
    assert main(["train", str(tune_dir / "best.yaml"), "--set", f"output.dir={tmp_path / 'train'}",
                 "--set", "training.epochs=1", "--quiet"]) == 0


def test_resume_redoes_unfinished_trials_once_and_stops_at_the_count(tmp_path, monkeypatch):
    config, out = fast_config(tmp_path, *SPACE), tmp_path / "tune"
    real, calls = training.train, []

    def interrupted(each, **kwargs):  # the second trial is stopped by Ctrl-C once it has trained
        calls.append(each.output.run_name)
        summary = real(each, **kwargs)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return summary

    monkeypatch.setattr("kayan.training.tuning.train", interrupted)  # the train that tune calls
    with pytest.raises(KeyboardInterrupt):
        tune(config, trials=2, out_dir=out)
    tune_dir = out / "quickstart"
    study = study_of(tune_dir)
    killed = study.ask(fixed_distributions=study.trials[0].distributions)  # a trial a killed process left running
    first = (tune_dir / "trial-000" / "summary.json").stat().st_mtime_ns
    result = tune(config, trials=3, resume=True, out_dir=out)
    trials = study_of(tune_dir).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert [t.user_attrs.get("redo_of") for t in trials[3:]] == [1, 2]
    assert trials[3].params == trials[1].params and trials[4].params == killed.params
    assert (tune_dir / "trial-000" / "summary.json").stat().st_mtime_ns == first
    assert result["finished"] == 3 and calls == ["trial-000", "trial-001", "trial-003", "trial-004"]
    assert tune(config, resume=True, out_dir=out)["finished"] == 3 and len(calls) == 4  # the count is kept; nothing redone
    with pytest.raises(KayanError, match=r"--resume with a changed config \(training.seed 12345 → 7\)"):
        tune(fast_config(tmp_path, *SPACE, "training.seed=7"), resume=True, out_dir=out)


class PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 at its first report, whatever its score: a lagging trial, deterministically."""

    def __init__(self):
        self.asked = []

    def prune(self, study, trial) -> bool:
        self.asked.append((trial.number, trial.last_step))
        return trial.number == 1


def test_a_lagging_trial_is_pruned_after_its_evaluation(tmp_path):
    pruner = PruneTrialOne()
    config = fast_config(tmp_path, "tune.training.epochs=[3]", "tune.training.learning_rate=[1e-2, 1e-3]")
    result = tune(config, trials=2, out_dir=tmp_path / "tune", pruner=pruner)
    assert pruner.asked == [(0, 1), (0, 2), (0, 3), (1, 1)]
    assert [(r["state"], r["epochs_run"]) for r in result["rows"]] == [("complete", 3.0), ("pruned", 1.0)]
    pruned = tmp_path / "tune" / "quickstart" / "trial-001"
    assert len((pruned / "metrics.jsonl").read_text().splitlines()) == 1 and (pruned / "model" / "kayan.json").is_file()
    assert result["best"]["trial"] == 0


def test_max_minutes_stops_starting_trials_and_overwrite_replaces_the_tune(tmp_path):
    config, out = fast_config(tmp_path, "tune.training.epochs=[1]", "tune.training.learning_rate=[1e-2, 1e-3]"), tmp_path / "tune"
    result = tune(config, trials=3, max_minutes=1e-6, out_dir=out)
    assert (result["finished"], result["stopped"]) == (1, "time") and len(study_of(out / "quickstart").trials) == 1
    with pytest.raises(KayanError, match="already holds a run; pass --resume to continue it, --overwrite to replace it"):
        tune(config, trials=1, out_dir=out)
    (out / "quickstart" / "trial-000" / "old").write_text("")
    assert tune(config, trials=1, overwrite=True, out_dir=out)["finished"] == 1
    assert not (out / "quickstart" / "trial-000" / "old").exists() and not list(out.glob(".*replaced*"))


@pytest.mark.parametrize("sets, message", [
    (["tune.training.lerning_rate=[1e-3]"], "tune.training.lerning_rate: unknown config key (did you mean training.learning_rate?)"),
    (["tune.data.dev_fraction=[0.1, 0.2]"], "tune.data.dev_fraction: data and output settings cannot be searched"),
    (["tune.training.refit=[false, true]"], "tune.training.refit: trials run without refit"),
    (["tune.data.train=[[a]]"], "tune.data.train: data and output settings cannot be searched"),
    (["tune.training.epochs=3"], "tune.training.epochs: give a list of choices ([2, 3]) or a range ({low: 1, high: 5}), not 3"),
    (["tune.training=3"], "tune.training: expected a mapping of training settings, got 3"),
    (["tune.training.epochs=[]"], "tune.training.epochs: the list of choices is empty"),
    (["tune.training.window=[2, 64]"], "tune.training.window: config key training.window is 2; it must be at least 3"),
    (["tune.training.window=[8]"], "tune.training.window: training.stride 16 must be at least 0 and less than the training.window minus 2"),
    (["tune.training.batch_size={low: 8.5, high: 16}"], "tune.training.batch_size: config key training.batch_size: expected int, got 8.5"),
    (["tune.training.learning_rate={low: 1e-2, high: 1e-3}"], "tune.training.learning_rate: low (0.01) must be less than high (0.001)"),
    (["tune.training.warmup_ratio={low: 0, high: 0.2, log: true}"], "tune.training.warmup_ratio: log: true needs low > 0 (here 0.0)"),
    (["tune.training.learning_rate={low: 1e-3, hgh: 1e-2}"], "tune.training.learning_rate: unknown range key 'hgh'"),
    (["tune.training.epochs={low: 1}"], "tune.training.epochs: a range needs both low and high"),
    (["tune.training.epochs={low: 1, high: 4, step: -1}"], "tune.training.epochs: step is -1; it must be a positive number"),
    (["tune.training.batch_size={low: 8, high: 32, step: 2.5}"], "tune.training.batch_size: step is 2.5; it must be a positive integer"),
    (["tune.training.label_all_subwords={low: 0, high: 1}"], "tune.training.label_all_subwords: a bool setting takes a list of choices"),
    (["tune.training.decoding=[first, best]"], "tune.training.decoding: config key training.decoding: 'best' is not one of"),
    (["data.train=[missing.txt]"], "missing.txt: no such file"),
    (["tune.training.window=[600]"], "tune trial-000 (window 600): model tiny: training.window 600 exceeds the model's limit of 512"),
])
def test_bad_spaces_give_one_line_and_status_2(tmp_path, capsys, sets, message):
    assert main(["tune", CONFIG, *cli_sets(*sets), "--out-dir", str(tmp_path / "tune"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kayan: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "tune").exists() or not any((tmp_path / "tune").iterdir())  # a failed first trial leaves nothing


@pytest.mark.parametrize("argv, message", [
    (["--trials", "0"], "argument --trials: 0 is out of range; it must be at least 1"),
    (["--max-minutes", "0"], "argument --max-minutes: 0 is out of range; it must be greater than 0"),
    (["--resume", "--overwrite"], "argument --overwrite: not allowed with argument --resume"),
    (["--resume"], "no study to resume (study.db is missing); run without --resume"),
])
def test_bad_options_give_one_line_and_status_2(tmp_path, capsys, argv, message):
    assert main(["tune", CONFIG, "--out-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
