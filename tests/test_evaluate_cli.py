"""kayan evaluate / compare on trained tiny runs: outputs, agreement, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kayan.cli import main
from kayan.data.schemes import entities
from kayan.evaluation import read_predictions
from kayan.evaluation.metrics import entity_types, sentence_counts
from kayan.evaluation.significance import approximate_randomization, paired_bootstrap
from kayan.training import train
from tests.conftest import assert_equals_conlleval, fast_config, needs_perl, needs_shared


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    a = train(fast_config(out, "output.run_name=a", "training.seed=1"))
    b = train(fast_config(out, "output.run_name=b", "training.seed=2"))
    return Path(a["run_dir"]), Path(b["run_dir"]), a


def test_evaluate_writes_three_outputs_matching_training(two_runs, tmp_path, capsys):
    run_a, _, summary = two_runs
    out = tmp_path / "eval"
    assert main(["evaluate", str(run_a), "--data", "sample:test", "--out", str(out)]) == 0
    assert "# Evaluation report" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {".kayan-output", "predictions.txt", "metrics.json", "report.md"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["default"]["micro"]["f1"] == summary["test_f1"]
    assert metrics["words"] == 693 and metrics["dropped"] == 0
    assert (out / "predictions.txt").read_text() == (run_a / "test_predictions.txt").read_text()


def test_evaluate_a_checkpoint(two_runs, capsys):
    run_a, _, _ = two_runs
    checkpoint = sorted((run_a / "checkpoints").glob("checkpoint-*"))[0]
    assert main(["evaluate", str(checkpoint), "--data", "sample:dev", "--json", "--bootstrap", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["sentences"] == 49


def test_evaluate_predictions_file_needs_no_model(two_runs, capsys):
    run_a, _, summary = two_runs
    assert main(["evaluate", "--predictions", str(run_a / "test_predictions.txt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["default"]["micro"]["f1"] == summary["test_f1"]


def test_compare_two_seeds(two_runs, tmp_path, capsys):
    run_a, run_b, _ = two_runs
    assert main(["compare", str(run_a), str(run_b), "--data", "sample:test", "--json", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    # the tests ran on both runs' own test predictions, with the default 1,000 samples and seed 12345
    gold, pred_a = read_predictions(run_a / "test_predictions.txt")
    _, pred_b = read_predictions(run_b / "test_predictions.txt")
    tags = [list(s.tags) for s in gold]
    types = entity_types(tags, pred_a, pred_b)
    counts_a, counts_b = (sentence_counts(tags, pred, types=types) for pred in (pred_a, pred_b))
    assert result["paired_bootstrap"] == paired_bootstrap(counts_a, counts_b, samples=1000, seed=12345)
    assert result["approximate_randomization"] == approximate_randomization(counts_a, counts_b, samples=1000, seed=12345)
    f1_a, f1_b = (json.loads((run / "test_metrics.json").read_text())["default"]["micro"]["f1"] for run in (run_a, run_b))
    assert result["delta"] == pytest.approx(f1_a - f1_b)
    assert (tmp_path / "compare.md").is_file()


def test_label_sets_that_differ_list_both(two_runs, tmp_path, capsys):
    run_a, _, _ = two_runs
    data = tmp_path / "per.txt"
    data.write_text("محمد B-PER\nفي O\nبغداد B-LOC\n", encoding="utf-8")
    assert main(["evaluate", str(run_a), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "['LOC', 'PER']" in err and "['LOC', 'MISC', 'ORG', 'PERS']" in err and "--label-map" in err
    assert main(["evaluate", str(run_a), "--data", str(data), "--label-map", "PER=PERS", "--json"]) == 0


@pytest.mark.parametrize(
    "content, message",
    [
        ("وقال O O\nبغداد B-LOC\n", "pred.txt:2"),
        ("", "no sentences to score"),
    ],
)
def test_bad_predictions_file(tmp_path, content, message):
    path = tmp_path / "pred.txt"
    path.write_text(content, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "kayan.cli", "evaluate", "--predictions", str(path)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr


def test_evaluate_needs_model_and_data(capsys):
    assert main(["evaluate", "somewhere"]) == 2
    assert "needs MODEL and --data" in capsys.readouterr().err


@needs_shared
@needs_perl
def test_tiny_model_predictions_on_anercorp_agree_with_conlleval(built, tmp_path, capsys):
    """Real model output on the full ANERcorp test split, ill-formed sequences and all.

    The package with a random (seeded) head (tests/tiny_package.py) tags many entities of every
    type, with many I- tags that open or break entities: what conlleval's rules must agree on.
    """
    noisy = built["noisy"]
    out = tmp_path / "eval"
    assert main(["evaluate", str(noisy), "--data", "anercorp:test", "--out", str(out), "--bootstrap", "0"]) == 0
    capsys.readouterr()
    gold, predicted = read_predictions(out / "predictions.txt")
    assert sum(len(s) for s in gold) == 25008
    assert sum(len(entities(tags)) for tags in predicted) > 1000, "the model must predict many entities"
    assert any(tags[i].startswith("I-") and tags[i - 1] == "O" for tags in predicted for i in range(1, len(tags)))
    assert_equals_conlleval([list(s.tags) for s in gold], predicted, tmp_path)
