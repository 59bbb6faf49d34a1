"""Issue 21: commands never delete what they did not write.

Each case ran with status 0 (or a traceback) and deleted or replaced files before: ``evaluate --out``
into the model it scores, ``package`` into the run or its parent, ``data export --to`` the folder of
its own corpus, ``train`` with a run name of ``.``, ``..`` or ``../x``. Now each is refused in one line
that names the folder, and every file that was there is left byte for byte.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from kayan.cli import main
from tests.conftest import FAST, SAMPLE_DIR

REPO = Path(__file__).resolve().parent.parent
QUICK = ["training.epochs=1", "training.max_steps=2", "training.eval_steps=2"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``, with its content's digest."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def refused(argv: list[str], root: Path, capsys, named: str) -> None:
    """``kayan ARGV`` exits 2 with one line naming ``named``, and nothing under ``root`` changed."""
    before = snapshot(root)
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("kayan: error: "), (status, err)
    assert named in err, err
    assert snapshot(root) == before


@pytest.fixture
def copies(built, tmp_path) -> dict[str, Path]:
    """Copies of the tiny run and package (a bug here must not destroy the session's), and a foreign folder."""
    shutil.copytree(built["run"], tmp_path / "train" / "run")
    shutil.copytree(built["package"], tmp_path / "models" / "pkg")
    (tmp_path / "train" / "notes.txt").write_text("the runs of my thesis")
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.txt").write_text("three years of work")
    (tmp_path / "file.txt").write_text("a file, not a folder")
    return {"run": tmp_path / "train" / "run", "package": tmp_path / "models" / "pkg", "foreign": tmp_path / "thesis",
            "file": tmp_path / "file.txt", "parent": tmp_path / "train"}


# 1. kayan evaluate --out
@pytest.mark.parametrize("model, out", [("package", "package"), ("run", "run"), ("package", "foreign"),
                                        ("package", "file"), ("run", "parent")])
def test_evaluate_out_never_replaces_what_evaluate_did_not_write(copies, tmp_path, capsys, model, out):
    refused(["evaluate", str(copies[model]), "--data", "sample:test", "--bootstrap", "0", "--out", str(copies[out])],
            tmp_path, capsys, str(copies[out]))


@pytest.mark.parametrize("out", [".", ".."])
def test_evaluate_out_into_the_current_folder_is_one_line(copies, tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(copies["foreign"])
    refused(["evaluate", str(copies["package"]), "--data", "sample:test", "--bootstrap", "0", "--out", out],
            tmp_path, capsys, f"{out} is the current folder or holds it")


def test_evaluate_out_replaces_its_own_evaluation_folder(copies, tmp_path, capsys):
    out = tmp_path / "eval"
    for _ in range(2):  # the second run replaces the first one's folder: no --overwrite needed
        assert main(["evaluate", str(copies["package"]), "--data", "sample:test", "--bootstrap", "0", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {".kayan-output", "predictions.txt", "metrics.json", "report.md"}
    refused(["evaluate", "--predictions", str(out / "predictions.txt"), "--out", str(out)], tmp_path, capsys, str(out))


def test_compare_out_never_writes_into_a_folder_it_did_not_write(copies, tmp_path, capsys):
    predictions = copies["run"] / "test_predictions.txt"
    other = tmp_path / "other_predictions.txt"  # a second system (one compared with itself is refused first)
    other.write_bytes(predictions.read_bytes())
    for out in ("run", "foreign", "file"):
        refused(["compare", str(predictions), str(other), "--samples", "10", "--out", str(copies[out])],
                tmp_path, capsys, str(copies[out]))


# 2. kayan package
@pytest.mark.parametrize("out", ["parent", "run", "foreign", "file"])
def test_package_overwrite_never_replaces_the_run_or_its_parent(copies, tmp_path, capsys, out):
    refused(["package", str(copies["run"]), str(copies[out]), "--overwrite"], tmp_path, capsys, str(copies[out]))


def test_ensemble_package_overwrite_never_replaces_a_member_run(copies, seed_runs, tmp_path, capsys):
    other = tmp_path / "train" / "other"
    shutil.copytree(seed_runs[1], other)  # another model: an ensemble of one model twice is refused for that reason
    refused(["package", str(copies["run"]), str(other), str(other), "--overwrite"], tmp_path, capsys, str(other))


# 3. kayan data export
@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SAMPLE_DIR / "test.txt", folder / "mine.txt")
    return folder / "mine.txt"


@pytest.mark.parametrize("where", ["holding", "equal", "parent"])
def test_data_export_never_replaces_the_folder_holding_its_corpus(corpus, tmp_path, capsys, where):
    out = {"holding": corpus.parent, "equal": corpus, "parent": tmp_path}[where]
    refused(["data", "export", str(corpus), "--to", str(out), "--overwrite"], tmp_path, capsys, str(out))


def test_data_export_overwrite_never_replaces_a_folder_that_is_not_an_export(corpus, tmp_path, capsys):
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.txt").write_text("three years of work")
    refused(["data", "export", str(corpus), "--to", str(tmp_path / "thesis"), "--overwrite"], tmp_path, capsys,
            str(tmp_path / "thesis"))
    assert main(["data", "export", str(corpus), "--to", str(tmp_path / "export")]) == 0
    assert main(["data", "export", str(corpus), "--to", str(tmp_path / "export"), "--overwrite"]) == 0  # its own kind


# 4. kayan train
def train_argv(out: Path, *sets: str) -> list[str]:
    return ["train", str(REPO / "configs" / "quickstart.yaml"),
            *[a for o in [*FAST, *QUICK, f"output.dir={out}", *sets] for a in ("--set", o)], "--overwrite"]


@pytest.fixture
def runs(copies) -> Path:
    """output.dir: a run, a second one, and a notes file."""
    shutil.copytree(copies["run"], copies["parent"] / "second")
    return copies["parent"]


@pytest.mark.parametrize("name", [".", "..", "../x", "a/b", "''"])
def test_train_run_name_is_one_folder_name(runs, tmp_path, capsys, name):
    refused(train_argv(runs, f"output.run_name={name}"), tmp_path, capsys, "output.run_name")


def test_train_absolute_run_name_is_refused(runs, tmp_path, capsys):
    refused(train_argv(runs, f"output.run_name={tmp_path / 'elsewhere'}"), tmp_path, capsys, str(tmp_path / "elsewhere"))


def test_train_overwrite_never_replaces_a_folder_that_is_not_a_run(runs, tmp_path, capsys):
    (runs / "thesis").mkdir()
    (runs / "thesis" / "thesis.txt").write_text("three years of work")
    refused(train_argv(runs, "output.run_name=thesis"), tmp_path, capsys, str(runs / "thesis"))


def test_train_overwrite_never_replaces_a_run_holding_its_data(runs, tmp_path, capsys):
    shutil.copy(SAMPLE_DIR / "train.txt", runs / "run" / "mine.txt")
    refused(train_argv(runs, "output.run_name=run", f"data.train=[{runs / 'run' / 'mine.txt'}]"), tmp_path, capsys,
            str(runs / "run"))


# The same flaw in other commands
def test_tune_overwrite_never_replaces_a_folder_that_is_not_a_tune_folder(runs, tmp_path, capsys):
    pytest.importorskip("optuna", exc_type=ImportError)
    (runs / "thesis").mkdir()
    (runs / "thesis" / "thesis.txt").write_text("three years of work")
    argv = ["tune", str(REPO / "configs" / "quickstart.yaml"), "--set", "output.run_name=thesis", "--out-dir", str(runs),
            "--trials", "1", "--overwrite"]
    refused(argv, tmp_path, capsys, str(runs / "thesis"))
    refused([*argv[:-1], "--resume"], tmp_path, capsys, str(runs / "thesis"))
    refused(["tune", str(REPO / "configs" / "quickstart.yaml"), "--set", "output.run_name=..", "--out-dir", str(runs)],
            tmp_path, capsys, "output.run_name")


@pytest.mark.parametrize("onnx", ["file", "foreign"])
def test_export_onnx_never_replaces_an_onnx_path_it_did_not_write(copies, tmp_path, capsys, onnx):
    pytest.importorskip("onnxruntime", exc_type=ImportError)
    target = copies["package"] / "onnx"
    if onnx == "file":
        target.write_text("my own notes")
    else:
        target.mkdir()
        (target / "model.onnx").write_bytes(b"an ONNX model of my own")
    refused(["export", str(copies["package"]), "--onnx"], tmp_path, capsys, str(target))


def test_seed_runs_are_named_by_one_folder_name_and_repeat_from_their_config(tmp_path):
    from kayan.config import load_config
    from kayan.training import train_seeds
    from tests.conftest import fast_config

    train_seeds(fast_config(tmp_path, *QUICK), [3])
    config = load_config(tmp_path / "quickstart" / "seed-3" / "config.yaml")  # run_name was "quickstart/seed-3"
    assert (config.output.dir, config.output.run_name) == (str(tmp_path / "quickstart"), "seed-3")
