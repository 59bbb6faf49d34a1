"""kayan predict --out: an archive tagged into shards, as plain kayan predict tags it, resumable after a
SIGKILL anywhere, the same on two workers as on one, and memory bounded (issue 23, part 1)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kayan
from kayan.inference.archive import count_documents, read_documents
from tests.test_predict_streams import _article, _peak_kib

REPO = Path(__file__).resolve().parent.parent
EXTRA = ("model_sha256", "kayan_version")
WAIT = 300  # a whole job on a busy machine


def _kayan(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "kayan.cli", "predict", *map(str, args), "--backend", "torch", "--threads", "1"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, start_new_session=True)


def _done(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=WAIT)
    return process.returncode, out.decode(), err.decode()


def _records(out: Path) -> list[str]:
    """The shards' lines, in shard order."""
    return [line for shard in sorted(out.glob("shard-*.jsonl")) for line in shard.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Two input files (the second ends without a line end) and their uninterrupted tagging with shards of 50."""
    folder = tmp_path_factory.mktemp("archive")
    first, second = folder / "a.txt", folder / "b.txt"
    first.write_text(_article(230), encoding="utf-8")
    second.write_text("\n" + _article(75).rstrip("\n"), encoding="utf-8")  # a blank first line: a document too
    return {"inputs": [first, second], "out": folder / "whole"}


@pytest.fixture(scope="module")
def whole(archive, built):
    status, out, err = _done(_kayan(built["noisy"], *archive["inputs"], "--out", archive["out"], "--shard-size", "50"))
    assert status == 0, err
    return _records(archive["out"])


def test_records_are_plain_predicts_with_the_model_digest_and_version(archive, built, whole):
    status, out, err = _done(_kayan(built["noisy"], *archive["inputs"]))
    assert status == 0, err
    plain = out.splitlines()
    assert len(whole) == len(plain) == 306 and len(list(archive["out"].glob("shard-*.jsonl"))) == 7
    digest = json.loads((built["noisy"] / "kayan.json").read_text(encoding="utf-8"))["weights_sha256"]
    for line, expected in zip(whole, plain):
        record, expected = json.loads(line), json.loads(expected)
        assert (record.pop("model_sha256"), record.pop("kayan_version")) == (digest, kayan.__version__)
        assert _without_scores(record) == _without_scores(expected)  # shards batch other sentences together:
        assert all(abs(a["score"] - b["score"]) <= 2e-4 for a, b in zip(record["entities"], expected["entities"]))
    manifest = json.loads((archive["out"] / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["complete"], manifest["shards"], manifest["documents"]) == (True, 7, 306)


def _without_scores(record: dict) -> dict:
    return {**record, "entities": [{k: v for k, v in e.items() if k != "score"} for e in record["entities"]]}


def _kill_after(args: list, out: Path, shards: int, delay: float) -> bool:
    """Start a job, SIGKILL it (and its workers) ``delay`` seconds after ``shards`` shards are recorded; whether it
    was still running then."""
    process = _kayan(*args)
    manifest, deadline = out / "manifest.json", time.monotonic() + WAIT
    while process.poll() is None and time.monotonic() < deadline:
        if manifest.is_file() and json.loads(manifest.read_text(encoding="utf-8") or "{}").get("shards", -1) >= shards:
            time.sleep(delay)
            break
        time.sleep(0.05)
    running = process.poll() is None
    if running:
        os.killpg(process.pid, signal.SIGKILL)  # the job and its workers
    process.communicate(timeout=WAIT)
    return running


@pytest.mark.parametrize("workers, kills", [("1", 3), ("2", 2)])
def test_killed_anywhere_then_rerun_gives_the_uninterrupted_output(archive, built, whole, tmp_path, workers, kills):
    out = tmp_path / "killed"
    args = [built["noisy"], *archive["inputs"], "--out", out, "--shard-size", "50", "--workers", workers]
    chance = random.Random(int(workers))
    killed = [_kill_after(args, out, shards, chance.uniform(0, 0.3))  # at seeded points
              for shards in sorted(chance.sample(range(5), kills))]
    assert killed[0], "the job ended before it was killed: kill it sooner"
    status, _, err = _done(_kayan(*args))
    assert status == 0, err
    assert _records(out) == whole and not list(out.glob(".*.tmp"))


def test_two_workers_write_what_one_writes_and_their_parent_loads_no_torch(archive, built, whole, tmp_path):
    """The parent reads, hands out and renames shards; only the workers load the model (it starts them sooner)."""
    code = ("import sys; from kayan.cli import main; status = main(sys.argv[1:]); "
            "print('parent loaded:', sorted(m for m in ('torch', 'transformers') if m in sys.modules)); sys.exit(status)")
    args = [built["noisy"], *archive["inputs"], "--out", tmp_path / "two", "--shard-size", "50", "--workers", "2",
            "--backend", "torch", "--threads", "1"]
    process = subprocess.run([sys.executable, "-c", code, "predict", *map(str, args)], capture_output=True, text=True,
                             cwd=REPO, timeout=WAIT)
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines()[-1] == "parent loaded: []"
    assert _records(tmp_path / "two") == whole


@pytest.mark.parametrize("change, named", [
    (["--shard-size", "40"], "--shard-size"),
    (["--model", "package"], "the model's weights"),
    (["--drop", "1"], "the input files"),
    (["--decoding", "first"], "--decoding"),
])
def test_a_rerun_of_another_job_is_refused_in_one_line(archive, built, whole, change, named):
    model, inputs, options = built["noisy"], list(archive["inputs"]), ["--shard-size", "50"]
    if change[0] == "--model":
        model = built[change[1]]
    elif change[0] == "--drop":
        inputs = inputs[:1]
    else:
        options = change if change[0] == "--shard-size" else options + change
    before = {p.name: p.read_bytes() for p in archive["out"].iterdir()}
    status, _, err = _done(_kayan(model, *inputs, "--out", archive["out"], *options))
    assert status == 2 and len(err.strip().splitlines()) == 1 and named in err, err
    assert {p.name: p.read_bytes() for p in archive["out"].iterdir()} == before


def test_a_job_begun_by_another_kayan_version_is_refused_not_mixed(archive, built, whole, tmp_path):
    # Versions can tag differently (0.2.0 runs each int8 window alone): one archive must not mix the two.
    out = tmp_path / "older"
    out.mkdir()
    for path in archive["out"].iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["job"]["kayan_version"] = "0.1.0"
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    status, _, err = _done(_kayan(built["noisy"], *archive["inputs"], "--out", out, "--shard-size", "50"))
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "Kayan's version" in err and '"0.1.0" there' in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_folder_kayan_did_not_write_is_refused(built, archive, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    status, _, err = _done(_kayan(built["noisy"], *archive["inputs"], "--out", tmp_path))
    assert status == 2 and "no .kayan-output marker" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_json_lines_and_parquet_give_the_text_files_entities(archive, tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    texts = [p.text for p in read_documents([str(archive["inputs"][0])])]
    jsonl, parquet = tmp_path / "news.jsonl", tmp_path / "news.parquet"
    jsonl.write_text("".join(json.dumps({"id": n, "body": t}, ensure_ascii=False) + "\n\n" for n, t in enumerate(texts)),
                     encoding="utf-8")
    pq.write_table(pyarrow.table({"body": texts}), parquet, row_group_size=100)
    for name in (jsonl, parquet):
        pieces = list(read_documents([str(name)], text_field="body"))
        assert [p.text for p in pieces] == texts and count_documents([str(name)], text_field="body") == len(texts)
    assert [p.source for p in read_documents([str(jsonl)], text_field="body")][:2] == [f"{jsonl}:1", f"{jsonl}:3"]
    assert [p.source for p in read_documents([str(parquet)], text_field="body")][-1] == f"{parquet}:{len(texts)}"
    assert count_documents([str(p) for p in archive["inputs"]]) == 306


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="os.wait4 (peak memory of a child) is POSIX only")
def test_memory_does_not_grow_with_the_archive(built, tmp_path):
    peaks = []
    for lines in (500, 12000):  # 0.08 MB and 1.9 MB, 10 and 240 shards
        source = tmp_path / f"{lines}.txt"
        source.write_text(_article(lines), encoding="utf-8")
        process = _kayan(built["noisy"], source, "--out", tmp_path / f"out-{lines}", "--shard-size", "50")
        status, peak = _peak_kib(process)
        assert status == 0, process.stderr.read()
        peaks.append(peak)
    grown = (peaks[1] - peaks[0]) / 1024
    assert grown < 25, f"peak memory grew by {grown:.0f} MiB from 500 documents to 12,000"
