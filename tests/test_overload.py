"""kayan serve under overload: a bounded queue (503 with Retry-After at once), /health that does not wait
behind the model, /metrics in the Prometheus text format, and the load test's open loop.

The tiny model is served for real, with its batcher's tagging held at a gate (or slowed) so that the
queue fills on purpose; every request the server accepted must still be answered, equal to predict.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import kayan
from kayan.cli import main
from kayan.errors import KayanError
from kayan.model.choices import threads_per_worker
from kayan.serve import Limits, prepare, serve
from kayan.serve.server import bind
from tests.test_serve import FIXTURES

httpx = pytest.importorskip("httpx", reason="the serve extra is not installed: pip install -e '.[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")

REPO = Path(__file__).resolve().parent.parent
LIMITS = Limits(max_chars=10_000, max_body=100_000, max_inputs=8)
TEXTS = FIXTURES[:3]  # test_serve's Arabic texts: diacritics, tatweel, Arabic-Indic digits, a Latin name
SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_]\w*="[^"\\]*",?)*)\})? (\S+)')
TYPE = re.compile(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)")
HELP = re.compile(r"# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+")


@contextmanager
def running(app):
    """The app under uvicorn on a free loopback port, in a thread of this process; yields its URL."""
    sock = bind("127.0.0.1", 0)
    instance = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: instance.started)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        instance.should_exit = True
        thread.join(30)


def wait_until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """The samples of a Prometheus text exposition (version 0.0.4), checked line by line as Prometheus reads it."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    samples: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            name, kind = TYPE.fullmatch(line).groups()
            assert name not in types, f"{name} declared twice"
            types[name] = kind
            continue
        if line.startswith("#"):
            assert HELP.fullmatch(line), line
            continue
        match = SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(r"_(bucket|sum|count)$", "", name) in types else name
        assert family in types, f"{name}: no # TYPE line before it"
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        assert (name, pairs) not in samples, f"{line}: repeated"
        samples[(name, pairs)] = float(value)
    for name, kind in types.items():
        if kind == "histogram":
            buckets = sorted((math.inf if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"]), v)
                             for k, v in samples.items() if k[0] == f"{name}_bucket")
            counts = [v for _, v in buckets]
            assert buckets and buckets[-1][0] == math.inf and counts == sorted(counts), name
            assert counts[-1] == samples[(f"{name}_count", frozenset())] and (f"{name}_sum", frozenset()) in samples
    return samples


def by_status(samples: dict, name: str) -> dict[str, float]:
    return {dict(labels)["status"]: value for (n, labels), value in samples.items() if n == name}


@pytest.fixture(scope="module")
def reference(built):
    return kayan.load(built["noisy"], backend="torch")


@pytest.fixture
def gated(built):
    """``(url, batcher, gate)``: a server with ``max_queue=4`` whose model waits for ``gate`` before each batch."""
    app, batcher = prepare(built["noisy"], backend="torch", max_batch=16, max_wait_ms=1, limits=LIMITS, max_queue=4)
    gate, tag = threading.Event(), batcher.predictor.tag_texts
    batcher.predictor.tag_texts = lambda texts: (gate.wait(60), list(tag(texts)))[1]
    try:
        with running(app) as url:
            try:
                yield url, batcher, gate
            finally:
                gate.set()
    finally:
        batcher.close(30)


def test_past_max_queue_503_at_once_while_every_accepted_request_is_answered(gated, reference):
    url, batcher, gate = gated
    answers: dict[str, httpx.Response] = {}
    senders = []

    def accept(name: str, inputs, queued: int) -> None:  # sent from a thread; accepted once the batcher counts its texts
        post = lambda: answers.update({name: httpx.post(f"{url}/", json={"inputs": inputs}, timeout=120)})  # noqa: E731
        senders.append(threading.Thread(target=post))
        senders[-1].start()
        wait_until(lambda: batcher.queued == queued)

    def refuse(inputs) -> tuple[httpx.Response, float]:
        sent = time.monotonic()
        return httpx.post(f"{url}/", json={"inputs": inputs}, timeout=120), time.monotonic() - sent

    accept("a", TEXTS[0], 1)  # taken by the worker, held at the gate
    accept("b", TEXTS[1:3], 3)  # two texts: 3 of 4 queued
    refused = [refuse(TEXTS[:2])]  # two more do not fit
    accept("c", TEXTS[2], 4)  # one still does: 4 of 4
    refused += [refuse(inputs) for inputs in (TEXTS[0], [TEXTS[1]], TEXTS[2])]
    too_many = httpx.post(f"{url}/", json={"inputs": TEXTS[:2] * 3}, timeout=30)
    sent = time.monotonic()
    health = httpx.get(f"{url}/health", timeout=30)
    health_seconds = time.monotonic() - sent
    full = parse_metrics(httpx.get(f"{url}/metrics", timeout=30).text)
    assert not gate.is_set() and batcher.queued == 4  # nothing above waited for the model
    for response, seconds in refused:
        assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1, response.text
        assert "--max-queue 4" in response.json()["error"] and seconds < 5
    assert too_many.status_code == 413 and "--max-queue 4" in too_many.json()["error"]
    assert health.status_code == 200 and health.json()["queued"] == 4 and health_seconds < 2
    assert full[("kayan_queue_texts", frozenset())] == 4 and full[("kayan_queue_limit_texts", frozenset())] == 4
    gate.set()
    for sender in senders:
        sender.join(120)
    assert {name: r.status_code for name, r in answers.items()} == {"a": 200, "b": 200, "c": 200}
    expected = reference.predict_batch([TEXTS[0], TEXTS[2]])
    assert [[e["entity_group"] for e in answers[n].json()] for n in "ac"] == [[e.type for e in x] for x in expected]
    assert len(answers["b"].json()) == 2 and batcher.queued == 0


def test_metrics_count_every_request_sent(gated):
    url, batcher, gate = gated
    gate.set()
    bodies = [{"inputs": TEXTS[0]}, {"inputs": TEXTS[:2]}, {"inputs": 5}, {"inputs": ["a"] * 9}, {"inputs": TEXTS[1]}]
    statuses = [httpx.post(f"{url}/predict", json=body, timeout=60).status_code for body in bodies]
    assert statuses == [200, 200, 422, 413, 200]
    httpx.get(f"{url}/health", timeout=30)  # other routes are not counted
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_metrics(response.text)
    assert by_status(samples, "kayan_requests_total") == {"200": 3, "413": 1, "422": 1}
    assert by_status(samples, "kayan_request_errors_total") == {"413": 1, "422": 1}
    assert samples[("kayan_request_duration_seconds_count", frozenset())] == 3
    assert samples[("kayan_request_duration_seconds_sum", frozenset())] > 0
    assert samples[("kayan_batch_texts_count", frozenset())] == batcher.stats.batches
    assert samples[("kayan_batch_texts_sum", frozenset())] == batcher.stats.texts == 4
    assert samples[("kayan_queue_texts", frozenset())] == 0 and samples[("kayan_requests_in_flight", frozenset())] == 0
    assert samples[("process_resident_memory_bytes", frozenset())] > 10 * 2**20


def test_two_workers_share_the_model_and_answer_as_predict(built, reference):
    """--workers 2: batches run at once on threads sharing one model, one intra-op thread each on 2 cores."""
    app, batcher = prepare(built["noisy"], backend="torch", max_batch=2, max_wait_ms=1, limits=LIMITS, workers=2)
    active, most, lock, tag = [0], [0], threading.Lock(), batcher.predictor.tag_texts

    def counted(texts):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            time.sleep(0.05)  # long enough for the other worker's batch to start beside this one
            return list(tag(texts))
        finally:
            with lock:
                active[0] -= 1

    batcher.predictor.tag_texts = counted
    texts = (TEXTS * 4)[:12]
    try:
        with running(app) as url:
            info = httpx.get(f"{url}/info", timeout=30).json()["server"]
            answers: list = []
            with httpx.Client(timeout=60) as client:
                pool = [threading.Thread(target=lambda t=t: answers.append((t, client.post(f"{url}/", json={"inputs": t}))))
                        for t in texts]
                for thread in pool:
                    thread.start()
                for thread in pool:
                    thread.join(120)
    finally:
        batcher.close(30)
    assert info["workers"] == 2 and info["threads"] == threads_per_worker(2)
    assert len(answers) == 12 and all(r.status_code == 200 for _, r in answers)
    for text, response in answers:
        expected = reference.predict(text)
        assert [(a["entity_group"], a["start"], a["end"]) for a in response.json()] == [(e.type, e.start, e.end) for e in expected]
    assert most[0] == 2


@pytest.mark.parametrize("option, value", [("--max-queue", "0"), ("--max-queue", "-3"), ("--workers", "0"), ("--workers", "-1")])
def test_a_queue_or_workers_below_one_is_a_one_line_error(built, capsys, option, value):
    assert main(["serve", str(built["noisy"]), "--port", "0", option, value]) == 2
    err = capsys.readouterr().err.strip()
    assert option in err and "at least 1" in err and "\n" not in err
    with pytest.raises(KayanError, match=f"{option}: out of range"):
        serve(built["noisy"], port=0, **{option[2:].replace("-", "_"): int(value)})


def test_serve_help_documents_max_queue_and_metrics(capsys):
    assert main(["serve", "--help"]) == 0
    assert "--max-queue" in " ".join(capsys.readouterr().out.split())


def test_load_test_open_loop_counts_503s_apart_from_errors(built, tmp_path, capsys):
    app, batcher = prepare(built["noisy"], backend="torch", max_batch=16, max_wait_ms=1, limits=LIMITS, max_queue=2)
    tag = batcher.predictor.tag_texts
    batcher.predictor.tag_texts = lambda texts: (time.sleep(0.05), list(tag(texts)))[1]  # at most 2 texts per 50 ms
    spec = importlib.util.spec_from_file_location("load_test", REPO / "scripts" / "load_test.py")
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    out = tmp_path / "open.json"
    try:
        with running(app) as url:
            status = load_test.main([url, "--rate", "300", "--seed", "1", "--requests", "60", "--max-seconds", "20",
                                     "--data", "sample:test", "--json", str(out)])
    finally:
        batcher.close(30)
    report, printed = json.loads(out.read_text(encoding="utf-8")), capsys.readouterr().out
    assert status == 0 and report["mode"] == "open" and report["requests"] == 60, printed
    assert report["accepted"] + report["rejected_503"] == 60 and report["errors"] == 0
    assert report["accepted"] > 0 and report["rejected_503"] > 0 and report["equal_to_predict"] == report["accepted"]
    assert set(report["latency_ms"]) == {"p50", "p95", "p99"} and report["requests_per_s"] > 0
    assert report["rss_mib"]["start"] > 10 and "503" in printed and "other errors 0" in printed
    with pytest.raises(SystemExit):
        load_test.main([url, "--rate", "0"])


def test_workers_share_the_cores_this_process_may_use(monkeypatch):
    # kayan predict --workers and kayan serve --workers both ask this; a process pinned to fewer cores
    # than the machine has (taskset, a container's cpuset) must not start more threads than it may run.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert [threads_per_worker(n) for n in (1, 2, 3, 4)] == [3, 1, 1, 1]
