"""kayan serve: a real server on a free loopback port, checked with a real HTTP client.

Answers must equal ``kayan.load(MODEL).predict`` under concurrency 1 and 32; bad input gives JSON
errors with 400/413/422, never 500; a body that stops coming gets 408 after ``--body-timeout`` and a
client that hangs up mid-body is one log line; a model that does not load ends the command with
status 2 before it listens; SIGTERM lets the request in flight finish and exits 0.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import kayan
from kayan.cli import main
from kayan.model.backends import TrimmedBackend
from kayan.serve import Limits, prepare
from kayan.serve.batcher import Batcher
from kayan.serve.server import bind
from tests.tiny_package import sample_words

httpx = pytest.importorskip("httpx", reason="the serve extra is not installed: pip install -e '.[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")

REPO = Path(__file__).resolve().parent.parent
LIMITS = Limits(max_chars=200_000, max_body=1_000_000, max_inputs=8)
FIXTURES = [
    "وفي بيروت، استقبل رئيس الحكومة وفدا من منظمة الصحة العالمية.",
    "زارَ أَحمـــد بغدادَ؛ هل عاد إلى عمّان؟",          # diacritics, tatweel, ؛ ؟
    "بلغ عدد السكان ٣٤٫٥ مليون في عام ٢٠٢٦ ، وقال Barack Obama إن وبغداد تنمو.",  # Arabic-Indic digits, Latin name, clitic
    "",
    "!!! ... ؟؟",
    "جاء زيد.\nذهب عمرو إلى القاهرة مع محمد بن سلمان وعلي الأمين في زيارة رسمية طويلة جدا " * 6,  # several sentences, windows
]


@pytest.fixture(scope="module")
def reference(built):
    return kayan.load(built["noisy"], backend="torch")


@pytest.fixture(scope="module")
def texts():
    return FIXTURES + [" ".join(words) for words in sample_words()[:60]]


@pytest.fixture(scope="module")
def server(built):
    """``(url, batcher)`` of a server on a free loopback port, in a thread of this process."""
    app, batcher = prepare(built["noisy"], backend="torch", max_batch=16, max_wait_ms=5, limits=LIMITS)
    sock = bind("127.0.0.1", 0)
    instance = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if instance.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", batcher
    instance.should_exit = True
    thread.join(30)
    batcher.close(30)


def same(answer: list[dict], entities) -> bool:
    """Same entities, types and offsets; scores within 1e-4 (batches padded differently)."""
    spans = [(a["entity_group"], a["word"], a["start"], a["end"]) for a in answer]
    return spans == [(e.type, e.text, e.start, e.end) for e in entities] and \
        [a["score"] for a in answer] == pytest.approx([e.score for e in entities], abs=1e-4)


async def post_all(url: str, bodies: list[dict]) -> list:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=len(bodies))) as client:
        return await asyncio.gather(*(client.post(url, json=body) for body in bodies))


def test_answers_equal_predict_one_at_a_time(server, reference, texts):
    url, _ = server
    with httpx.Client(timeout=60) as client:
        for text in texts:
            response = client.post(f"{url}/", json={"inputs": text})
            assert response.status_code == 200, response.text
            assert same(response.json(), reference.predict(text)), text
            for entity in response.json():
                assert text[entity["start"] : entity["end"]] == entity["word"]


def test_answers_equal_predict_under_concurrency_32(server, reference, texts):
    url, batcher = server
    before = (batcher.stats.batches, batcher.stats.requests)
    chosen = (texts * 2)[:32]
    responses = asyncio.run(post_all(f"{url}/predict", [{"inputs": t} for t in chosen]))
    assert [r.status_code for r in responses] == [200] * 32
    expected = reference.predict_batch(chosen)
    assert all(same(r.json(), e) for r, e in zip(responses, expected))
    batches, requests = batcher.stats.batches - before[0], batcher.stats.requests - before[1]
    assert requests == 32 and batches < 32  # concurrent requests shared batches


def test_a_list_of_inputs_gets_one_list_per_text(server, reference, texts):
    url, _ = server
    response = httpx.post(f"{url}/", json={"inputs": texts[:3], "parameters": {"aggregation_strategy": "first"}}, timeout=60)
    assert response.status_code == 200
    assert [same(a, e) for a, e in zip(response.json(), reference.predict_batch(texts[:3]))] == [True] * 3


def test_strategy_none_gives_word_tags_and_ignore_labels_filters(server, reference):
    url, _ = server
    text = FIXTURES[0]
    words = httpx.post(f"{url}/", json={"inputs": text, "parameters": {"aggregation_strategy": "none"}}, timeout=60).json()
    document = next(reference.tag_texts([text]))
    tagged = [(t.text, t.start, tag) for s in document.sentences for t, tag in zip(s.tokens, s.tags) if tag != "O"]
    assert [(w["word"], w["start"], w["entity"]) for w in words] == tagged
    assert all(text[w["start"] : w["end"]] == w["word"] for w in words)
    kept = httpx.post(f"{url}/", json={"inputs": text, "parameters": {"ignore_labels": ["LOC", "O"]}}, timeout=60).json()
    assert [e["entity_group"] for e in kept] == [e.type for e in reference.predict(text) if e.type != "LOC"]


def test_huggingface_hub_inference_client_works_unchanged(server, reference):
    hub = pytest.importorskip("huggingface_hub")
    url, _ = server
    found = hub.InferenceClient(model=url).token_classification(FIXTURES[0], aggregation_strategy="simple")
    expected = reference.predict(FIXTURES[0])
    assert [(e.entity_group, e.word, e.start, e.end) for e in found] == [(e.type, e.text, e.start, e.end) for e in expected]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"not json", 400, "not JSON"),
        (b'{"inputs": "\xff\xfe"}', 400, "not UTF-8"),
        (b'{"inputs": "\\ud800"}', 400, "lone surrogate"),
        (b'["a"]', 422, "body: expected a JSON object"),
        (b'{"text": "a"}', 422, "inputs: missing"),
        (b'{"inputs": 5}', 422, "inputs: expected a string or an array"),
        (b'{"inputs": ["a", null]}', 422, "inputs[1]: expected a string, got null"),
        (b'{"inputs": "a", "parameters": []}', 422, "parameters: expected an object"),
        (b'{"inputs": "a", "parameters": {"aggregation_strategy": "best"}}', 422, "parameters.aggregation_strategy"),
        (b'{"inputs": "a", "parameters": {"ignore_labels": "O"}}', 422, "parameters.ignore_labels"),
        (b'{"inputs": "a", "parameters": {"ignore_labels": [1]}}', 422, "parameters.ignore_labels[0]"),
        (json.dumps({"inputs": ["a"] * 9}).encode(), 413, "--max-inputs 8"),
        (json.dumps({"inputs": "ب" * 200_001}, ensure_ascii=False).encode(), 413, "inputs: 200001 characters"),
        (json.dumps({"inputs": ["a", "ب" * 200_001]}, ensure_ascii=False).encode(), 413, "inputs[1]: 200001 characters"),
        (json.dumps({"inputs": "a" * 1_000_001}).encode(), 413, "--max-body 1000000"),
        (b"[" * 100_000, 400, "not JSON"),
    ],
    ids=["not-json", "not-utf8", "surrogate", "not-object", "no-inputs", "number", "null-item", "params-array",
         "strategy", "ignore-str", "ignore-int", "too-many", "too-long", "too-long-item", "too-big", "deep"],
)
def test_bad_input_is_a_json_error_never_500(server, body, status, says):
    url, _ = server
    response = httpx.post(f"{url}/", content=body, headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == status and says in response.json()["error"], response.text


def test_a_body_without_length_is_capped_while_read(server):
    url, _ = server

    def chunks():
        for _ in range(20):
            yield b" " * 100_000

    response = httpx.post(f"{url}/", content=chunks(), timeout=60)
    assert response.status_code == 413 and "--max-body" in response.json()["error"]


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404), ("GET", "/", 405), ("DELETE", "/predict", 405)])
def test_unknown_routes_are_json_errors(server, method, path, status):
    url, _ = server
    response = httpx.request(method, f"{url}{path}", timeout=30)
    assert response.status_code == status and "error" in response.json()


def test_info_health_and_docs(server, built):
    url, _ = server
    info = httpx.get(f"{url}/info", timeout=30).json()
    meta = json.loads((built["noisy"] / "kayan.json").read_text(encoding="utf-8"))
    assert info["labels"][0] == "O" and info["window"] == meta["window"] and info["decoding"] == meta["decoding"]
    assert info["normalization"] == ["remove_diacritics", "remove_tatweel"] and info["kayan_version"] == kayan.__version__
    assert info["training_data"] == meta["training_data"] and info["weights_sha256"] == meta["weights_sha256"]
    assert info["server"]["max_batch"] == 16 and "requests" in info["served"]
    assert httpx.get(f"{url}/health", timeout=30).json()["status"] == "ok"
    assert httpx.get(f"{url}/docs", timeout=30).status_code == 200
    paths = httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]
    schema = paths["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["inputs"] and {"/predict", "/health", "/info"} <= set(paths)


def test_docs_show_the_request_and_response_models():
    from kayan.serve.app import create_app
    from kayan.serve.protocol import STRATEGIES

    operation = create_app(SimpleNamespace(max_queue=1)).openapi()["paths"]["/predict"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["parameters"]["properties"]["aggregation_strategy"]["enum"] == list(STRATEGIES)
    assert "#/components/schemas/EntityGroup" in json.dumps(operation["responses"]["200"])
    assert operation["responses"]["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


def test_import_kayan_serve_loads_no_server_until_a_name_is_used():
    code = ("import sys, kayan.serve; print(sorted(m for m in ('torch', 'fastapi', 'pydantic', 'kayan.serve.server') if m in sys.modules), "
            "kayan.serve.Limits.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and result.stdout.split() == ["[]", "kayan.serve.protocol"], result.stderr


def test_health_answers_while_a_batch_runs(server):
    url, batcher = server
    text = ("جاء زيد إلى بغداد مع محمد وعلي في زيارة رسمية. " * 4000)[:199_000]
    finished: dict[str, float] = {}

    def big() -> None:
        assert httpx.post(f"{url}/", json={"inputs": text}, timeout=120).status_code == 200
        finished["big"] = time.monotonic()

    worker = threading.Thread(target=big)
    worker.start()
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/health", timeout=30).json()["in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    health = httpx.get(f"{url}/health", timeout=30)
    answered = time.monotonic()
    worker.join(120)
    assert health.status_code == 200 and health.json()["in_flight"] == 1
    assert answered < finished["big"]


class _FakePredictor:
    """Records the texts of each batch; raises on the text "boom"."""

    def __init__(self):
        self.model, self.batches = SimpleNamespace(members=[SimpleNamespace(backend=object())]), []

    def tag_texts(self, texts):
        texts = list(texts)
        self.batches.append(texts)
        if "boom" in texts:
            raise ValueError("boom")
        return [f"doc:{t}" for t in texts]


def test_batcher_respects_max_batch_and_answers_each_request():
    fake = _FakePredictor()
    batcher = Batcher(fake, max_batch=4, max_wait_ms=50)
    futures = [batcher.submit([f"t{i}", f"u{i}"] if i % 3 == 0 else [f"t{i}"]) for i in range(10)]
    batcher.start()
    try:
        results = [f.result(10) for f in futures]
    finally:
        batcher.close(10)
    assert results == [[f"doc:t{i}", f"doc:u{i}"] if i % 3 == 0 else [f"doc:t{i}"] for i in range(10)]
    assert all(len(b) <= 4 for b in fake.batches) and len(fake.batches) < 10
    assert not batcher.alive


def test_a_failing_request_does_not_fail_its_batch_mates():
    batcher = Batcher(_FakePredictor(), max_batch=8, max_wait_ms=50)
    futures: list[Future] = [batcher.submit([t]) for t in ("a", "boom", "c")]
    batcher.start()
    try:
        assert futures[0].result(10) == ["doc:a"] and futures[2].result(10) == ["doc:c"]
        with pytest.raises(ValueError):
            futures[1].result(10)
    finally:
        batcher.close(10)


class _MeetingPredictor(_FakePredictor):
    """Each batch waits until ``parties`` batches run at once (or ``seconds`` pass: BrokenBarrierError)."""

    def __init__(self, parties: int, seconds: float):
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=seconds)

    def tag_texts(self, texts):
        self.barrier.wait()
        return super().tag_texts(texts)


def test_two_workers_run_two_batches_at_once():
    batcher = Batcher(_MeetingPredictor(2, seconds=10), max_batch=1, max_wait_ms=0, workers=2).start()
    try:
        futures = [batcher.submit([t]) for t in ("a", "b")]
        assert [f.result(20) for f in futures] == [["doc:a"], ["doc:b"]]  # each batch waited for the other
    finally:
        batcher.close(10)
    alone = Batcher(_MeetingPredictor(2, seconds=0.3), max_batch=1, max_wait_ms=0).start()  # one worker: never two at once
    try:
        with pytest.raises(threading.BrokenBarrierError):
            alone.submit(["a"]).result(20)
    finally:
        alone.close(10)


def test_free_workers_share_what_waits_instead_of_one_taking_it_all():
    # Four texts wait for two free workers: the first takes its share (2) and runs, the second (one
    # worker now busy) takes the rest. One batch of all four would leave the other worker idle while
    # the four took twice as long; here each batch waits for the other, so that would fail.
    meeting = _MeetingPredictor(2, seconds=5)
    batcher = Batcher(meeting, max_batch=32, max_wait_ms=50, workers=2)
    futures = [batcher.submit([f"t{i}"]) for i in range(4)]
    batcher.start()
    try:
        assert [f.result(20) for f in futures] == [[f"doc:t{i}"] for i in range(4)]
    finally:
        batcher.close(10)
    assert sorted(len(b) for b in meeting.batches) == [2, 2]
    assert batcher._tagging == 0 and batcher._waiting == 0


def test_close_answers_what_is_queued_and_stops_every_worker():
    fake = _FakePredictor()
    batcher = Batcher(fake, max_batch=2, max_wait_ms=0, workers=3)
    futures = [batcher.submit([f"t{i}"]) for i in range(7)]
    batcher.start()
    assert batcher.alive
    batcher.close(10)
    assert [f.result(0) for f in futures] == [[f"doc:t{i}"] for i in range(7)]
    assert not batcher.alive and not any(thread.is_alive() for thread in batcher._threads)
    assert batcher.stats.requests == 7 and sorted(t for b in fake.batches for t in b) == [f"t{i}" for i in range(7)]
    with pytest.raises(ValueError, match="workers must be at least 1"):
        Batcher(fake, workers=0)


def test_trimmed_backend_equals_the_padded_batch(reference):
    inner = reference.backend if not isinstance(reference.backend, TrimmedBackend) else reference.backend.inner
    trimmed = TrimmedBackend(inner)
    rng = np.random.default_rng(3)
    lengths = [3, 40, 5, 41, 12, 64]
    ids = np.zeros((len(lengths), 64), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(5, 200, n)
        mask[row, :n] = 1
    full = TrimmedBackend(inner, waste=1e9).logits(ids, mask)  # one group: the plain padded batch
    cut = trimmed.logits(ids, mask)
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(cut[row, :n], full[row, :n], atol=1e-4)


def test_a_trimmed_backend_alone_runs_each_row_by_itself_cut_to_its_length():
    calls = []

    class Recorder:
        def logits(self, ids, mask):
            calls.append(ids.shape)
            return np.repeat(ids[..., None].astype(np.float32), 2, axis=-1)  # a row's logits are its own ids

    lengths = [4, 4, 2, 7]
    ids = np.zeros((4, 8), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = np.arange(1, n + 1) * (row + 1)
        mask[row, :n] = 1
    out = TrimmedBackend(Recorder(), alone=True).logits(ids, mask)
    assert sorted(calls) == [(1, 2), (1, 4), (1, 4), (1, 7)]  # two rows of one length still run apart
    np.testing.assert_array_equal(out[..., 0], ids * mask)
    calls.clear()
    TrimmedBackend(Recorder()).logits(ids, mask)
    assert sorted(calls) == [(1, 2), (1, 7), (2, 4)]


def test_a_model_that_does_not_load_exits_2_before_listening(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kayan: error:") and "missing" in err and "\n" not in err


def test_a_port_in_use_exits_2(built, capsys):
    taken = bind("127.0.0.1", 0)
    try:
        assert main(["serve", str(built["noisy"]), "--port", str(taken.getsockname()[1])]) == 2
    finally:
        taken.close()
    assert "cannot listen there" in capsys.readouterr().err


def test_connections_on_the_bound_socket_send_at_once():
    """asyncio turns Nagle's algorithm off only on sockets that say they are TCP; a socket made with
    protocol 0 left it on, and each answer waited ~40 ms for the client's delayed ACK."""
    import socket

    async def accepted_nodelay() -> int:
        seen = asyncio.get_running_loop().create_future()

        async def handle(reader, writer):
            seen.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=bind("127.0.0.1", 0))
        async with server:
            _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
            result = await asyncio.wait_for(seen, 10)
            writer.close()
        return result

    assert asyncio.run(accepted_nodelay()) != 0


def test_sigterm_finishes_the_request_in_flight_and_exits_0(built):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "kayan.cli", "serve", str(built["noisy"]), "--port", "0",
                                "--log-level", "warning"], stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        line = process.stderr.readline()
        assert "on http://" in line, line
        url = line.split(" on ")[1].split()[0]
        text = ("جاء زيد إلى بغداد مع محمد وعلي في زيارة رسمية. " * 1500)
        result: dict = {}
        sender = threading.Thread(target=lambda: result.update(r=httpx.post(f"{url}/", json={"inputs": text}, timeout=120)))
        sender.start()
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/health", timeout=30).json()["in_flight"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        sender.join(120)
        assert process.wait(60) == 0
        assert result["r"].status_code == 200 and len(result["r"].json()) > 100
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()


def test_load_test_script_reports_zero_errors_and_equal_answers(server, built, tmp_path, capsys):
    url, _ = server
    spec = importlib.util.spec_from_file_location("load_test", REPO / "scripts" / "load_test.py")
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    out = tmp_path / "load.json"
    status = load_test.main([url, "--requests", "40", "--concurrency", "8", "--data", "sample:test", "--offline", "--rounds", "2",
                             "--solo", "3", "--json", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))
    printed = capsys.readouterr().out
    assert status == 0 and report["errors"] == 0 and report["equal_to_predict"] == 40, printed
    assert "answers equal kayan predict: yes (40/40)" in printed and report["offline"]["words_per_s"] > 0
    assert len(report["rounds"]["server_over_offline"]) == 2 and len(report["offline"]["passes_words_per_s"]) == 3
    with pytest.raises(SystemExit, match="only loopback"):
        load_test.main(["http://example.com:8080"])


@pytest.fixture(scope="module")
def slow_body_server(built):
    """``(port, log)`` of a ``kayan serve --body-timeout 1`` process; ``log`` fills with its stderr lines."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "kayan.cli", "serve", str(built["noisy"]), "--port", "0", "--body-timeout", "1"],
                               stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    log: list[str] = []
    try:
        line = process.stderr.readline()
        assert "on http://" in line, line
        threading.Thread(target=lambda: log.extend(process.stderr), daemon=True).start()
        yield int(line.split(" on http://")[1].split()[0].rsplit(":", 1)[1].rstrip("/")), log
    finally:
        process.terminate()
        process.wait(60)


def _half_a_body(port: int):
    """A raw connection that sent the headers of a 1,000-byte body and 15 bytes of it."""
    import socket

    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                       b'{"inputs": "abc')
    return connection


def test_a_body_that_stops_coming_gets_408_and_the_connection_closes(slow_body_server):
    port, _ = slow_body_server
    with _half_a_body(port) as connection:
        started = time.monotonic()
        answer = b""
        while chunk := connection.recv(65536):  # the server closes the connection after its answer
            answer += chunk
        waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower(), answer
    assert "--body-timeout of 1 s" in json.loads(body)["error"] and 0.9 < waited < 20


def test_a_client_that_hangs_up_mid_body_is_one_log_line(slow_body_server):
    port, log = slow_body_server
    before = len(log)
    _half_a_body(port).close()
    deadline = time.monotonic() + 20
    while len(log) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # past the body timeout: nothing more may come of that connection
    new = log[before:]
    assert len(new) == 1 and "disconnected before its whole body came" in new[0], new
    assert not any("Traceback" in line for line in log)
