"""Property (issue 12): a config with an invalid value gives one line and status 2, and the failed
`kayan train` never changes an existing run folder, with or without --overwrite / --resume.

Every drawn set leaves at least one key at an invalid value: the last value of a key wins, so a
valid value is drawn before an invalid one of its key, never after (that config would be valid and,
with --overwrite, really train). So no example trains and the test runs in seconds. The invalid
values cover each kind of check: type, range, cross-key (against every window drawn), unknown key,
and those only the model or the data can tell (a window the model cannot take, a missing file).

Property (issue 21): whatever output path a command is given (its input, inside it, a parent of it, a
file, ``.``, ``..``, a folder that is not Kayan's, another kind of Kayan output, a new or empty
folder), with or without --overwrite, no file that was there is deleted or changed, except inside an
earlier output of the very kind the command writes, and only when the command ends with status 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path

import numpy

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from kayan.cli import main
from kayan.config import load_config, save_config
from tests.conftest import FAST, SAMPLE_DIR

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "quickstart.yaml"

VALID = {
    "training.learning_rate": ["1e-3", "5e-5"], "training.batch_size": ["1", "8"], "training.epochs": ["1", "0.5"],
    "training.window": ["64", "128"], "training.stride": ["0", "16"], "training.max_steps": ["1", "-1"],
    "training.warmup_ratio": ["0", "0.1"], "training.seed": ["0", "7"], "data.dev_fraction": ["0.2"],
    "training.eval_steps": ["0", "5"], "training.decoding": ["first", "viterbi"],
}
INVALID = {
    "training.learning_rate": ["-1", "0", ".nan", "abc", "[1]"],
    "training.batch_size": ["0", "-1", "2.5", "true", "''"],
    "training.eval_batch_size": ["0"], "training.gradient_accumulation": ["0", "-2"],
    "training.epochs": ["0", "-1", ".inf"], "training.window": ["1", "2", "100000", "4096"],
    "training.stride": ["-1", "126", "500"], "training.max_steps": ["0", "-5"],
    "training.warmup_ratio": ["1.5", "-0.1"], "training.weight_decay": ["-1"],
    "training.early_stopping_patience": ["-1"], "training.eval_steps": ["-3"], "training.logging_steps": ["0"],
    "training.save_total_limit": ["0"], "training.seed": ["-1", "99999999999"], "training.scheduler": ["fast"],
    "training.precision": ["fp8"], "data.dev_fraction": ["0", "1", "1.5"], "data.train": ["[missing/file.txt]"],
    "data.normalization": ["[remove_everything]"], "model.name": ["/nonexistent/encoder"],
    "model.tiny.hidden_size": ["33", "0"], "model.tiny.vocab_size": ["0"], "model.tiny.num_attention_heads": ["0"],
    "training.lerning_rate": ["1"], "training": ["3"],
}


def _pairs(table: dict[str, list[str]]):
    return st.sampled_from([f"{key}={value}" for key, values in table.items() for value in values])


def _last_value_invalid(drawn: list[str], invalid: list[str]) -> list[str]:
    """``drawn`` less each valid value that follows an invalid one of its key (the last value of a key wins)."""
    spoilt, kept = set(), []
    for override in drawn:
        key = override.split("=")[0]
        if override in invalid:  # VALID and INVALID share no value of a key
            spoilt.add(key)
        elif key in spoilt:
            continue
        kept.append(override)
    return kept


overrides = st.tuples(st.lists(_pairs(VALID), max_size=4), st.lists(_pairs(INVALID), min_size=1, max_size=3)).flatmap(
    lambda parts: st.permutations(parts[0] + parts[1]).map(lambda drawn: _last_value_invalid(drawn, parts[1])))


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def existing_run(out: Path) -> Path:
    """A complete-looking run folder: config, a checkpoint --resume accepts, a model, scores."""
    run = out / "quickstart"
    save_config(load_config(CONFIG, [*FAST, f"output.dir={out}"]), run / "config.yaml")
    checkpoint = run / "checkpoints" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    save_file({"weight": numpy.zeros(1, dtype=numpy.float32)}, str(checkpoint / "model.safetensors"))
    (run / "model").mkdir()
    (run / "model" / "model.safetensors").write_bytes(b"weights")
    (run / "summary.json").write_text('{"best_dev_f1": 0.5}')
    (run / "metrics.jsonl").write_text('{"step": 2, "dev_f1": 0.5}\n')
    return run


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=overrides, flag=st.sampled_from([[], ["--overwrite"], ["--resume"]]))
@example(drawn=["training.window=4096"], flag=["--overwrite"])  # the checks only the model can make
@example(drawn=["training.window=4096", "training.stride=0"], flag=["--resume"])
@example(drawn=["model.name=/nonexistent/encoder"], flag=["--overwrite"])
@example(drawn=["data.train=[missing/file.txt]"], flag=["--resume"])
@example(drawn=["training.learning_rate=1e-3", "training.learning_rate=-1"], flag=["--overwrite"])  # the last value wins
def test_random_overrides_give_one_line_and_leave_the_run_alone(tmp_path_factory, capsys, drawn, flag):
    out = tmp_path_factory.mktemp("out")
    existing_run(out)
    before = snapshot(out)
    argv = ["train", str(CONFIG), *[a for o in [*FAST, f"output.dir={out}", *drawn] for a in ("--set", o)], *flag]
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("kayan: error: "), (drawn, flag, err)
    assert "cannot resume from this checkpoint" not in err  # the config's checks are under test, not the checkpoint
    assert snapshot(out) == before, (drawn, flag)


# ---------------------------------------------------------------- issue 21: output paths

TARGETS = ("input", "inside", "parent", "file", ".", "..", "foreign", "new", "empty", "evaluation", "package", "run")
COMMANDS = ("compare", "evaluate", "export", "package", "train")
OWN = {"evaluate": "evaluation", "package": "package", "train": "run"}  # the target holding an output of the command's kind


def workspace(root: Path, built: dict) -> dict[str, Path]:
    """A run, a package, a corpus, an evaluation folder, a foreign folder, a file, an empty folder, the current folder."""
    shutil.copytree(built["run"], root / "train" / "run")
    (root / "train" / "notes.txt").write_text("the runs of my thesis")
    shutil.copy(root / "train" / "run" / "test_predictions.txt", root / "train" / "predictions-b.txt")
    shutil.copytree(built["package"], root / "models" / "pkg")
    (root / "corpus").mkdir()
    shutil.copy(SAMPLE_DIR / "test.txt", root / "corpus" / "mine.txt")
    (root / "eval").mkdir()
    for name in ("predictions.txt", "metrics.json", "report.md"):  # as Kayan versions without markers wrote it
        (root / "eval" / name).write_text("{}")
    for folder, name in (("thesis", "thesis.txt"), ("here", "notes.txt")):
        (root / folder).mkdir()
        (root / folder / name).write_text("three years of work")
    (root / "file.txt").write_text("a file, not a folder")
    (root / "empty").mkdir()
    return {"run": root / "train" / "run", "package": root / "models" / "pkg", "corpus": root / "corpus" / "mine.txt",
            "predictions": root / "train" / "run" / "test_predictions.txt", "evaluation": root / "eval",
            "foreign": root / "thesis", "file": root / "file.txt", "empty": root / "empty", "new": root / "new"}


def command(name: str, model: str, paths: dict[str, Path], target: str, overwrite: bool) -> tuple[list[str], Path, Path]:
    """``kayan`` argv writing to ``target``, the input it reads, and the output folder it names."""
    source = {"evaluate": paths[model], "compare": paths["predictions"], "package": paths["run"]}.get(name, paths["corpus"])
    out = {"input": source, "inside": source / "new", "parent": source.parent, ".": Path("."), "..": Path("..")}.get(
        target, paths.get(target))
    flag = ["--overwrite"] if overwrite and name in ("package", "export", "train") else []
    if name == "evaluate":
        return ["evaluate", str(source), "--data", "sample:test", "--bootstrap", "0", "--out", str(out), "--quiet"], source, out
    if name == "compare":
        other = paths["run"].parent / "predictions-b.txt"
        return ["compare", str(source), str(other), "--samples", "10", "--out", str(out), "--quiet"], source, out
    if name == "package":
        return ["package", str(source), str(out), "--quiet", *flag], source, out
    if name == "export":
        return ["data", "export", str(source), "--to", str(out), *flag], source, out
    parent, run_name = (paths["run"].parent, str(out)) if target in (".", "..") else (out.parent, out.name)
    sets = [*FAST, "training.epochs=1", "training.max_steps=2", "training.eval_steps=2", f"data.train=[{source}]",
            f"output.dir={parent}", f"output.run_name={run_name}"]
    return ["train", str(CONFIG), *[a for o in sets for a in ("--set", o)], "--quiet", *flag], source, parent / run_name


def files(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.sampled_from(COMMANDS), model=st.sampled_from(["run", "package"]), target=st.sampled_from(TARGETS),
       overwrite=st.booleans())
@example(name="evaluate", model="package", target="input", overwrite=False)  # the cases of issue 21
@example(name="evaluate", model="run", target=".", overwrite=False)
@example(name="package", model="run", target="parent", overwrite=True)
@example(name="package", model="run", target="package", overwrite=True)  # its own kind: replaced
@example(name="export", model="run", target="parent", overwrite=True)
@example(name="train", model="run", target=".", overwrite=True)
@example(name="train", model="run", target="foreign", overwrite=True)
def test_no_output_path_loses_a_file_kayan_did_not_write(built, tmp_path_factory, capsys, name, model, target, overwrite):
    root = tmp_path_factory.mktemp("outputs")
    paths = workspace(root, built)
    argv, source, out = command(name, model, paths, target, overwrite)
    with contextlib.chdir(root / "here"):
        where = out.resolve()
        before = files(root)
        status = main(argv)
    err = capsys.readouterr().err
    assert status in (0, 2) and (status == 0 or err.count("\n") == 1), (argv, status, err)
    after = files(root)
    lost = [path for path, digest in before.items() if after.get(path) != digest]
    allowed = status == 0 and OWN.get(name) == target and source.resolve() not in [where, *where.parents]
    assert not lost or (allowed and all(where in path.parents for path in lost)), (argv, status, err, lost)
