"""Whatever a user types gives one line and status 2, never a traceback (issue 12, items 7-16).

Numbers out of range on the command line and in the library, damaged kayan.json settings, a
``None`` word, a changed config.json, label sets that differ, a missing data file, a BOM, and the
``predict`` usage line.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from kayan import evaluation
import kayan
from kayan.cli import main
from kayan.data.sentence import Sentence
from kayan.errors import KayanError


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["predict", "M", "--batch-size", "0"], "argument --batch-size: 0 is out of range; it must be at least 1"),
    (["predict", "M", "--batch-size", "-1"], "--batch-size: -1 is out of range"),
    (["evaluate", "M", "--data", "sample:test", "--batch-size", "0"], "--batch-size: 0 is out of range"),
    (["evaluate", "--predictions", "p.txt", "--bootstrap", "-5"], "--bootstrap: -5 is out of range; it must be at least 0"),
    (["compare", "A", "B", "--data", "sample:test", "--samples", "0"], "--samples: 0 is out of range"),
    (["compare", "A", "B", "--data", "sample:test", "--seed", "-1"], "--seed: -1 is out of range"),
    (["train", "c.yaml", "--seeds", "1", "-2"], "--seeds: -2 is out of range"),
    (["data", "stats", "sample", "--dev-fraction", "1.5"], "--dev-fraction: 1.5 is out of range"),
    (["export", "M", "--onnx", "--limit", "0"], "--limit: 0 is out of range"),
    (["export", "M", "--onnx", "--tolerance", "nan"], "--tolerance: nan is not a finite number"),
    (["tune", "c.yaml", "--max-minutes", "inf"], "--max-minutes: inf is not a finite number; give one (greater than 0), or leave the option out"),
    (["predict", "M", "--threads", "0"], "--threads: 0 is out of range"),
    (["predict", "M", "--batch-size", "big"], "--batch-size: 'big' is not an integer"),
])
def test_command_line_numbers_are_checked_in_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert one_line(err) and message in err, err


def test_library_numbers_are_checked_before_any_work(built):
    with pytest.raises(KayanError, match="batch_size is 0; it must be a whole number, at least 1"):
        kayan.load(built["package"], batch_size=0)
    with pytest.raises(KayanError, match="batch_size is -1"):
        evaluation.evaluate_model(built["package"], "sample:test", batch_size=-1)
    gold = [Sentence(("في", "بغداد"), ("O", "B-LOC"))]
    with pytest.raises(KayanError, match="bootstrap_samples is -5; it must be a whole number, at least 0"):
        evaluation.evaluate(gold, [["O", "B-LOC"]], bootstrap_samples=-5)
    with pytest.raises(KayanError, match="samples is 0; it must be a whole number, at least 1"):
        evaluation.compare(gold, [["O", "B-LOC"]], [["O", "O"]], samples=0)


@pytest.mark.parametrize("change, message", [
    ({"window": "big"}, "window is 'big', not a whole number"),
    ({"stride": "abc"}, "stride is 'abc', not a whole number"),
    ({"window": 2}, "window 2 leaves no room for words"),
    ({"stride": -1}, "stride -1 must be at least 0"),
    ({"stride": 62}, "stride 62 must be at least 0 and less than the window minus 2"),
    ({"window": 64.0}, "window is 64.0, not a whole number"),
    ({"labels": 5}, "labels is 5, not a list of tag names"),  # kayan.json's reader checks types first
    ({"normalization": 5}, "normalization is 5, not a list of step names"),
    ({"normalization": [[1]]}, "normalization is [[1]], not a list"),
    ({"decoding": [1]}, "decoding [1] (from"),
])
def test_damaged_kayan_json_settings_are_one_line(built, tmp_path, capsys, monkeypatch, change, message):
    folder = tmp_path / "pkg"
    shutil.copytree(built["package"], folder)
    meta = json.loads((folder / "kayan.json").read_text(encoding="utf-8"))
    (folder / "kayan.json").write_text(json.dumps({**meta, **change}), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("زار محمد بغداد\n".encode()), encoding="utf-8"))
    assert main(["predict", str(folder), "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and message in err, err


@pytest.mark.parametrize("words, message", [([None], "holds a NoneType (None) at word 0"),
                                            (["في", 3], "holds a int (3) at word 1")])
def test_predict_words_names_a_word_that_is_not_a_str(built, words, message):
    tagger = kayan.load(built["package"], backend="torch")
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tagger.predict_words(words)


def test_changed_config_json_fails_without_library_noise(built, tmp_path, capfd, monkeypatch):
    folder = tmp_path / "pkg"
    shutil.copytree(built["package"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_size": config["hidden_size"] + 16}))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"x\n"), encoding="utf-8"))
    assert main(["predict", str(folder), "--backend", "torch"]) == 2
    err = capfd.readouterr().err
    assert one_line(err) and "shapes differ from those config.json describes" in err, err


def _predictions(tmp_path, pred: str):
    path = tmp_path / "pred.txt"
    path.write_text(f"زار O O\nمحمد B-PERS {pred}\nبغداد B-LOC B-LOC\n", encoding="utf-8")
    return path


def test_predictions_with_other_type_names_warn_and_label_map_fixes_them(tmp_path, capsys):
    path = _predictions(tmp_path, "B-PER")
    assert main(["evaluate", "--predictions", str(path), "--bootstrap", "0", "--json"]) == 0
    captured = capsys.readouterr()
    assert "gold types [LOC, PERS] and predicted types [LOC, PER] differ" in captured.err
    assert "--label-map PERS=PER" in captured.err and json.loads(captured.out)["default"]["micro"]["f1"] == 0.5
    assert main(["evaluate", "--predictions", str(path), "--bootstrap", "0", "--json", "--label-map", "PERS=PER"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["default"]["micro"]["f1"] == 1.0


def test_predictions_with_the_same_types_do_not_warn(tmp_path, capsys):
    assert main(["evaluate", "--predictions", str(_predictions(tmp_path, "B-PERS")), "--bootstrap", "0"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("ref", ["missing/file.txt", "./nope.conll", "nope.txt:train"])
def test_a_data_path_that_does_not_exist_is_called_a_missing_file(capsys, ref):
    assert main(["data", "stats", ref]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "no such file" in err and "unknown corpus" not in err


def test_bom_is_not_counted_in_offsets(built, tmp_path, capsys):
    text = "زار الرئيس محمد بغداد.\nوقال إن القاهرة جميلة"
    plain, marked = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_bytes(text.encode("utf-8"))
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert main(["predict", str(built["noisy"]), str(plain), str(marked), "--backend", "torch"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in records] == [f"{plain}:1", f"{plain}:2", f"{marked}:1", f"{marked}:2"]
    assert records[0]["entities"] and [r["entities"] for r in records[:2]] == [r["entities"] for r in records[2:]]
    decoded = marked.read_bytes().decode("utf-8-sig").split("\n")  # the rule: offsets index the lines after the BOM
    assert all(decoded[i][e["start"]:e["end"]] == e["text"] for i, r in enumerate(records[2:]) for e in r["entities"])


def test_predict_usage_names_only_model_and_dash_reads_stdin(built, capsys, monkeypatch):
    assert main(["predict"]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "required: MODEL;" in err and "FILE" not in err
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("زار محمد بغداد\nفي عمان\n".encode()), encoding="utf-8"))
    assert main(["predict", str(built["package"]), "-", "--backend", "torch"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in records] == ["<stdin>:1", "<stdin>:2"]


def test_output_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    path = _predictions(tmp_path, "B-PERS")
    assert main(["evaluate", "--predictions", str(path), "--bootstrap", "0", "--out", str(tmp_path / "file" / "eval")]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "cannot write" in err


def test_a_kayan_bug_keeps_its_traceback_and_says_so(monkeypatch, capsys):
    import kayan.cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(kayan.cli, "_data_list", broken)
    assert main(["data", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "is a bug in Kayan" in err.splitlines()[-1]


def test_package_into_a_folder_another_process_just_wrote_fails(built, tmp_path, monkeypatch):
    from kayan.inference import packaging

    out, real = tmp_path / "pkg", packaging.model_card

    def racing(meta, name):  # another `kayan package` finishes the same target while this one writes
        out.mkdir()
        (out / "other").write_text("another package")
        return real(meta, name)

    monkeypatch.setattr(packaging, "model_card", racing)
    with pytest.raises(KayanError, match="already exists .*pass --overwrite"):
        packaging.package(built["run"], out)
    assert [p.name for p in out.iterdir()] == ["other"] and sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]


def test_weights_are_readable_by_others(built):
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    expected = 0o666 & ~mask  # 0o644 under the usual umask 022; safetensors itself writes 0o600
    for path in (built["package"] / "model.safetensors", built["run"] / "model" / "model.safetensors"):
        assert path.stat().st_mode & 0o777 == expected, (path, oct(path.stat().st_mode))


def test_repeated_seeds_are_refused_before_training(capsys):
    config = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
    assert main(["train", str(config), "--seeds", "1", "2", "1"]) == 2
    assert "a seed is repeated" in capsys.readouterr().err
