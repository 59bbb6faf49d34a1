"""scripts/bench_archive.py's own parts: the output check, words/s, medians and ratios, --out's refusal, and the
documents it counts (issue 23). The timed paths themselves are processes of the CLI and of Ray (seconds each,
a minute together here): the script is run by hand, not in the suite."""

from __future__ import annotations

import doctest
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from kayan.inference.predict_io import PIECE_CHARS

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def bench():
    """scripts/bench_archive.py as a module (it puts scripts/ on the path for its benchmark package: taken off after)."""
    before = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_archive", SCRIPTS / "bench_archive.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = before
    return module


def test_doctests(bench):
    assert doctest.testmod(bench).failed == 0


def _record(source: str, *spans: tuple[int, int, float]) -> dict:
    return {"source": source, "entities": [{"type": "LOC", "start": a, "end": b, "score": s} for a, b, s in spans],
            "model_sha256": "x"}


def test_outputs_must_hold_the_same_entities_and_offsets(bench):
    reference = {"f:1": _record("f:1", (0, 4, 0.91)), "f:2": _record("f:2")}
    assert bench.differences(reference, {"f:2": _record("f:2"), "f:1": _record("f:1", (0, 4, 0.9109))})["same"]
    assert bench.differences(reference, {**reference, "f:1": _record("f:1", (0, 5, 0.91))})["first_difference"] == "f:1"
    assert bench.differences(reference, {**reference, "f:3": _record("f:3")})["first_difference"] == "f:3 extra"
    far = bench.differences(reference, {**reference, "f:1": _record("f:1", (0, 4, 0.93))})
    assert not far["same"] and far["max_score_difference"] == pytest.approx(0.02)


def test_a_document_written_twice_is_refused(bench, tmp_path):
    shard = tmp_path / "records.jsonl"
    shard.write_text(json.dumps(_record("f:1")) + "\n" + json.dumps(_record("f:1")) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="f:1 written twice"):
        bench.read_records([shard])


def test_medians_and_ratios_to_one_worker(bench):
    runs = [{"path": key, "wall_s": 100.0 / speed, "startup_s": 1.0, "words_per_second": rate * speed,
             "words_per_second_startup_excluded": None if key == "d" else 2 * rate * speed}
            for key, speed in (("a", 1.0), ("b", 0.5), ("c", 0.9), ("d", 0.75)) for rate in (100.0, 300.0, 200.0)]
    rows = {row["path"]: row for row in bench.summary(runs, ["a", "b", "c", "d"])}
    assert rows["a"]["words_per_second"] == 200.0 and rows["a"]["rounds_words_per_second"] == [100.0, 300.0, 200.0]
    assert rows["c"]["ratio_to_a"] == pytest.approx(0.9) and rows["c"]["ratio_to_b"] == pytest.approx(1.8)
    assert rows["c"]["ratio_to_b_startup_excluded"] == pytest.approx(1.8)
    assert rows["d"]["words_per_second_startup_excluded"] is None and rows["d"]["ratio_to_a_startup_excluded"] is None
    table = bench.table(list(rows.values()))
    assert "| (c) --workers 2 --threads 1 | 111.1 | 180 | 0.90× | 1.80× |" in table and "| – | – | – |" in table


def test_out_refuses_what_the_script_did_not_write(bench, tmp_path):
    bench.check_out(None)
    bench.check_out(tmp_path / "new.json")
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"benchmark": bench.MARK, "rows": []}), encoding="utf-8")
    bench.check_out(ours)
    for name, text in (("other.json", json.dumps({"argv": [], "machine": {}, "rows": []})), ("list.json", "[]"),
                       ("notes.txt", "notes")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(SystemExit, match="not a result this script wrote"):
            bench.check_out(tmp_path / name)
    with pytest.raises(SystemExit, match="not a result this script wrote"):
        bench.check_out(tmp_path)


def test_documents_are_whole_lines_named_as_kayan_predict_names_them(bench, tmp_path):
    long = " ".join(["كلمة."] * (PIECE_CHARS // 4))  # read in pieces by kayan predict
    source = tmp_path / "news.txt"
    source.write_text(f"محمد في القاهرة\n{long}\n\nذهب أحمد", encoding="utf-8")
    assert bench.documents(source) == [(f"{source}:1", "محمد في القاهرة"), (f"{source}:2", long), (f"{source}:3", ""),
                                       (f"{source}:4", "ذهب أحمد")]
    first = bench.head(source, 2, tmp_path)
    assert first.read_text(encoding="utf-8") == f"محمد في القاهرة\n{long}\n"
