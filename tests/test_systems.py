"""kayan.evaluation.systems: `kayan evaluate` and `kayan compare` as library functions give a Python caller
exactly what the command prints and writes (the label map on a predictions file, compare's type intervals)."""

from __future__ import annotations

import json

import pytest

from kayan.cli import main
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.evaluation import compare_systems, evaluate_system, predictions_text

GOLD = [Sentence(("زار", "محمد", "عمان"), ("O", "B-PERS", "B-LOC")), Sentence(("في", "بيروت"), ("O", "B-LOC"))] * 10
PERFECT = [list(s.tags) for s in GOLD]
MISSING = [["O"] * len(s) for s in GOLD]


def _write(path, predicted):
    path.write_text(predictions_text(GOLD, predicted), encoding="utf-8")
    return path


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ".kayan-output"}


def test_evaluate_system_is_the_command_label_map_and_warning_included(tmp_path, capsys):
    path = _write(tmp_path / "pred.txt", PERFECT)
    warned = []
    report = evaluate_system(predictions=path, out=tmp_path / "lib", label_map={"PERS": "PER"}, bootstrap_samples=50,
                             warn=warned.append)
    assert main(["evaluate", "--predictions", str(path), "--out", str(tmp_path / "cli"), "--label-map", "PERS=PER",
                 "--bootstrap", "50", "--json"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == json.loads(json.dumps(report))
    assert _files(tmp_path / "lib") == _files(tmp_path / "cli")
    types = report["default"]["types"]
    assert (types["PER"]["support"], types["PERS"]["support"]) == (10, 0)  # the gold renamed, not the predictions
    assert len(warned) == 1 and printed.err == f"kayan: warning: {warned[0]}\n"  # PER never predicted, PERS never gold


def test_compare_systems_is_the_command_type_intervals_included(tmp_path, capsys):
    a, b = _write(tmp_path / "a.txt", PERFECT), _write(tmp_path / "b.txt", MISSING)
    result = compare_systems(a, b, out=tmp_path / "lib", samples=50)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cli"), "--samples", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    assert set(result["type_intervals"]) == {str(a), str(b)} and result["type_intervals"][str(a)]["micro"] == [1.0, 1.0]
    lib, cli = _files(tmp_path / "lib"), _files(tmp_path / "cli")
    assert sorted(lib) == ["compare.json", "compare.md", "compare.png"]
    assert lib["compare.json"].replace(b"lib", b"cli") == cli["compare.json"].replace(b"lib", b"cli")
    assert lib["compare.md"] == cli["compare.md"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda p: evaluate_system(predictions=p, html=True), "give --out DIR too"),
    (lambda p: evaluate_system("model", data="sample:test", predictions=p), "not both"),
    (lambda p: evaluate_system("model"), "needs MODEL and --data"),
    (lambda p: compare_systems(p, p), "are the same system"),
    (lambda p: compare_systems(p, p.parent / "model"), "give --data"),
])
def test_wrong_combinations_are_refused_before_anything_is_tagged(tmp_path, call, message):
    with pytest.raises(KayanError, match=message):
        call(_write(tmp_path / "pred.txt", PERFECT))
