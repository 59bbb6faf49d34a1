"""Load test of a running ``kayan serve``: closed loop (C clients) or open loop (R requests/s), bounded, loopback only.

    python scripts/load_test.py URL [--requests 1000] [--concurrency 16] [--data anercorp:test]
                                    [--max-seconds 600] [--model PATH] [--offline [--rounds R]] [--solo 50] [--json FILE]
    python scripts/load_test.py URL --rate R [--seed 0] [--requests N] [--max-seconds S] [--solo 50] [--json FILE]

Sends ANERcorp test sentences (words joined by spaces; the sample corpus's test split when ../shared is
absent), one per ``POST /`` request, cycling through them, from C clients that each keep one request
in flight (closed loop: the load waits for the server). It stops after ``--requests`` requests or
``--max-seconds``, whichever comes first, and prints:

* throughput: the words of the answered sentences per second of wall time, and requests per second;
* latency p50/p95/p99 and the number of errors (a status other than 200, or no answer);
* whether every answer equals ``kayan.load(MODEL).predict`` on the same text (MODEL: the served
  folder, from ``GET /info``, unless ``--model``): same entities, types and offsets, scores within 1e-4
  (batches padded differently change the float rounding, nothing else);
* ``--offline``: the Predictor's own words/s on the same sentences in this process (one
  ``predict_batch`` call over all of them, timed while the server is idle) before the load and after
  it, and the server's words/s over the offline words/s; ``--rounds R`` cuts the load into R parts
  with an offline pass between each two, so that both see the same machine when other work on it
  comes and goes;
* ``--solo N``: N sentences of 27-33 words sent one at a time after the load: a 30-word sentence's
  latency alone, against its p99 under the load.

``--rate R`` is the open loop instead: requests arrive at R per second whatever the server does, with
Poisson arrivals (exponential gaps from a RNG seeded by ``--seed``), until ``--requests`` have been sent
or ``--max-seconds`` have passed; then the answers are awaited. It prints the latency p50/p95/p99 of the
accepted requests (answered 200), measured from each request's scheduled arrival so that a client that
falls behind does not hide the wait, the number of 503s (refused by a full queue) and of other errors,
the achieved throughput, how late the client sent (p99), and the server's resident memory before and
after (from ``GET /metrics``). Exit status 0 when there is no other error and every answer is equal.

The client runs on the same machine as the server, so it takes CPU from it; the figures include that.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
THIRTY = range(27, 34)


def base_url(url: str) -> str:
    """The server's base URL, refusing anything but loopback (this tool must not load other hosts)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.hostname not in LOOPBACK:
        raise SystemExit(f"load_test.py: {url}: only loopback servers (127.0.0.1, localhost, ::1) may be load-tested")
    return f"{parts.scheme}://{parts.netloc}"


def read_sentences(ref: str | None) -> tuple[str, list[list[str]]]:
    """``(ref, sentences)``: ANERcorp test by default, the sample corpus's test split without ../shared."""
    from kayan.data import corpora
    from kayan.errors import KayanError

    shared = REPO.parent / "shared" / "data"
    if not os.environ.get("KAYAN_DATA_DIR") and shared.is_dir():
        os.environ["KAYAN_DATA_DIR"] = str(shared)
    for each in [ref] if ref else ["anercorp:test", "sample:test"]:
        try:
            return each, [list(s.words) for s in corpora.load_split(each).sentences]
        except KayanError as error:
            if ref:
                raise SystemExit(f"load_test.py: {error}") from None
    raise SystemExit("load_test.py: no sentences (neither anercorp:test nor sample:test could be read)")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-100) by linear interpolation; 0.0 for no values.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def same_answer(answer: object, entities) -> bool:
    """Whether a server answer equals the Predictor's entities (scores within 1e-4)."""
    if not isinstance(answer, list) or len(answer) != len(entities):
        return False
    return all(
        (a.get("entity_group"), a.get("word"), a.get("start"), a.get("end")) == (e.type, e.text, e.start, e.end)
        and abs(a.get("score", -1) - e.score) <= 1e-4
        for a, e in zip(answer, entities)
    )


async def run_load(url: str, texts: list[str], *, requests: int, concurrency: int, max_seconds: float, first: int = 0):
    """Send the requests (texts from ``first`` on, cycling); returns ``(wall seconds, [(text index, status, seconds, answer), ...])``."""
    import httpx

    done: list[tuple[int, int | None, float, object]] = []
    counter = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        start = time.perf_counter()
        deadline = start + max_seconds

        async def client_loop() -> None:
            while (i := next(counter)) < requests and time.perf_counter() < deadline:
                index = (first + i) % len(texts)
                sent = time.perf_counter()
                try:
                    response = await client.post(f"{url}/", json={"inputs": texts[index]})
                    status = response.status_code
                    body = response.json() if status == 200 else response.text
                except httpx.HTTPError as error:
                    status, body = None, repr(error)
                done.append((index, status, time.perf_counter() - sent, body))

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        return time.perf_counter() - start, done


class Loopback:
    """A minimal HTTP/1.1 client over keep-alive loopback connections, for the open loop.

    httpx spends more CPU per request than the tiny model does, so on a small shared machine it, not
    the server, set the pace (264 requests/s asked, 51 sent); this client writes the request and reads
    a ``Content-Length`` response, nothing more.
    """

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port, self.idle = parts.hostname, parts.port or 80, []

    async def post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        """``(status, body)`` of one POST on an idle connection, or a new one when none is left open.

        A reused connection that the server closed meanwhile (its keep-alive timeout) is retried once
        on a new connection: that is the client's bookkeeping, not a server error.
        """
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof():
                try:
                    return await self._exchange(reader, writer, path, payload)
                except (ConnectionError, asyncio.IncompleteReadError):
                    break
            writer.close()
        return await self._exchange(*await asyncio.open_connection(self.host, self.port), path, payload)

    async def _exchange(self, reader, writer, path: str, payload: bytes) -> tuple[int, bytes]:
        try:
            writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (path.encode(), self.host.encode(), self.port, len(payload), payload))
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            fields = dict((k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in head[1:] if ":" in line))
            body = await reader.readexactly(int(fields.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer))
        return int(head[0].split()[1]), body

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def run_open(url: str, texts: list[str], *, rate: float, requests: int, max_seconds: float, seed: int):
    """Send requests with Poisson arrivals at ``rate`` per second, whatever the answers; await them all.

    Returns ``(wall seconds, [(text index, status, seconds since its scheduled arrival, answer), ...],
    [seconds each request was sent after its scheduled arrival, ...])``.
    """
    rng = random.Random(seed)
    done: list[tuple[int, int | None, float, object]] = []
    lags: list[float] = []
    client = Loopback(url)

    async def one(index: int, due: float) -> None:
        lags.append(time.perf_counter() - due)
        try:
            status, raw = await asyncio.wait_for(client.post("/", json.dumps({"inputs": texts[index]}).encode()), 120)
            body = json.loads(raw) if status == 200 else raw.decode("utf-8", "replace")
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError, asyncio.TimeoutError) as error:
            status, body = None, repr(error)
        done.append((index, status, time.perf_counter() - due, body))

    try:
        start = due = time.perf_counter()
        tasks = []
        for i in range(requests):
            due += rng.expovariate(rate)
            if max(due, time.perf_counter()) - start > max_seconds:  # a client that fell behind stops on time too
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i % len(texts), due)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - start, done, lags
    finally:
        client.close()


def server_rss(url: str) -> float | None:
    """The server's ``process_resident_memory_bytes`` from ``GET /metrics``, in MiB (None without it)."""
    import httpx

    response = httpx.get(f"{url}/metrics", timeout=30)
    for line in response.text.splitlines() if response.status_code == 200 else []:
        if line.startswith("process_resident_memory_bytes "):
            return float(line.split()[1]) / 2**20
    return None


def solo_latency(url: str, texts: list[str], count: int) -> list[float]:
    """Latency of ``count`` requests sent one at a time."""
    import httpx

    seconds = []
    with httpx.Client(timeout=120) as client:
        client.post(f"{url}/", json={"inputs": texts[0]})
        for text in itertools.islice(itertools.cycle(texts), count):
            sent = time.perf_counter()
            client.post(f"{url}/", json={"inputs": text}).raise_for_status()
            seconds.append(time.perf_counter() - sent)
    return seconds


def reference(model: str, texts: list[str], *, backend: str, threads: int | None):
    """``(predictor, seconds, entities per text)`` of ``kayan.load(model).predict_batch`` on the texts (warmed up first)."""
    import kayan

    predictor = kayan.load(model, backend=backend, threads=threads)  # threads reach PyTorch or onnxruntime alike
    predictor.predict_batch(texts[:8])
    start = time.perf_counter()
    entities = predictor.predict_batch(texts)
    return predictor, time.perf_counter() - start, entities


def run_rounds(args: argparse.Namespace, url: str, texts: list[str], words: list[int], predictor, first_pass: float):
    """The load in ``--rounds`` parts; with ``--offline``, an offline pass before each part and after the last.

    Other work on a shared machine comes and goes over a long run; interleaving lets the server and
    the offline Predictor see the same machine. Returns ``(wall, done, server words/s per round,
    offline seconds per pass)``.
    """
    done: list = []
    wall, rounds, offline = 0.0, [], [first_pass]
    per = -(-args.requests // args.rounds)
    for first in range(0, args.requests, per):
        if args.offline and first:
            offline.append(timed_pass(predictor, texts))
        seconds, part = asyncio.run(run_load(url, texts, requests=min(per, args.requests - first), concurrency=args.concurrency,
                                             max_seconds=args.max_seconds - wall, first=first))
        wall += seconds
        done += part
        rounds.append(sum(words[d[0]] for d in part if d[1] == 200) / seconds)
        if wall >= args.max_seconds:
            break
    if args.offline:
        offline.append(timed_pass(predictor, texts))
    return wall, done, rounds, offline


def timed_pass(predictor, texts: list[str]) -> float:
    """Seconds of one ``predict_batch`` over the texts."""
    start = time.perf_counter()
    predictor.predict_batch(texts)
    return time.perf_counter() - start


def setup(args: argparse.Namespace) -> argparse.Namespace:
    """The server's URL and /info, the sentences, and the reference Predictor's answers to them."""
    import httpx

    url = base_url(args.url)
    info = httpx.get(f"{url}/info", timeout=30).raise_for_status().json()
    ref, sentences = read_sentences(args.data)
    texts = [" ".join(words) for words in sentences]
    model = args.model or info.get("model")
    predictor, first_pass, expected = reference(model, texts, backend=info.get("backend", "auto"), threads=args.threads)
    return argparse.Namespace(url=url, info=info, data=ref, texts=texts, words=[len(w) for w in sentences], model=model,
                              predictor=predictor, first_pass=first_pass, expected=expected)


def thirty_words(url: str, texts: list[str], words: list[int], ok: list, count: int) -> dict:
    """27-33-word sentences: p50 alone (``count`` sent one at a time) against their p99 under the load."""
    sizes = set(THIRTY) & set(words) or {min(words, key=lambda n: abs(n - 30))}  # the nearest length, for small data
    alone = solo_latency(url, [t for t, n in zip(texts, words) if n in sizes], count)
    loaded = [d[2] for d in ok if words[d[0]] in sizes]
    found = {"alone_p50_ms": 1000 * percentile(alone, 50), "load_p99_ms": 1000 * percentile(loaded, 99), "load_requests": len(loaded)}
    found["ratio"] = found["load_p99_ms"] / max(found["alone_p50_ms"], 1e-9)
    return found


def measure_open(args: argparse.Namespace) -> dict:
    """The open-loop load (``--rate``), then the optional solo measurement; returns the figures."""
    run = setup(args)
    rss = server_rss(run.url)
    wall, done, lags = asyncio.run(run_open(run.url, run.texts, rate=args.rate, requests=args.requests,
                                            max_seconds=args.max_seconds, seed=args.seed))
    ok = [d for d in done if d[1] == 200]
    refused = sum(d[1] == 503 for d in done)
    report = {
        "url": run.url, "data": run.data, "model": run.model, "server": run.info.get("server"), "backend": run.info.get("backend"),
        "mode": "open", "rate": args.rate, "seed": args.seed, "requests": len(done), "wall_s": wall, "accepted": len(ok),
        "rejected_503": refused, "errors": len(done) - len(ok) - refused,
        "error_kinds": dict(collections.Counter(str(d[1]) if d[1] else str(d[3]).split("(")[0] for d in done if d[1] not in (200, 503))),
        "requests_per_s": len(ok) / wall, "words_per_s": sum(run.words[d[0]] for d in ok) / wall,
        "latency_ms": {f"p{q}": 1000 * percentile([d[2] for d in ok], q) for q in (50, 95, 99)},
        "send_lag_p99_ms": 1000 * percentile(lags, 99), "rss_mib": {"start": rss, "end": server_rss(run.url)},
        "equal_to_predict": sum(same_answer(d[3], run.expected[d[0]]) for d in ok),
        "stopped_by_time": len(done) < args.requests,
    }
    if args.solo:
        report["thirty_words"] = thirty_words(run.url, run.texts, run.words, ok, args.solo)
    return report


def measure(args: argparse.Namespace) -> dict:
    """Run the closed-loop load (and the optional offline and solo measurements); returns the figures."""
    run = setup(args)
    url, texts, words, predictor = run.url, run.texts, run.words, run.predictor
    wall, done, rounds, offline = run_rounds(args, url, texts, words, predictor, run.first_pass)
    ok = [d for d in done if d[1] == 200]
    latency = [d[2] for d in ok]
    report = {
        "url": url, "data": run.data, "model": run.model, "server": run.info.get("server"), "backend": run.info.get("backend"),
        "requests": len(done), "concurrency": args.concurrency, "wall_s": wall, "errors": len(done) - len(ok),
        "words_per_s": sum(words[d[0]] for d in ok) / wall, "requests_per_s": len(ok) / wall,
        "latency_ms": {f"p{q}": 1000 * percentile(latency, q) for q in (50, 95, 99)},
        "equal_to_predict": sum(same_answer(d[3], run.expected[d[0]]) for d in ok),
        "stopped_by_time": len(done) < args.requests,
    }
    if args.offline:
        import torch

        rate = [sum(words) / seconds for seconds in offline]
        ratios = sorted(r / ((a + b) / 2) for r, a, b in zip(rounds, rate, rate[1:]))
        report["offline"] = {"words_per_s": len(offline) * sum(words) / sum(offline), "passes_words_per_s": rate,
                             "sentences": len(texts), "backend": predictor.backend_name, "threads": torch.get_num_threads()}
        report["server_over_offline"] = report["words_per_s"] / report["offline"]["words_per_s"]
        report["rounds"] = {"server_words_per_s": rounds, "server_over_offline": ratios}
    if args.solo:
        report["thirty_words"] = thirty_words(url, texts, words, ok, args.solo)
    return report


def format_open(r: dict) -> list[str]:
    """The open-loop figures as lines of text."""
    s, rss = r.get("server") or {}, r["rss_mib"]
    mib = lambda v: "?" if v is None else f"{v:,.0f} MiB"  # noqa: E731
    return [
        f"server {r['url']}  model {r['model']} ({r['backend']}, workers {s.get('workers', 1)}, threads {s.get('threads')}, max_batch {s.get('max_batch')}, "
        f"max_queue {s.get('max_queue')}); data {r['data']}",
        f"open loop: {r['requests']:,} requests at {r['rate']:g}/s (Poisson, seed {r['seed']}) in {r['wall_s']:.1f} s"
        + (" (stopped by --max-seconds)" if r["stopped_by_time"] else "")
        + f"; accepted {r['accepted']:,}, 503 {r['rejected_503']:,}, other errors {r['errors']}"
        + (f" ({', '.join(f'{k}: {n}' for k, n in r['error_kinds'].items())})" if r["error_kinds"] else ""),
        f"achieved: {r['requests_per_s']:.1f} requests/s answered ({r['words_per_s']:,.0f} words/s)",
        "latency of accepted requests (from scheduled arrival): " + ", ".join(f"{k} {v:,.0f} ms" for k, v in r["latency_ms"].items()),
        f"client send lag p99 {r['send_lag_p99_ms']:,.0f} ms; server RSS {mib(rss['start'])} at start, {mib(rss['end'])} at end",
        f"answers equal kayan predict: {'yes' if r['equal_to_predict'] == r['accepted'] else 'NO'} "
        f"({r['equal_to_predict']:,}/{r['accepted']:,})",
    ]


def format_report(r: dict) -> str:
    """The figures as lines of text."""
    s = r.get("server") or {}
    lines = format_open(r) if r.get("mode") == "open" else [
        f"server {r['url']}  model {r['model']} ({r['backend']}, workers {s.get('workers', 1)}, threads {s.get('threads')}, max_batch {s.get('max_batch')}, "
        f"max_wait_ms {s.get('max_wait_ms')}); data {r['data']}",
        f"requests: {r['requests']:,} from {r['concurrency']} clients in {r['wall_s']:.1f} s"
        + (" (stopped by --max-seconds)" if r["stopped_by_time"] else "") + f"; errors: {r['errors']}",
        f"throughput: {r['words_per_s']:,.0f} words/s ({r['requests_per_s']:.1f} requests/s)",
        "latency: " + ", ".join(f"{k} {v:,.0f} ms" for k, v in r["latency_ms"].items()),
        f"answers equal kayan predict: {'yes' if r['equal_to_predict'] == r['requests'] else 'NO'} "
        f"({r['equal_to_predict']:,}/{r['requests']:,})",
    ]
    if "offline" in r:
        o = r["offline"]
        lines.append(f"offline Predictor (predict_batch on the {o['sentences']:,} sentences, {o['backend']}, threads {o['threads']}): "
                     f"{o['words_per_s']:,.0f} words/s ({len(o['passes_words_per_s'])} passes, "
                     f"{min(o['passes_words_per_s']):,.0f} to {max(o['passes_words_per_s']):,.0f}); "
                     f"server/offline {r['server_over_offline']:.2f}")
        ratios = r["rounds"]["server_over_offline"]
        lines.append(f"server/offline per round (each against the offline passes around it), {len(ratios)} rounds: "
                     f"median {percentile(ratios, 50):.2f}, {ratios[0]:.2f} to {ratios[-1]:.2f}")
    if "thirty_words" in r:
        t = r["thirty_words"]
        lines.append(f"27-33-word sentences: alone p50 {t['alone_p50_ms']:,.0f} ms; under load p99 {t['load_p99_ms']:,.0f} ms "
                     f"({t['load_requests']:,} requests): {t['ratio']:.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", metavar="URL", help="the server, e.g. http://127.0.0.1:8080 (loopback only)")
    parser.add_argument("--requests", type=int, default=1000, help="requests to send (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients, each with one request in flight (default 16)")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long (default 600)")
    parser.add_argument("--data", help="CORPUS:SPLIT of the sentences (default anercorp:test, else sample:test)")
    parser.add_argument("--model", help="the model to compare answers with (default: the served folder, from /info)")
    parser.add_argument("--threads", type=int, help="threads of the reference Predictor in this process")
    parser.add_argument("--offline", action="store_true", help="also report the Predictor's offline words/s on the same sentences")
    parser.add_argument("--rounds", type=int, default=1, help="send the requests in this many parts, with --offline passes between them (default 1)")
    parser.add_argument("--rate", type=float, help="open loop: requests per second, Poisson arrivals (instead of --concurrency)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the open loop's arrival times (default 0)")
    parser.add_argument("--solo", type=int, default=0, metavar="N", help="then send N 27-33-word sentences one at a time")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.rounds) < 1:
        parser.error("--requests, --concurrency and --rounds must be at least 1")
    if args.rate is not None and not (0 < args.rate < float("inf")):
        parser.error("--rate must be a positive number of requests per second")
    if args.rate is not None and args.offline:
        parser.error("--offline is for the closed loop; leave it out with --rate")
    report = measure(args) if args.rate is None else measure_open(args)
    print(format_report(report), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    answered = report["accepted"] if args.rate is not None else report["requests"]
    return 0 if report["errors"] == 0 and report["equal_to_predict"] == answered else 1


if __name__ == "__main__":
    sys.exit(main())
