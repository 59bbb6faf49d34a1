"""Run folders are read in one place (kayan.run), and packages carry what evaluation needs.

One tiny run trained with ``data.label_map={PERS: PER}`` (its model knows PER, the sample data says
PERS) and its package: evaluation renames the data's types as training did, from the run's config
for the run and its checkpoints, from kayan.json for the package, never from a config.yaml that
happens to sit in a parent folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kayan import evaluation
from kayan.cli import main
from kayan.inference.packaging import package
from kayan.run import RunFolder, locate
from kayan.training import train
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A 1-epoch tiny run whose config renames PERS to PER, and its package."""
    out = tmp_path_factory.mktemp("labelled")
    summary = train(fast_config(out / "train", "training.epochs=1", "data.label_map={PERS: PER}"))
    run = Path(summary["run_dir"])
    return run, package(run, out / "models" / "labelled")


def _f1(report: dict) -> float:
    return report["default"]["micro"]["f1"]


def test_a_package_evaluates_with_the_label_map_its_run_trained_with(labelled):
    run, pkg = labelled
    assert json.loads((pkg / "kayan.json").read_text(encoding="utf-8"))["label_map"] == {"PERS": "PER"}
    report, gold, _ = evaluation.evaluate_model(pkg, "sample:test", bootstrap_samples=0)  # the data says PERS
    assert any(tag.endswith("-PER") for s in gold for tag in s.tags)
    assert _f1(report) == _f1(json.loads((run / "test_metrics.json").read_text(encoding="utf-8")))
    assert "PERS → PER" in (pkg / "README.md").read_text(encoding="utf-8")


def test_a_config_yaml_beside_a_package_is_not_read(labelled, tmp_path):
    _, pkg = labelled
    shutil.copytree(pkg, tmp_path / "models" / "pkg")
    (tmp_path / "models" / "config.yaml").write_text("data:\n  label_map: {LOC: PER}\n", encoding="utf-8")
    report, gold, _ = evaluation.evaluate_model(tmp_path / "models" / "pkg", "sample:test", bootstrap_samples=0)
    assert any(tag.endswith("-LOC") for s in gold for tag in s.tags)  # kayan.json's map, not the stray config's
    assert _f1(report) == _f1(evaluation.evaluate_model(pkg, "sample:test", bootstrap_samples=0)[0])


def test_the_run_and_its_checkpoints_evaluate_with_the_run_config_label_map(labelled):
    run, _ = labelled
    checkpoint = RunFolder(run).checkpoints()[-1]
    for path in (run, run / "model", checkpoint):
        report, gold, _ = evaluation.evaluate_model(path, "sample:dev", bootstrap_samples=0)
        assert report["sentences"] == 49 and any(tag.endswith("-PER") for s in gold for tag in s.tags)


def test_run_folder_answers_from_its_layout(labelled):
    run_dir, pkg = labelled
    run = RunFolder(run_dir)
    checkpoints = run.checkpoints()
    assert checkpoints and [p.parent for p in checkpoints] == [run_dir / "checkpoints"] * len(checkpoints)
    assert run.last_checkpoint() == str(checkpoints[-1]) and run.last_checkpoint(refit=True) is None
    assert RunFolder.is_run(run_dir) and not RunFolder.is_run(run_dir / "model") and not RunFolder.is_run(pkg)
    assert locate(run_dir) == (run_dir / "model", run)
    assert locate(run_dir / "model") == (run_dir / "model", RunFolder(run_dir.resolve()))
    assert locate(checkpoints[0])[1] == RunFolder(run_dir.resolve()) and locate(checkpoints[0])[0] == checkpoints[0]
    assert locate(pkg) == (pkg, None)
    assert run.label_map() == {"PERS": "PER"} and run.config()["data"]["label_map"] == {"PERS": "PER"}
    assert run.summary()["test_f1"] == _f1(run.test_metrics(run.model))
    assert run.test_metrics(checkpoints[0]) is None and run.selection() is None
    assert [row["step"] for row in run.evaluations()] == [int(p.name.split("-")[1]) for p in checkpoints]


def test_a_folder_with_only_a_config_is_no_run(tmp_path):
    (tmp_path / "config.yaml").write_text("data: {}\n", encoding="utf-8")  # a tune folder has one too
    assert not RunFolder.is_run(tmp_path) and locate(tmp_path) == (tmp_path, None)


def _one_line_error(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and message in err, err


def test_a_run_that_saved_no_model_yet_says_so(labelled, tmp_path, capsys):
    run, _ = labelled
    shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("model"))
    _one_line_error(capsys, ["evaluate", str(tmp_path / "run"), "--data", "sample:dev"],
                    "the run has saved no model yet (no model/); give one of its checkpoints")


@pytest.mark.parametrize("change, message", [
    ({"label_map": ["PERS"]}, "label_map is ['PERS'], not a mapping of entity type names"),
    ({"label_map": {"PERS": 1}}, "label_map is {'PERS': 1}, not a mapping"),
    ({"context": -1}, "context -1 must be at least 0"),
])
def test_damaged_kayan_json_label_map_and_context_are_one_line(labelled, tmp_path, capsys, change, message):
    _, pkg = labelled
    folder = tmp_path / "pkg"
    shutil.copytree(pkg, folder)
    meta = json.loads((folder / "kayan.json").read_text(encoding="utf-8"))
    (folder / "kayan.json").write_text(json.dumps({**meta, **change}), encoding="utf-8")
    _one_line_error(capsys, ["evaluate", str(folder), "--data", "sample:dev"], message)
