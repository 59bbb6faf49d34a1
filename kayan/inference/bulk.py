"""``kayan predict MODEL INPUT... --out DIR``: tag an archive into JSON-lines shards, resumably, on N processes.

The documents of the inputs (:mod:`kayan.inference.archive`) are numbered in order and cut into
shards of ``shard_size`` documents: shard ``k`` holds documents ``k*shard_size`` to
``(k+1)*shard_size - 1`` as ``DIR/shard-0000k.jsonl``, one record per document, as ``kayan predict``
writes it (``source``, ``entities`` with character offsets into the document's text) plus
``model_sha256`` (kayan.json's ``weights_sha256``) and ``kayan_version``.

A shard is written under a temporary name (``DIR/.shard-0000k.jsonl.PID.XXXX.tmp``), synced, and
renamed when complete; shards are renamed in order, and after each one ``DIR/manifest.json`` (written
atomically) records how many are done. A job killed at any point and run again with the same
arguments skips the documents of the shards the manifest counts and writes the rest: no document is
written twice or lost. A rerun whose model, inputs (paths and sizes) or output-changing options differ
from the manifest's is refused in one line, and two jobs never write one ``DIR`` at once (a lock).

With ``workers`` > 1, each worker is a process (``spawn``) that loads the model once, with its own
threads, and tags whole shards; the parent reads the input, hands shards out in order, and renames
them in order; it never loads the model (nor torch), so the workers start without waiting for it.
Memory: the parent holds at most ``2 * workers`` shards' text in flight (one shard with
one worker, tagged in this process); each process holds one model and one chunk of 8,192 words.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kayan import __version__, atomic, console
from kayan.errors import KayanError
from kayan.files import sha256_of
from kayan.inference.archive import count_documents, read_documents
from kayan.inference.predict_io import Piece, write_predictions
from kayan.model import settings
from kayan.model.choices import threads_per_worker
from kayan.model.location import model_folder
from kayan.outputs import MARKER, TAGGED, check_replaceable, kind_of, mark

MANIFEST = "manifest.json"
SHARD_SIZE = 1000
FIX = "rerun with the job's own arguments and model, or choose another --out folder"


@dataclass(frozen=True)
class LoadOptions:
    """How each process loads the model (:func:`kayan.inference.predict.load`'s arguments)."""

    backend: str = "auto"
    decoding: str | None = None
    batch_size: int = 32
    threads: int | None = None
    precision: str = "fp32"


@dataclass
class Job:
    """A bulk tagging job: what to tag, with what, into where.

    Args:
        model: the packaged model folder (or run folder).
        inputs: the files to tag, in order.
        out: the output folder.
        text_field: JSON lines' text field, or parquet's text column (``None``: plain text, parquet ``text``).
        shard_size: documents per shard.
        workers: processes that tag shards.
        load: how each process loads the model.
    """

    model: str
    inputs: list[str]
    out: Path
    text_field: str | None = None
    shard_size: int = SHARD_SIZE
    workers: int = 1
    load: LoadOptions = field(default_factory=LoadOptions)

    def identity(self, digest: str) -> dict:
        """What a rerun must repeat: everything that changes the output (not workers or threads)."""
        options = {k: v for k, v in asdict(self.load).items() if k != "threads"}
        inputs = [{"path": str(Path(p).resolve()), "bytes": os.path.getsize(p)} for p in self.inputs]
        return {"model_sha256": digest, "kayan_version": __version__, "inputs": inputs, "text_field": self.text_field,
                "shard_size": self.shard_size, **options}


def shard_name(index: int) -> str:
    """The file name of shard ``index``.

    >>> shard_name(3)
    'shard-00003.jsonl'
    """
    return f"shard-{index:05d}.jsonl"


def model_digest(model: str) -> str:
    """The model's identity: kayan.json's ``weights_sha256``, else the sha256 of its weight files' digests."""
    folder = model_folder(model)
    stored = settings.read(folder)
    if stored is not None and stored.weights_sha256:
        return stored.weights_sha256
    weights = sorted(p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin", ".onnx") and p.is_file())
    listing = "".join(f"{p.relative_to(folder)} {sha256_of(p)}\n" for p in weights)
    return hashlib.sha256(listing.encode()).hexdigest()


# The output folder: checked, locked, marked; the manifest read, checked against the job, written.

@contextlib.contextmanager
def opened(job: Job, identity: dict) -> Iterator[dict]:
    """The job's folder, locked for the job, with its manifest (a new one: nothing done); stale temporary shards removed.

    Raises:
        KayanError: the folder is not a tagged archive (nor new, nor empty), holds an input, is being written by
            another job, or its manifest records another job.
    """
    out = check_replaceable(job.out, TAGGED, inputs=[job.model, *job.inputs], overwrite=True,
                            fix="choose another --out folder")
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        if kind_of(out) is None:  # new or empty: ours from now on
            mark(out, TAGGED)
        manifest = _read_manifest(out)
        if manifest is None:
            manifest = {"job": identity, "shards": 0, "documents": 0, "complete": False}
            record_done(out, manifest, shards=0)
        _check_same_job(out, manifest["job"], identity)
        for pattern in (".shard-*.tmp", f".{MANIFEST}.*.tmp", f".{MARKER}.*.tmp"):  # a killed job's half-written
            for stale in out.glob(pattern):  # files (shards, atomic writes): no one else writes here
                stale.unlink()
        yield manifest


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` for the job, refused at once when another job holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KayanError(f"{folder}: another `kayan predict --out` is writing it; wait for it to end, "
                             "or choose another --out folder") from None
        yield
    finally:
        os.close(fd)


def _read_manifest(out: Path) -> dict | None:
    """The manifest in ``out``, or ``None`` where there is none yet."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and isinstance(manifest.get("job"), dict) and isinstance(manifest.get("shards"), int):
            return manifest
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        pass
    raise KayanError(f"{path}: not a manifest Kayan can read; choose another --out folder")


def _check_same_job(out: Path, recorded: Mapping, identity: Mapping) -> None:
    """Refuse, in one line naming the first difference, a rerun that is not the recorded job."""
    for key in identity:
        if recorded.get(key) != identity[key]:
            what = {"model_sha256": "the model's weights", "inputs": "the input files (paths, bytes)",
                    "kayan_version": "Kayan's version"}.get(key, f"--{key.replace('_', '-')}")
            raise KayanError(f"{out} holds another job's shards ({what}: {_short(recorded.get(key))} there, "
                             f"{_short(identity[key])} now); {FIX}")


def _short(value: object) -> str:
    """A value for a one-line message, cut to 80 characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def record_done(out: Path, manifest: dict, *, shards: int, documents: int = 0, complete: bool = False) -> None:
    """``shards`` shards are in place (``documents`` more than the manifest counts): write it so, atomically."""
    manifest.update(shards=shards, documents=manifest["documents"] + documents, complete=complete)
    atomic.write_text(out / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")


# Shards: cut from the documents, tagged into a temporary file, renamed in order.

def shards(pieces: Iterable[Piece], size: int, *, skip: int = 0) -> Iterator[tuple[int, list[Piece]]]:
    """``(index, pieces)`` of each shard of ``size`` documents, from shard ``skip`` on (the documents before it read
    and dropped).

    >>> docs = [Piece(f"f:{n}", "x") for n in range(1, 6)]
    >>> [(i, [p.source for p in s]) for i, s in shards(docs, 2, skip=1)]
    [(1, ['f:3', 'f:4']), (2, ['f:5'])]
    """
    index, shard, documents = 0, [], 0
    for piece in pieces:
        if index >= skip:
            shard.append(piece)
        documents += piece.last
        if documents == size:
            if index >= skip:
                yield index, shard
            index, shard, documents = index + 1, [], 0
    if shard:
        yield index, shard


def tag_shard(predictor, index: int, pieces: list[Piece], out: Path, extra: Mapping) -> tuple[int, Path, int, int]:
    """Tag one shard into a temporary file in ``out``, synced; returns its index, temporary path, documents and words."""
    tmp = out / f".{shard_name(index)}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    words = [0]
    with open(tmp, "x", encoding="utf-8", newline="\n") as handle:
        documents = write_predictions(predictor, pieces, handle, extra=extra,
                                      progress=lambda n: words.__setitem__(0, words[0] + n))
        handle.flush()
        os.fsync(handle.fileno())
    return index, tmp, documents, words[0]


def _tag_inline(job: Job, work: Iterable[tuple[int, list[Piece]]], extra: Mapping):
    """Tag the shards in this process, one at a time."""
    from kayan.inference.predict import load  # torch: only where a model is loaded, never in the parent of workers

    predictor = load(job.model, **asdict(job.load))
    for index, pieces in work:
        yield tag_shard(predictor, index, pieces, job.out, extra)


_worker: dict = {}


def _start_worker(model: str, options: dict, level: str) -> None:
    """A worker's start: the console as the command's (for good: the process is the job's), a watch on the parent
    (a job killed outright leaves no worker behind), then the model, once."""
    from kayan.inference.predict import load  # torch: only where a model is loaded, never in the parent of workers

    contextlib.ExitStack().enter_context(console.terminal(level))
    parent = os.getppid()
    threading.Thread(target=_end_with, args=(parent,), daemon=True, name="kayan-parent-watch").start()
    try:
        _worker["predictor"] = load(model, **options)
    except KayanError as error:  # raised again with the first shard: the parent prints it in one line
        _worker["error"] = error


def _end_with(parent: int) -> None:
    """End this worker as soon as its parent is gone (it is then a child of another process)."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _tag_in_worker(index: int, pieces: list[Piece], out: Path, extra: Mapping) -> tuple[int, Path, int, int]:
    if "error" in _worker:
        raise _worker["error"]
    return tag_shard(_worker["predictor"], index, pieces, out, extra)


def _tag_in_pool(job: Job, work: Iterable[tuple[int, list[Piece]]], extra: Mapping):
    """Tag the shards on ``job.workers`` processes, at most two per worker in flight; results in shard order."""
    options = asdict(job.load)
    if options["threads"] is None:  # share the cores out
        options["threads"] = threads_per_worker(job.workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(job.workers, mp_context=context, initializer=_start_worker,
                             initargs=(job.model, options, console.level())) as pool:
        pending: deque = deque()
        for index, pieces in work:
            pending.append(pool.submit(_tag_in_worker, index, pieces, job.out, extra))
            if len(pending) >= 2 * job.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class Progress:
    """A line on stderr every few seconds: documents done, documents and words per second, and an ETA.

    Args:
        total: documents in the whole input.
        done: documents done before this run started.
        enabled: whether to print at all (not at the console's ``quiet`` level).
    """

    def __init__(self, total: int, done: int, *, enabled: bool):
        self.total, self.done, self.enabled = total, done, enabled
        self.start = self.shown = time.monotonic()
        self.documents = self.words = 0
        self.tty = sys.stderr.isatty()

    def update(self, documents: int, words: int, *, last: bool = False) -> None:
        """Count a shard; print the line when it is due (every second on a terminal, every 30 s otherwise)."""
        self.documents, self.words = self.documents + documents, self.words + words
        now = time.monotonic()
        if not self.enabled or (not last and now - self.shown < (1 if self.tty else 30)):
            return
        self.shown, seconds = now, max(now - self.start, 1e-9)
        rate, done = self.documents / seconds, self.done + self.documents
        eta = f", ETA {_clock((self.total - done) / rate)}" if rate > 0 and not last else ""
        line = (f"kayan: {done:,}/{self.total:,} documents, {rate:,.1f} documents/s, "
                f"{self.words / seconds:,.0f} words/s{eta}")
        print(("\r" if self.tty else "") + line, end="\n" if last or not self.tty else "", file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    """``H:MM:SS``.

    >>> _clock(3725.2)
    '1:02:05'
    """
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def tag_archive(job: Job) -> dict:
    """Run (or resume) ``job``; returns its manifest (``complete``, ``shards``, ``documents``) and ``tagged``: the
    documents this call tagged.

    Raises:
        KayanError: see :func:`opened`, and unreadable inputs or model (one line each).
    """
    seen: set[Path] = set()
    for name in job.inputs:
        if not Path(name).is_file():
            raise KayanError(f"{name}: no such file; --out tags files (not stdin): check the path")
        if Path(name).resolve() in seen:
            raise KayanError(f"{name} is given twice: its documents would be tagged twice; name each input once")
        seen.add(Path(name).resolve())
    digest = model_digest(job.model)
    with opened(job, job.identity(digest)) as manifest:
        if manifest["complete"]:
            return {**manifest, "tagged": 0}
        total = count_documents(job.inputs, text_field=job.text_field)
        progress = Progress(total, manifest["documents"], enabled=console.level() != "quiet")
        work = shards(read_documents(job.inputs, text_field=job.text_field), job.shard_size, skip=manifest["shards"])
        run = _tag_inline if job.workers == 1 else _tag_in_pool
        for index, tmp, documents, words in run(job, work, {"model_sha256": digest, "kayan_version": __version__}):
            os.replace(tmp, job.out / shard_name(index))
            record_done(job.out, manifest, shards=index + 1, documents=documents)
            progress.update(documents, words)
        record_done(job.out, manifest, shards=manifest["shards"], complete=True)
        progress.update(0, 0, last=True)
        return {**manifest, "tagged": progress.documents}
