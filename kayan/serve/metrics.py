"""What ``kayan serve`` counts, and ``GET /metrics`` in the Prometheus text format (version 0.0.4).

Counters and histograms are plain objects with a lock each: the event loop records requests, the
batcher's worker thread records batches, and a scrape reads both. The exposition is written here with
the standard library (no ``prometheus_client``); :func:`exposition` is pure.

Metrics (prediction requests are ``POST /`` and ``POST /predict``; other routes are not counted):

* ``kayan_requests_total{status}``: prediction requests answered, by HTTP status;
* ``kayan_request_errors_total{status}``: those answered with a status of 400 or more;
* ``kayan_request_duration_seconds``: histogram of the latency of prediction requests answered 200,
  from the request reaching the application to its last byte sent;
* ``kayan_batch_texts``: histogram of the texts tagged together in one batch;
* ``kayan_queue_texts`` / ``kayan_queue_limit_texts``: texts accepted and not yet answered, and
  ``--max-queue``; ``kayan_requests_in_flight``; ``process_resident_memory_bytes``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
PREDICT_PATHS = ("/", "/predict")


class Histogram:
    """A thread-safe histogram with fixed upper bounds (and ``+Inf``).

    Args:
        bounds: the buckets' upper bounds, ascending.

    >>> h = Histogram((1, 2))
    >>> for v in (0.5, 2, 7):
    ...     h.observe(v)
    >>> h.snapshot()
    ([1, 2, 3], 9.5, 3)
    """

    def __init__(self, bounds: Sequence[float]):
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Count one value into the first bucket whose bound is at least ``value``."""
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[int], float, int]:
        """``(cumulative counts per bucket, +Inf last; sum; count)``, read at one instant."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
        return cumulative, total, cumulative[-1]


class Counter:
    """A thread-safe counter per label value (here: per HTTP status)."""

    def __init__(self):
        self._values: dict[str, int] = {}
        self._lock = threading.Lock()

    def inc(self, label: str) -> None:
        """Add one to the label's count."""
        with self._lock:
            self._values[label] = self._values.get(label, 0) + 1

    def snapshot(self) -> dict[str, int]:
        """The counts, by label, sorted."""
        with self._lock:
            return dict(sorted(self._values.items()))


class Metrics:
    """The prediction requests' counters and latency histogram."""

    def __init__(self):
        self.requests, self.errors = Counter(), Counter()
        self.latency = Histogram(LATENCY_BUCKETS)

    def record(self, status: int, seconds: float) -> None:
        """One prediction request answered with ``status`` after ``seconds``."""
        self.requests.inc(str(status))
        if status >= 400:
            self.errors.inc(str(status))
        if status == 200:
            self.latency.observe(seconds)


class MeasuredRoutes:
    """ASGI middleware: each prediction request's status and latency go to :meth:`Metrics.record`.

    A request whose handler raised (a bug: the server answers 500) counts as 500.

    Args:
        app: the ASGI application it wraps.
        metrics: where requests are recorded.
    """

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PREDICT_PATHS:
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.record(status[0], time.perf_counter() - start)


def resident_bytes() -> int:
    """This process's resident set size in bytes (Linux ``/proc``; else the peak from ``getrusage``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _value(number: float) -> str:
    """A sample value or bucket bound as Prometheus writes it.

    >>> [_value(v) for v in (3, 0.25, math.inf)]
    ['3', '0.25', '+Inf']
    """
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def family(name: str, kind: str, text: str, samples: Iterable[tuple[str, Mapping[str, str], float]]) -> list[str]:
    """One metric family's lines: ``# HELP``, ``# TYPE`` and ``(suffix, labels, value)`` samples.

    >>> family("up", "gauge", "whether it runs", [("", {}, 1)])
    ['# HELP up whether it runs', '# TYPE up gauge', 'up 1']
    """
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for suffix, labels, value in samples:
        inner = ",".join(f'{key}="{label}"' for key, label in labels.items())
        lines.append(f"{name}{suffix}{{{inner}}} {_value(value)}" if inner else f"{name}{suffix} {_value(value)}")
    return lines


def histogram_samples(histogram: Histogram) -> list[tuple[str, dict[str, str], float]]:
    """The ``_bucket{le=...}``, ``_sum`` and ``_count`` samples of a histogram.

    >>> histogram_samples(Histogram((1,)))
    [('_bucket', {'le': '1'}, 0), ('_bucket', {'le': '+Inf'}, 0), ('_sum', {}, 0.0), ('_count', {}, 0)]
    """
    cumulative, total, count = histogram.snapshot()
    bounds = [*histogram.bounds, math.inf]
    return [("_bucket", {"le": _value(b)}, c) for b, c in zip(bounds, cumulative)] + [("_sum", {}, total), ("_count", {}, count)]


def exposition(metrics: Metrics, *, batches: Histogram, queued: int, limit: int | None, in_flight: int) -> str:
    """The text of ``GET /metrics``.

    Args:
        metrics: the prediction requests' counters and latency.
        batches: the batcher's histogram of texts per batch.
        queued: texts accepted and not yet answered.
        limit: ``--max-queue`` (None: unbounded, not reported).
        in_flight: prediction requests between their body read and their answer.
    """
    lines = family("kayan_requests_total", "counter", "Prediction requests answered, by HTTP status.",
                   [("", {"status": s}, n) for s, n in metrics.requests.snapshot().items()])
    lines += family("kayan_request_errors_total", "counter", "Prediction requests answered with a status of 400 or more.",
                    [("", {"status": s}, n) for s, n in metrics.errors.snapshot().items()])
    lines += family("kayan_request_duration_seconds", "histogram", "Latency of prediction requests answered 200, in seconds.",
                    histogram_samples(metrics.latency))
    lines += family("kayan_batch_texts", "histogram", "Texts tagged together in one batch.", histogram_samples(batches))
    lines += family("kayan_queue_texts", "gauge", "Texts accepted and not yet answered (waiting or being tagged).", [("", {}, queued)])
    if limit is not None:
        lines += family("kayan_queue_limit_texts", "gauge", "The server's --max-queue.", [("", {}, limit)])
    lines += family("kayan_requests_in_flight", "gauge", "Prediction requests accepted and not yet answered.", [("", {}, in_flight)])
    lines += family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [("", {}, resident_bytes())])
    return "\n".join(lines) + "\n"
