"""A `kayan train` that fails changes nothing on disk: no stub folders, no lost runs, no rewritten config.

Issue 12, items 1-4: ``--overwrite`` kept the new config's failure from restoring the old run,
``--resume`` rewrote config.yaml before failing, failed checks left stub folders, ``epochs: 0``
trained nothing and crashed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kayan.cli import main
from kayan.errors import KayanError
from kayan.training import seeds, train, trainer
from tests.conftest import FAST, fast_config

REPO = Path(__file__).resolve().parent.parent
QUICK = ["training.epochs=1", "training.max_steps=2", "training.eval_steps=2"]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``folder``: content digest and mode."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                                         p.stat().st_mode) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """A complete small run: output.dir, holding quickstart/."""
    out = tmp_path_factory.mktemp("done")
    train(fast_config(out, *QUICK))
    return out


def cli_train(out: Path, *args: str) -> list[str]:
    return ["train", str(REPO / "configs" / "quickstart.yaml"), *[a for o in [*FAST, *QUICK] for a in ("--set", o)],
            "--set", f"output.dir={out}", *args]


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
@pytest.mark.parametrize("override", ["training.window=4096", "training.window=1", "training.learning_rate=-1",
                                      "model.name=/nonexistent/encoder"])
def test_failed_overwrite_or_resume_changes_nothing(done, capsys, flag, override):
    before = snapshot(done)
    assert main(cli_train(done, "--set", override, flag)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kayan: error: ")
    assert snapshot(done) == before


def test_overwrite_failing_after_the_folder_is_opened_restores_the_old_run(done, monkeypatch):
    before = snapshot(done)

    def broken(*args, **kwargs):
        assert (done / "quickstart" / "config.yaml").is_file() and not (done / "quickstart" / "model").exists()
        raise KayanError("a check that needs the model")

    monkeypatch.setattr(trainer, "build_trainer", broken)
    with pytest.raises(KayanError, match="needs the model"):
        train(fast_config(done, *QUICK), overwrite=True)
    assert snapshot(done) == before and sorted(p.name for p in done.iterdir()) == ["quickstart"]


@pytest.mark.parametrize("overrides", [
    ["training.window=1"], ["training.window=2"], ["training.stride=64"], ["training.window=100000"],
    ["training.learning_rate=-1"], ["training.batch_size=0"], ["training.epochs=0"], ["training.window=4096"],
])
def test_failed_checks_leave_no_stub_run_folder(tmp_path, overrides):
    with pytest.raises(KayanError):
        train(fast_config(tmp_path / "out", *overrides))
    assert not (tmp_path / "out").exists()


def test_output_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(cli_train(tmp_path / "file" / "runs")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err


def test_successful_overwrite_replaces_the_run_and_leaves_nothing_aside(done, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(done, out)
    (out / "quickstart" / "old-marker").write_text("old")
    train(fast_config(out, *QUICK), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["quickstart"]
    assert not (out / "quickstart" / "old-marker").exists() and (out / "quickstart" / "summary.json").is_file()


def test_a_summary_without_scores_prints_without_a_traceback(monkeypatch, capsys):
    # A run with no dev evaluation or no test split has null scores; the summary line must not crash on them.
    monkeypatch.setattr(seeds, "train", lambda config, **kwargs: {"run_dir": "x", "best_dev_f1": None, "test_f1": None})
    assert main(["train", str(REPO / "configs" / "quickstart.yaml")]) == 0
    assert "best dev F1 -; test F1 -" in capsys.readouterr().out


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KayanError("cannot write config.yaml")])
def test_a_config_that_cannot_be_written_leaves_no_folder(tmp_path, monkeypatch, error):
    def failing(config, path):
        raise error

    monkeypatch.setattr(trainer, "save_config", failing)
    with pytest.raises(KayanError):
        train(fast_config(tmp_path / "out", *QUICK))
    assert not (tmp_path / "out").exists()


def test_read_only_output_folder_is_one_line_before_anything_loads(tmp_path, capsys, monkeypatch):
    import os

    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as on a read-only mount
    assert main(cli_train(tmp_path / "runs")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not writable" in err and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("override, message", [
    ("model.tiny.hidden_size=64", "model.tiny.hidden_size changed (32 → 64)"),
    ("training.window=128", "training.window changed (64 → 128)"),
    ("data.label_map={PERS: PER}", "data.label_map.PERS changed (None → 'PER')"),
    # issue 19: keys that shape the windows or the split the checkpoints learnt from, missing from the list before
    ("training.context=8", "training.context changed (0 → 8)"),
    ("data.dev_split=spread", "data.dev_split changed ('end' → 'spread')"),
    ("data.dev_fraction=0.2", "data.dev_fraction changed (0.1 → 0.2)"),
    ("training.decoding=viterbi", "training.decoding changed ('first' → 'viterbi')"),
    # issue 20: a corpus's own label map, and whether a type it never tags is taught as O
    ("data.label_maps={sample: {MISC: O}}", "data.label_maps.sample.MISC changed (None → 'O')"),
    ("data.partial_labels=false", "data.partial_labels changed (True → False)"),
])
def test_resume_refuses_a_config_the_checkpoints_were_not_trained_with(done, capsys, override, message):
    before = snapshot(done)
    assert main(cli_train(done, "--set", override, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert snapshot(done) == before


def _empty(checkpoint: Path) -> None:
    for path in checkpoint.iterdir():
        path.unlink()


def _truncate(name: str):
    def damage(checkpoint: Path) -> None:
        path = checkpoint / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return damage


@pytest.mark.parametrize("damage, reason", [
    (_empty, "it is empty"),
    (lambda checkpoint: (checkpoint / "trainer_state.json").unlink(), "no trainer_state.json"),
    (lambda checkpoint: (checkpoint / "model.safetensors").unlink(), "no model weights"),
    (_truncate("trainer_state.json"), "trainer_state.json is damaged"),
    (_truncate("model.safetensors"), "model.safetensors is damaged"),
    (_truncate("optimizer.pt"), "optimizer.pt is damaged"),
])
def test_resume_from_a_damaged_checkpoint_is_one_line_and_changes_nothing(done, tmp_path, capsys, damage, reason):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(done, out)
    checkpoint = sorted((out / "quickstart" / "checkpoints").iterdir())[-1]
    damage(checkpoint)
    before = snapshot(out)
    assert main(cli_train(out, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"kayan: error: {checkpoint}: cannot resume") and reason in err, err
    assert "start the run again with --overwrite instead of --resume" in err
    assert snapshot(out) == before


def test_resume_names_the_checkpoint_before_an_empty_one_and_resumes_from_it_once_deleted(done, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(done, out)
    checkpoints = out / "quickstart" / "checkpoints"
    (complete,) = checkpoints.iterdir()
    step = int(complete.name.split("-")[1])
    (checkpoints / f"checkpoint-{step + 1}").mkdir()  # the Trainer was killed as it began to save
    before = snapshot(out)
    assert main(cli_train(out, "--resume")) == 2
    err = capsys.readouterr().err
    assert f"delete that folder to resume from {complete.name}" in err and err.count("\n") == 1, err
    assert snapshot(out) == before
    (checkpoints / f"checkpoint-{step + 1}").rmdir()
    assert main(cli_train(out, "--resume")) == 0
