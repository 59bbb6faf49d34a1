"""Dynamic batching: texts of concurrent requests tagged together, off the event loop.

Requests hand their texts to :meth:`Batcher.submit` and get a future back. A worker thread takes
the first waiting request, gathers more for at most ``max_wait_ms`` (or until ``max_batch`` texts;
when requests queued up during the last batch, it takes them without waiting), tags them all in one
call of :meth:`kayan.inference.predict.Predictor.tag_texts` (their sentences share length-sorted
windows, as offline prediction does) and gives each request its own documents. While a worker runs
a batch, new requests queue up and form the next one, so the model stays busy without any request
waiting longer than one batch plus ``max_wait_ms`` for its turn.

``workers`` threads run batches side by side on the one loaded model (one gathers at a time). On a
CPU, a small batch uses a second core poorly through intra-op threads (PyTorch's matrix products on
a few sentences scale far below 2× on 2 threads), while two batches on one thread each can use both
cores: on the 2-core development machine ``workers=2`` with one thread each answered 1.74× what one
worker on one thread did (the README's "Workers" table). While other workers are free, a worker
neither waits for more requests nor takes all that wait: it takes its share (what waits, divided by
the free workers) and leaves the rest to them, since two batches of k texts side by side finish in
about half the time of one batch of 2k. With one worker free (or ``workers=1``) it gathers as above.

The queue is bounded in texts (``max_queue``): texts accepted and not yet answered, waiting or being
tagged. A request whose texts do not fit is refused at once with :class:`QueueFull` (the server's 503
with ``Retry-After``) rather than queued, so under more load than the model can take the latency of
the accepted requests stays bounded; a request once accepted is always answered.

The model's forward call (each member's, for an ensemble) is wrapped in
:class:`~kayan.model.backends.TrimmedBackend`: the windows of a small gathered
batch differ in length far more than those of a large offline chunk, so a padded batch is cut into
sub-batches of similar length and each runs without the padding the others would have added.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from kayan.inference.predict import Document, Predictor
from kayan.model.backends import TrimmedBackend
from kayan.serve.metrics import BATCH_BUCKETS, Histogram

_STOP = object()


@dataclass
class _Job:
    texts: Sequence[str]
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """What the worker has done: batches run, texts and requests tagged, texts per batch."""

    batches: int = 0
    requests: int = 0
    texts: int = 0
    sizes: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))


class QueueFull(Exception):
    """The texts of a request do not fit in the batcher's queue: refuse it, and retry later.

    Args:
        queued: texts accepted and not yet answered.
        texts: the refused request's texts.
        limit: the queue's bound, in texts.
        retry_after: whole seconds the queued texts are expected to take (at least 1).
    """

    def __init__(self, queued: int, texts: int, limit: int, retry_after: int):
        super().__init__(f"queue full: {queued} of {limit} texts queued, {texts} more do not fit")
        self.queued, self.texts, self.limit, self.retry_after = queued, texts, limit, retry_after


class Batcher:
    """Tags the texts of concurrent requests together, on ``workers`` threads that share the model.

    Args:
        predictor: the loaded model; its backend (each member's) is wrapped in :class:`TrimmedBackend`.
            With several workers its ``tag_texts`` runs on several threads at once (Kayan's
            predictor holds no state between calls; PyTorch and onnxruntime models may be called so).
        max_batch: the most texts gathered into one batch (a larger single request runs alone).
        max_wait_ms: how long the first request of a batch waits for others to join it.
        max_queue: the most texts accepted and not yet answered (None: no bound).
        workers: batches run at once.
    """

    def __init__(self, predictor: Predictor, *, max_batch: int = 32, max_wait_ms: float = 5.0, max_queue: int | None = None,
                 workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        for member in predictor.model.members:
            if not isinstance(member.backend, TrimmedBackend):
                member.backend = TrimmedBackend(member.backend)
        self.predictor = predictor
        self.max_batch, self.max_wait, self.max_queue, self.workers = max_batch, max_wait_ms / 1000, max_queue, workers
        self.stats = BatchStats()
        self._queued = 0
        self._waiting = 0  # texts accepted and not yet in a batch
        self._tagging = 0  # workers running a batch
        self._seconds_per_text = 0.0  # moving average of a worker's time per text, for Retry-After
        self._lock = threading.Lock()  # the queued count, the stats and the time per text
        self._gathering = threading.Lock()  # one worker gathers a batch at a time
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._held: _Job | None = None
        self._threads = [threading.Thread(target=self._run, name=f"kayan-serve-batcher-{n}", daemon=True) for n in range(workers)]
        self._closed = False

    def start(self) -> Batcher:
        """Start the worker threads; returns the batcher."""
        for thread in self._threads:
            thread.start()
        return self

    @property
    def alive(self) -> bool:
        """Whether every worker is running and the batcher accepts texts."""
        return all(thread.is_alive() for thread in self._threads) and not self._closed

    @property
    def queued(self) -> int:
        """Texts accepted and not yet answered (waiting or being tagged)."""
        return self._queued

    def submit(self, texts: Sequence[str]) -> Future:
        """Queue texts for tagging; the future's result is one :class:`Document` per text, in order.

        Raises:
            QueueFull: the texts do not fit under ``max_queue``; nothing was queued.
        """
        if self._closed:
            raise RuntimeError("the batcher is closed")
        job = _Job(list(texts))
        size = len(job.texts)
        with self._lock:
            if self.max_queue is not None and self._queued + size > self.max_queue:
                wait = math.ceil(self._queued * self._seconds_per_text / self.workers)
                raise QueueFull(self._queued, size, self.max_queue, max(1, wait))
            self._queued += size
            self._waiting += size
        job.future.add_done_callback(lambda _: self._release(size))  # answered, failed or cancelled
        self._queue.put(job)
        return job.future

    def _release(self, size: int) -> None:
        with self._lock:
            self._queued -= size

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued requests, then stop the workers (``timeout``: for each)."""
        self._closed = True
        self._queue.put(_STOP)  # each worker that meets it puts it back for the next
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _gather(self) -> tuple[list[_Job], bool]:
        """The next batch of jobs, and whether the stop mark was reached (it is put back for the other workers).

        An idle worker waits up to ``max_wait`` for requests to join the first; a busy one (requests
        queued while a batch ran) takes what is queued and runs at once. While other workers are free
        too, a worker takes only its share of the waiting texts and runs at once.
        """
        with self._gathering:
            jobs, stop = self._gather_one()
            with self._lock:
                self._waiting -= sum(len(job.texts) for job in jobs)
                self._tagging += bool(jobs)  # before the next worker gathers, which counts the free ones
        if stop:
            self._queue.put(_STOP)
        return jobs, stop

    def _gather_one(self) -> tuple[list[_Job], bool]:
        busy = self._held is not None or not self._queue.empty()
        first = self._held if self._held is not None else self._queue.get()
        self._held = None
        if first is _STOP:
            return [], True
        jobs, size = [first], len(first.texts)
        limit, wait = self.max_batch, 0.0 if busy else self.max_wait
        with self._lock:
            free, waiting = self.workers - self._tagging, self._waiting
        if free > 1:
            # Other workers are free: take this one's share of what waits, at once, and leave them the
            # rest to tag at the same time (one batch of 2k texts takes about twice as long as two of k).
            limit, wait = min(limit, -(-waiting // free)), 0.0
        deadline = time.monotonic() + wait
        while size < limit:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            if size + len(job.texts) > limit:
                self._held = job
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs, False

    def _run(self) -> None:
        stop = False
        while not stop:
            gathered, stop = self._gather()
            jobs = [job for job in gathered if job.future.set_running_or_notify_cancel()]
            try:
                if jobs:
                    self._tag(jobs)
            finally:
                if gathered:
                    with self._lock:
                        self._tagging -= 1

    def _tag(self, jobs: list[_Job]) -> None:
        """Tag the jobs' texts together and resolve each job's future with its own documents."""
        started = time.perf_counter()
        try:
            documents: list[Document] = list(self.predictor.tag_texts([t for job in jobs for t in job.texts]))
        except Exception as error:  # a bug: never let one request's failure take down the others
            if len(jobs) == 1:
                jobs[0].future.set_exception(error)
            else:
                for job in jobs:
                    self._retry_alone(job)
            return
        with self._lock:
            self.stats.batches += 1
            self.stats.requests += len(jobs)
            self.stats.texts += len(documents)
            self.stats.sizes.observe(len(documents))
            if documents:
                per_text = (time.perf_counter() - started) / len(documents)
                self._seconds_per_text = per_text if not self._seconds_per_text else 0.8 * self._seconds_per_text + 0.2 * per_text
        start = 0
        for job in jobs:
            job.future.set_result(documents[start : start + len(job.texts)])
            start += len(job.texts)

    def _retry_alone(self, job: _Job) -> None:
        try:
            job.future.set_result(list(self.predictor.tag_texts(job.texts)))
        except Exception as error:
            job.future.set_exception(error)
