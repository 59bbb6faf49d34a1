"""What is almost certainly a mistake is refused in one line (or, where it can be meant, warned about
once), and no command ends in a traceback for it (issue 21 items 5, 6, 10-13)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kayan
from kayan import atomic
from kayan.cli import main
from kayan.config import load_config
from kayan.data.rundata import load_run_data
from kayan.errors import KayanError
from tests.conftest import FAST, REPO, SAMPLE_DIR, fast_config


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


def _all_o(tmp_path: Path) -> Path:
    lines = [f"{line.split()[0]} O" if line.strip() else "" for line in (SAMPLE_DIR / "train.txt").read_text(encoding="utf-8").splitlines()]
    path = tmp_path / "all-o.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- item 6: refused, or warned once

def test_training_data_without_any_entity_is_refused(tmp_path):
    with pytest.raises(KayanError, match=r"data.train \(.*all-o.txt\) has no entity in its 262 sentences: .*only ever answers O"):
        load_run_data(load_config(None, [f"data.train=[{_all_o(tmp_path)}]", "data.dev=[sample:dev]"]).data)


def test_a_test_split_identical_to_train_is_warned_about_in_the_summary(tmp_path, capsys):
    config = fast_config(tmp_path, "training.epochs=1", "data.test=[sample:train]")
    data = load_run_data(config.data)
    assert data.test.warnings == ["data.test is identical to data.train (262 sentences): its scores say nothing about new "
                                  "text; give a different split"]
    assert data.dev.warnings == []
    args = ["train", str(REPO / "configs" / "quickstart.yaml"), *[a for item in [*FAST, "training.epochs=1",
            "data.test=[sample:train]", f"output.dir={tmp_path}"] for a in ("--set", item)], "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("warning: data.test is identical to data.train") == 1
    summary = json.loads((tmp_path / "quickstart" / "summary.json").read_text(encoding="utf-8"))
    assert summary["data_warnings"] == data.test.warnings


def test_dev_identical_to_test_is_warned_about(tmp_path):
    data = load_run_data(load_config(None, ["data.dev=[sample:test]", "data.test=[sample:test]"]).data)
    assert data.test.warnings == ["data.test is identical to data.dev (46 sentences): its scores say nothing about new "
                                  "text; give a different split"]


@pytest.mark.parametrize("mapping, message", [
    ("{MISC: B-PERS}", "maps 'MISC' to 'B-PERS', a tag; map entity types to entity types or O: {MISC: PERS}"),
    ("{B-MISC: PERS}", "maps 'B-MISC' to 'PERS', a tag"),
    ("{MISC: 'two words'}", "has the entity type 'two words'; types are names without spaces"),
])
def test_a_label_map_to_tags_is_refused(mapping, message):
    with pytest.raises(KayanError, match=f"config key data.label_map {message}".replace("{", r"\{").replace("}", r"\}").replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [f"data.label_map={mapping}"])


def test_a_yaml_key_given_twice_is_refused_with_its_line(tmp_path, capsys):
    config = tmp_path / "dup.yaml"
    config.write_text("training:\n  epochs: 1\n  batch_size: 8\n  epochs: 2\n", encoding="utf-8")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and f"{config}:4: not valid YAML (key 'epochs' is given twice in one section (first at line 2); keep one)" in err
    assert not (tmp_path / "train").exists()


def test_an_ensemble_of_one_run_twice_is_refused(built, tmp_path, capsys):
    run = built["run"]
    for pair in ([run, run], [run, run / "model"], [built["package"], run]):
        assert main(["package", *map(str, pair), str(tmp_path / "ensemble")]) == 2
        err = capsys.readouterr().err
        assert one_line(err) and "is the same model as" in err and "give each run once" in err, err
    assert not (tmp_path / "ensemble").exists()


@pytest.mark.parametrize("words", [[""], [" "], ["محمد", "\t"], ["\u00a0"]])
def test_predict_words_refuses_empty_words(built, words):
    tagger = kayan.load(built["noisy"], backend="torch")
    with pytest.raises(ValueError, match=r"sentence 0 holds an empty word \(.*\) at word \d; words are tokens"):
        tagger.predict_words(words)
    with pytest.raises(ValueError, match="sentence 1 holds an empty word"):
        tagger.predict_words_batch([["محمد"], words])


def test_data_stats_on_an_all_o_file_counts_zero(tmp_path, capsys):
    path = _all_o(tmp_path)
    assert main(["data", "stats", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    entities = stats["train"]["entities"] if "train" in stats else stats["entities"]
    assert entities["conlleval_total"] == 0 and entities["strict_iob2_total"] == 0
    assert main(["data", "stats", str(path)]) == 0
    assert "0  (strict IOB2)" in capsys.readouterr().out


# ---------------------------------------------------------------- item 10: tracebacks become one line

def test_bad_json_data_is_one_line(tmp_path, capsys):
    bad = tmp_path / "BAD.json"
    bad.write_text('{"a": [1,', encoding="utf-8")
    assert main(["data", "stats", f"json:{bad}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"kayan: error: json:{bad}: could not load the dataset (ArrowInvalid: JSON parse error")


@pytest.mark.parametrize("top", ["- a\n", "3\n"])
def test_a_config_that_is_not_a_mapping_is_one_line(tmp_path, capsys, top):
    config = tmp_path / "c.yaml"
    config.write_text(top, encoding="utf-8")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "expected a mapping of keys" in err


def test_compare_a_system_with_itself_is_refused_before_tagging(built, tmp_path, capsys, monkeypatch):
    predictions = built["run"] / "test_predictions.txt"
    monkeypatch.chdir(predictions.parent)
    for a, b in ((str(predictions), "test_predictions.txt"), (str(built["run"]), str(built["run"] / "model"))):
        assert main(["compare", a, b, "--data", "sample:test"]) == 2
        err = capsys.readouterr().err
        assert one_line(err) and "are the same system" in err, err


def test_kayan_load_of_none_is_one_line():
    with pytest.raises(KayanError, match="kayan.load needs the path of a model folder .*, not None"):
        kayan.load(None)


def test_ctrl_c_while_the_command_imports_is_one_line_and_130(tmp_path):
    """A KeyboardInterrupt raised inside the imports of ``kayan.cli`` (where a Ctrl-C in the first
    half-second lands), through the console script's entry point."""
    code = ("import sys\n"
            "class Interrupt:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'kayan.cli':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "from kayan.__main__ import main\n"
            "sys.exit(main(['data', 'stats', 'sample']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130 and done.stderr == "kayan: interrupted\n"


def test_the_console_script_enters_through_kayan_main():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'kayan = "kayan.__main__:main"' in text
    done = subprocess.run([sys.executable, "-m", "kayan", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and kayan.__version__ in done.stdout


def test_the_package_version_is_the_one_kayan_reports():
    # Archive jobs and packages record kayan.__version__; pip reads pyproject's: they must not drift.
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{kayan.__version__}"' in text


# ---------------------------------------------------------------- items 11-12: SIGTERM is Ctrl-C

def _kayan(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kayan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_sigterm_during_training_saves_a_checkpoint_as_ctrl_c_does(tmp_path):
    overrides = [a for item in [*FAST, "training.epochs=200", "training.early_stopping_patience=0",
                                f"output.dir={tmp_path}"] for a in ("--set", item)]
    process = _kayan("train", str(REPO / "configs" / "quickstart.yaml"), *overrides)
    run = tmp_path / "quickstart"
    deadline = time.monotonic() + 300
    while not (run / "metrics.jsonl").is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)  # training has begun once its first evaluation line is written
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "checkpoint saved in" in err and "continue with --resume" in err
    assert list((run / "checkpoints").glob("checkpoint-*"))


def test_sigterm_before_the_first_checkpoint_leaves_no_stub(tmp_path):
    overrides = [a for item in [*FAST, f"output.dir={tmp_path}"] for a in ("--set", item)]
    process = _kayan("train", str(REPO / "configs" / "quickstart.yaml"), *overrides)
    deadline = time.monotonic() + 300
    while not (tmp_path / "quickstart" / "config.yaml").is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # the run folder exists; training has not saved anything yet
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    run = tmp_path / "quickstart"
    assert not run.exists() or list((run / "checkpoints").glob("checkpoint-*"))  # removed, or stopped with a checkpoint


_EXEC_PROBE = """
import sys
from kayan import __main__ as entry, cli

def stats(args):
    exec("raise KeyboardInterrupt")  # as a signal landing in a dataclass's generated __init__ while a module imports

cli._data_stats = stats
command = cli.main if sys.argv[1:] == ["cli"] else entry.main  # python -m kayan.cli calls cli.main
sys.exit(command(["data", "stats", "sample:train"]))
"""


@pytest.mark.parametrize("entry", ["kayan", "cli"], ids=["python -m kayan", "python -m kayan.cli"])
def test_an_interrupt_landing_in_generated_code_still_exits_130_under_python_m(tmp_path, entry):
    """CPython marks a KeyboardInterrupt leaving ``exec``'d code as unhandled even when it is caught, and
    ``python -m`` then killed itself with SIGINT (-2) after printing "kayan: interrupted": CI's rare failure
    of the SIGTERM test above, when the signal landed in a dataclass's ``__init__``."""
    (tmp_path / "exec_probe.py").write_text(_EXEC_PROBE, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "exec_probe", entry], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stderr) == (130, "kayan: interrupted\n")


_FINALIZER_PROBE = """
import sys, time
from kayan import cli

class Slow:
    def __del__(self):
        print("finalizing", flush=True)
        time.sleep(1.5)  # the signal lands here

try:
    with cli._sigterm_as_sigint():
        Slow()  # collected at once: its __del__ runs
        time.sleep(5)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_landing_in_a_finalizer_still_stops_the_command(signum):
    """Raised inside a ``__del__`` (garbage collection runs them at any moment), a KeyboardInterrupt is printed
    as "Exception ignored" and dropped: a SIGTERM sent while ``regex`` compiled its patterns let training run on."""
    process = subprocess.Popen([sys.executable, "-c", _FINALIZER_PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "finalizing"
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and out.strip() == "interrupted", (out, err)
    assert "Exception ignored" not in err


def test_a_stub_run_gets_messages_that_do_not_point_at_each_other(tmp_path, capsys):
    """A run killed outright (SIGKILL) before its first checkpoint: plain train and --resume both say --overwrite."""
    from kayan import outputs

    run = tmp_path / "quickstart"
    run.mkdir()
    outputs.mark(run, outputs.RUN)  # what OutputFolderTransaction.open writes first, with config.yaml
    (run / "config.yaml").write_text("model:\n  name: tiny\n", encoding="utf-8")
    base = ["train", str(REPO / "configs" / "quickstart.yaml"), "--set", f"output.dir={tmp_path}"]
    assert main(base) == 2
    plain = capsys.readouterr().err
    assert one_line(plain) and "stopped before its first checkpoint" in plain and "--overwrite" in plain
    assert "--resume" not in plain
    assert main([*base, "--resume"]) == 2
    resumed = capsys.readouterr().err
    assert one_line(resumed) and "start it again with --overwrite instead of --resume" in resumed
    assert "run without --resume" not in resumed


def test_resume_and_overwrite_together_are_refused(capsys):
    assert main(["train", "c.yaml", "--resume", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "--overwrite: not allowed with argument --resume" in err


def test_sigterm_during_package_leaves_no_partial_folder(built, tmp_path):
    """SIGTERM while the package is written: the half-built folder is removed (as on Ctrl-C)."""
    out = tmp_path / "pkg"
    code = ("import os, signal, sys\n"
            "from kayan.inference import packaging\n"
            "real = packaging._write_package\n"
            "def write(*args, **kwargs):\n"
            "    result = real(*args, **kwargs)\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return result\n"
            "packaging._write_package = write\n"
            "from kayan.cli import main\n"
            f"sys.exit(main(['package', {str(built['run'])!r}, {str(out)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 130, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_partial_folders_of_dead_processes_are_swept(tmp_path):
    target = tmp_path / "pkg"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".pkg.{dead}.abc123.partial"
    (stale / "weights").mkdir(parents=True)
    live = tmp_path / f".pkg.{os.getpid()}.def456.partial"
    live.mkdir()
    other = tmp_path / ".pkg.notes.partial"
    other.mkdir()
    with atomic.folder(target) as tmp:
        (tmp / "a.txt").write_text("1", encoding="utf-8")
    assert not stale.exists() and live.is_dir() and other.is_dir() and (target / "a.txt").is_file()


# ---------------------------------------------------------------- item 13: plain files say their own shape

def _sample_rows() -> list[list[tuple[str, str]]]:
    blocks = (SAMPLE_DIR / "train.txt").read_text(encoding="utf-8").split("\n\n")
    return [[tuple(line.split()) for line in block.splitlines() if line.strip()] for block in blocks if block.strip()]


def _write(tmp_path: Path, name: str, sentences: list[list[str]]) -> Path:
    path = tmp_path / name
    path.write_text("\n\n".join("\n".join(lines) for lines in sentences) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("scheme", ["BIOES", "BILOU"])
def test_bioes_and_bilou_plain_files_are_detected_and_converted(tmp_path, scheme):
    from kayan.data import corpora
    from kayan.data.schemes import iob2_to_bioes

    rows = _sample_rows()
    rename = {"S-": "U-", "E-": "L-"} if scheme == "BILOU" else {}
    converted = [[f"{w} {rename.get(t[:2], t[:2]) + t[2:] if t != 'O' else t}" for w, t in
                  zip([w for w, _ in s], iob2_to_bioes([t for _, t in s]))] for s in rows]
    dataset = corpora.load_split(str(_write(tmp_path, f"{scheme}.txt", converted)))
    assert dataset.scheme == scheme
    assert [s.tags for s in dataset.sentences] == [tuple(t for _, t in s) for s in rows]  # back to the IOB2 original
    assert dataset.report.notes() == []  # a conversion, not repairs


@pytest.mark.parametrize("layout, ignored", [("{w} NN {t}", "2"), ("{w} {t} x y", "3, 4")])
def test_columns_that_hold_no_tags_are_left_out_and_said(tmp_path, layout, ignored):
    from kayan.data import corpora

    rows = _sample_rows()
    path = _write(tmp_path, "cols.txt", [[layout.format(w=w, t=t) for w, t in s] for s in rows])
    dataset = corpora.load_split(str(path))
    assert [s.tags for s in dataset.sentences] == [tuple(t for _, t in s) for s in rows]
    assert f"{path}: column(s) {ignored} hold no tags and were left out" in dataset.report.notes()


def test_a_tag_column_can_be_named_for_a_plain_file(tmp_path):
    from kayan.data import corpora

    rows = _sample_rows()
    path = _write(tmp_path, "two.txt", [[f"{w} {t} {'O' if t != 'O' else 'B-LOC'}" for w, t in s] for s in rows])
    assert [s.tags for s in corpora.load_split(str(path), columns={"tags": "2"}).sentences] == [tuple(t for _, t in s) for s in rows]
    with pytest.raises(KayanError, match="data.columns.tags is '1'; for a CoNLL file give the tag column's number"):
        corpora.load_split(str(path), columns={"tags": "1"})


def test_a_bad_tag_in_a_plain_file_does_not_mention_tag_fixes(tmp_path, capsys):
    path = _write(tmp_path, "bad.txt", [["بغداد B-LOC NN", "في O IN"], ["زيد ZZ-PER NN"]])
    assert main(["data", "stats", str(path)]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and f"{path}:4: tag 'ZZ-PER'" in err and "tag_fixes" not in err
    assert "name its tag column with data.columns: {tags: N}" in err


def test_export_says_where_it_wrote_and_that_the_model_folder_changed(built, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import shutil

    run = tmp_path / "run"
    shutil.copytree(built["run"], run)
    assert main(["export", str(run), "--onnx", "--limit", "5"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out == (f"written: onnx/model.onnx in {run / 'model' / 'onnx'}; parity recorded in {run / 'model'}/kayan.json "
                   "(the model folder changed)")


# ---------------------------------------------------------------- item 5: a checkpoint is scored as trained

def test_a_checkpoint_is_applied_with_its_runs_settings_before_the_run_saved_a_model(built, tmp_path):
    import shutil

    from kayan.evaluation import evaluate_model

    run = tmp_path / "run"
    shutil.copytree(built["run"], run)
    checkpoint = sorted((run / "checkpoints").glob("checkpoint-*"))[-1]
    with_model = kayan.load(checkpoint, backend="torch")
    scored_with_model = evaluate_model(checkpoint, "sample:test", bootstrap_samples=0)
    shutil.rmtree(run / "model")  # as mid-training, or after a run stopped before saving its model
    without_model = kayan.load(checkpoint, backend="torch")
    assert without_model.model.options == with_model.model.options
    assert without_model.model.options.normalization == ("remove_diacritics", "remove_tatweel")
    scored_without = evaluate_model(checkpoint, "sample:test", bootstrap_samples=0)
    assert scored_without[0]["default"]["micro"] == scored_with_model[0]["default"]["micro"]
