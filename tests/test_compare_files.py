"""`kayan compare` on two predictions files (token gold predicted): systems Kayan did not run,
such as the plain transformers recipe in scripts/benchmark.py, tested against Kayan's own."""

from __future__ import annotations

import json

from kayan.cli import main

GOLD = [[("زار", "O"), ("محمد", "B-PERS"), ("عمان", "B-LOC")], [("في", "O"), ("بيروت", "B-LOC")]] * 20


def _write(path, predicted):
    lines = []
    for sentence, tags in zip(GOLD, predicted):
        lines += [f"{word} {gold} {tag}" for (word, gold), tag in zip(sentence, tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_two_predictions_files_are_compared_without_data(tmp_path, capsys):
    perfect = _write(tmp_path / "a.txt", [[g for _, g in s] for s in GOLD])
    missing = _write(tmp_path / "b.txt", [["O"] * len(s) for s in GOLD])
    assert main(["compare", str(perfect), str(missing), "--samples", "200", "--json", "--out", str(tmp_path / "out")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["delta"] == 1.0 and result["paired_bootstrap"]["p_value"] < 0.05
    assert (tmp_path / "out" / "compare.json").is_file()


def test_predictions_of_other_data_are_refused(tmp_path, capsys):
    a = _write(tmp_path / "a.txt", [[g for _, g in s] for s in GOLD])
    other = tmp_path / "b.txt"
    other.write_text(a.read_text(encoding="utf-8").replace("عمان B-LOC", "عمان O", 1), encoding="utf-8")
    assert main(["compare", str(a), str(other)]) == 2
    error = capsys.readouterr().err.strip()
    assert "sentence 1" in error and "gold tags" in error and len(error.splitlines()) == 1


def test_a_model_needs_data(tmp_path, built, capsys):
    a = _write(tmp_path / "a.txt", [[g for _, g in s] for s in GOLD])
    assert main(["compare", str(built["package"]), str(a)]) == 2
    assert "give --data" in capsys.readouterr().err
