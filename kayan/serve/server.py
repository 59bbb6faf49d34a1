"""``kayan serve MODEL``: load the model, bind the socket, run uvicorn, shut down gracefully.

Order matters: the model loads (and tags one warm-up sentence) and the address is bound *before*
the server listens, so a model that fails to load or a port in use ends ``kayan serve`` with one
line and status 2, never with a server that answers 500. SIGTERM (and Ctrl-C) stop accepting
connections, let the requests in flight finish (up to :data:`GRACEFUL_SECONDS`), stop the worker
and return: the command exits 0 after SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

from kayan import __version__
from kayan.errors import KayanError
from kayan.inference.predict import load
from kayan.model.choices import threads_per_worker
from kayan.serve.app import create_app
from kayan.serve.batcher import Batcher
from kayan.serve.protocol import Limits

GRACEFUL_SECONDS = 60
MAX_QUEUE = 256
"""Default ``--max-queue``, in texts: eight batches of the default ``--max-batch``, and the default
``--max-inputs``, so that any request the default limits allow fits in an idle server's queue."""
WARM_UP = "استقبل الرئيس وفدا من منظمة الصحة العالمية في بيروت."


def require_extra() -> None:
    """Fail with the install command when the ``serve`` extra is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise KayanError(f"kayan serve needs {error.name}; install it with: pip install 'kayan[serve]'") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one).

    Raises:
        KayanError: the address cannot be bound (in use, not local, no permission).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, protocol, _, address = infos[0]
        # The protocol must be named (IPPROTO_TCP, not 0): asyncio sets TCP_NODELAY only on sockets that
        # say they are TCP, and without it a response waits ~40 ms for the client's delayed ACK (Nagle).
        sock = socket.socket(family, kind, protocol)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        raise KayanError(f"--host {host} --port {port}: cannot listen there ({error.strerror or error}); "
                         "choose another --port (0 picks a free one) or a local --host") from None
    sock.set_inheritable(True)
    return sock


def model_info(predictor, model: str | Path, settings: dict) -> dict:
    """What ``GET /info`` reports: kayan.json, the labels and settings in use, the server's settings."""
    return {
        **predictor.meta,
        "model": str(Path(model).resolve()),
        "labels": predictor.labels,
        **predictor.model.settings(),
        "backend": predictor.backend_name,
        "kayan_version": __version__,
        "server": settings,
    }


def _check_settings(port: int, threads: int | None, max_batch: int, max_wait_ms: float, limits: Limits, max_queue: int,
                    workers: int) -> None:
    checks = {"--port": 0 <= port <= 65535, "--threads": threads is None or threads >= 1, "--max-batch": max_batch >= 1,
              "--max-queue": max_queue >= 1, "--workers": workers >= 1,
              "--max-wait-ms": max_wait_ms >= 0, "--max-chars": limits.max_chars >= 1, "--max-body": limits.max_body >= 1,
              "--max-inputs": limits.max_inputs >= 1, "--body-timeout": limits.body_timeout > 0}
    for option, ok in checks.items():
        if not ok:
            raise KayanError(f"{option}: out of range; give a positive number (--port: 0 to 65535)")


def prepare(model: str | Path, *, backend: str = "auto", threads: int | None = None, precision: str = "fp32",
            decoding: str | None = None, batch_size: int = 32, max_batch: int = 32, max_wait_ms: float = 5.0, limits: Limits = Limits(),
            max_queue: int = MAX_QUEUE, workers: int = 1):
    """Load the model, start the batcher and build the app; returns ``(app, batcher)``.

    Args: as :func:`serve`.

    Raises:
        KayanError: the model does not load, or a setting is out of range.
    """
    import torch

    if threads is None and workers > 1:  # share the cores out, as kayan predict --workers does
        threads = threads_per_worker(workers)
    predictor = load(model, backend=backend, decoding=decoding, batch_size=batch_size, threads=threads, precision=precision)
    predictor.predict(WARM_UP)
    batcher = Batcher(predictor, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, workers=workers).start()
    used = threads or (torch.get_num_threads() if predictor.backend_name == "torch" else "onnxruntime default")
    settings = {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_queue": max_queue, "batch_size": batch_size,
                "workers": workers, "threads": used,
                "max_chars": limits.max_chars, "max_body": limits.max_body, "max_inputs": limits.max_inputs,
                "body_timeout": limits.body_timeout}
    return create_app(batcher, limits=limits, info=model_info(predictor, model, settings)), batcher


def serve(model: str | Path, *, host: str = "127.0.0.1", port: int = 8080, backend: str = "auto",
          threads: int | None = None, precision: str = "fp32", decoding: str | None = None, batch_size: int = 32,
          max_batch: int = 32, max_wait_ms: float = 5.0, limits: Limits = Limits(), max_queue: int = MAX_QUEUE,
          log_level: str = "info", workers: int = 1) -> None:
    """Serve a model over HTTP until SIGTERM or Ctrl-C.

    Args:
        model: a packaged model, run folder or Hugging Face token-classification folder.
        host: the address to listen on (default loopback; ``0.0.0.0`` exposes it to the network).
        port: the TCP port (0: a free one, printed at start).
        backend: ``auto``, ``torch``, ``onnx`` or ``onnx-int8`` (as :func:`kayan.load`).
        threads: intra-op threads of each batch's forward passes (default: PyTorch's / onnxruntime's
            choice; with several workers, the cores shared out among them).
        precision: PyTorch's arithmetic, ``fp32``, ``bf16`` or ``auto`` (as :func:`kayan.load`).
        decoding: override the model's decoding.
        batch_size: windows per forward pass.
        max_batch: the most texts gathered from concurrent requests into one batch.
        max_wait_ms: how long a batch waits for more requests before it runs.
        limits: what one request may hold.
        max_queue: the most texts accepted and not yet answered; a request whose texts do not fit is
            answered 503 with ``Retry-After`` at once (one with more texts than this, 413).
        log_level: uvicorn's log level.
        workers: batches tagged at once, on threads sharing the one loaded model (on a CPU,
            ``workers=2, threads=1`` answers more on 2 cores than one batch on 2 threads).

    Raises:
        KayanError: the extra is missing, a setting is out of range, the model does not load or the
            address cannot be bound; all before the server listens.
    """
    require_extra()
    import uvicorn

    _check_settings(port, threads, max_batch, max_wait_ms, limits, max_queue, workers)
    app, batcher = prepare(model, backend=backend, threads=threads, precision=precision, decoding=decoding, batch_size=batch_size,
                           max_batch=max_batch, max_wait_ms=max_wait_ms, limits=limits, max_queue=max_queue, workers=workers)
    try:
        sock = bind(host, port)
        config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=GRACEFUL_SECONDS)
        server = uvicorn.Server(config)
        bound = sock.getsockname()
        where = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        print(f"kayan serve: {model} ({batcher.predictor.backend_name}) on http://{where}:{bound[1]}  (docs: /docs)",
              file=sys.stderr, flush=True)
        previous = signal.signal(signal.SIGTERM, lambda *_: None)  # uvicorn re-raises SIGTERM after its shutdown: exit 0
        try:
            server.run(sockets=[sock])
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        batcher.close()
