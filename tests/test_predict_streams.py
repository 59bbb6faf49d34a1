"""kayan predict on streams: a pipe kept open is answered line by line, a big file's records come out
while it is tagged, and memory does not grow with the input (issue 21, items 7 and 8)."""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import kayan
from kayan.inference import predict_io
from tests.tiny_package import sample_words

REPO = Path(__file__).resolve().parent.parent
ANSWER_SECONDS = 20  # a line's record, once the model is loaded
LOAD_SECONDS = 120  # starting Python and loading the model on a busy machine


def _predict(model: Path, *args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    command = [sys.executable, "-m", "kayan.cli", "predict", str(model), *args, "--backend", "torch", "--threads", "1"]
    return subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)


def _lines_of(stream) -> queue.Queue:
    """The lines of ``stream`` as they come (``None`` at its end), read on a thread."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _article(lines: int) -> str:
    sentences = [" ".join(words) + " ." for words in sample_words()]
    return "\n".join(sentences[i % len(sentences)] for i in range(lines)) + "\n"


def test_a_pipe_kept_open_is_answered_line_by_line(built):
    process = _predict(built["noisy"], stdin=subprocess.PIPE)
    records = _lines_of(process.stdout)
    try:
        for number, (line, wait) in enumerate([("زار الرئيس محمد بغداد.", LOAD_SECONDS), ("وقال إن القاهرة جميلة", ANSWER_SECONDS)], 1):
            process.stdin.write(f"{line}\n".encode())
            process.stdin.flush()  # and the pipe stays open: no end of input to wait for
            record = json.loads(records.get(timeout=wait))
            assert record["source"] == f"<stdin>:{number}" and record["entities"], record
            assert all(line[e["start"] : e["end"]] == e["text"] for e in record["entities"])
        process.stdin.close()
        assert records.get(timeout=ANSWER_SECONDS) is None and process.wait(ANSWER_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _peak_kib(process: subprocess.Popen) -> tuple[int, int]:
    """Exit status and peak resident memory (KiB, Linux) of a finished child, reaped here."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="os.wait4 (peak memory of a child) is POSIX only")
def test_a_big_files_records_come_while_it_is_tagged_and_memory_stays_flat(built, tmp_path):
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    small.write_text(_article(400), encoding="utf-8")  # about 10k words: one full chunk, as big has
    big.write_text(_article(4000), encoding="utf-8")  # 0.6 MB: one record per file grew the peak by 60 MiB, lines by 5
    process = _predict(built["noisy"], str(small))
    process.stdout.read()
    status, small_peak = _peak_kib(process)
    assert status == 0, process.stderr.read()

    process = _predict(built["noisy"], str(big))
    records = _lines_of(process.stdout)
    first = json.loads(records.get(timeout=LOAD_SECONDS))
    still_tagging = process.poll() is None
    count = 1 + sum(1 for _ in iter(lambda: records.get(timeout=LOAD_SECONDS), None))
    status, big_peak = _peak_kib(process)
    assert status == 0, process.stderr.read()
    assert first["source"] == f"{big}:1" and still_tagging and count == 4000
    grown = (big_peak - small_peak) / 1024
    assert grown < 25, f"peak memory grew by {grown:.0f} MiB from a 0.06 MB file to a 0.6 MB one"


def test_a_long_line_is_read_in_bounded_pieces_and_tagged_as_one(built, monkeypatch):
    predictor = kayan.load(built["noisy"], backend="torch")
    line = " ".join(" ".join(words) + " ." for words in sample_words()[:40])  # about 2,600 characters, one line
    monkeypatch.setattr(predict_io, "PIECE_CHARS", 300)
    monkeypatch.setattr(predict_io, "READ_BYTES", 64)
    pieces = list(predict_io.read_pieces([], io.BytesIO(f"{line}\r\nفي عمان\n".encode())))
    assert all(len(p.text) <= 300 for p in pieces) and len(pieces) > 8
    assert "".join(p.text for p in pieces[:-1]) == line and [p.last for p in pieces].count(True) == 2
    assert [p.offset for p in pieces[:-1]] == [sum(len(p.text) for p in pieces[:i]) for i in range(len(pieces) - 1)]
    out = io.StringIO()
    assert predict_io.write_predictions(predictor, pieces, out) == 2
    record = json.loads(out.getvalue().splitlines()[0])
    expected = predictor.predict(line)
    assert record["source"] == "<stdin>:1" and len(record["entities"]) == len(expected) > 10
    assert [(e["text"], e["start"], e["end"]) for e in record["entities"]] == [(e.text, e.start, e.end) for e in expected]


def test_idle_input_tags_what_has_arrived(built):
    """A ``None`` from the reader (its input idle) writes the records of the lines before it at once."""
    predictor = kayan.load(built["noisy"], backend="torch")
    out, seen = io.StringIO(), []

    def pieces():
        yield predict_io.Piece("<stdin>:1", "زار الرئيس محمد بغداد.", document=1)
        yield None  # idle: the reader would now wait for the next line
        seen.append(out.getvalue().count("\n"))
        yield predict_io.Piece("<stdin>:2", "وقال إن القاهرة جميلة", document=2)

    assert predict_io.write_predictions(predictor, pieces(), out) == 2 and seen == [1]
