"""The FastAPI application of ``kayan serve``: routes, body limits and JSON errors.

Routes: ``POST /`` and ``POST /predict`` (the Hugging Face token-classification shape, see
:mod:`kayan.serve.protocol`), ``GET /health``, ``GET /info``, ``GET /metrics`` (Prometheus text, see
:mod:`kayan.serve.metrics`) and the OpenAPI docs at ``/docs``.
The body is read here, with its size and its time capped (so FastAPI does not read it: the request model
documents the route, and :func:`~kayan.serve.protocol.parse_request` validates it), and the
texts go to the :class:`~kayan.serve.batcher.Batcher`, whose worker thread does the tagging, so the
event loop keeps answering (``/health`` included) while a batch runs. Every error, from a bad body
to an unknown route, is ``{"error": "..."}`` with its status; a request that does not fit in the
batcher's bounded queue is refused at once with 503 and ``Retry-After``, never queued.
"""

import asyncio  # no `from __future__ import annotations`: FastAPI reads the local `Request` annotation at definition
import logging
from collections.abc import Mapping

from pydantic_core import to_json

from kayan import __version__
from kayan.serve.batcher import Batcher, QueueFull
from kayan.serve.metrics import CONTENT_TYPE, MeasuredRoutes, Metrics, exposition
from kayan.serve.protocol import Answer, ApiError, ErrorBody, Limits, answer, parse_body, parse_request, request_schema

DESCRIPTION = """Named entities in Arabic text, with the request and response shape of the Hugging Face
Inference API for token classification. `start`/`end` are character offsets into each input, exactly
as `kayan.load(MODEL).predict` gives them."""


async def read_body(request, limits: Limits) -> bytes:
    """The request body: refused with 413 as soon as it is known to exceed ``limits.max_body`` bytes, and
    with 408 when it has not all come within ``limits.body_timeout`` seconds (the connection is then closed).

    A client that disconnects before its body is complete raises starlette's ``ClientDisconnect``.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body:
        raise ApiError(413, f"body: {declared} bytes, more than the server's --max-body {limits.max_body}; "
                            "send less text per request")
    try:
        return await asyncio.wait_for(_body(request, limits.max_body), limits.body_timeout)
    except asyncio.TimeoutError:  # the builtin TimeoutError from Python 3.11
        raise ApiError(408, f"body: not received in full within the server's --body-timeout of {limits.body_timeout:g} s; "
                            "send the whole body without pausing", close=True) from None


async def _body(request, max_body: int) -> bytes:
    """The body's chunks as they come, joined; 413 as soon as they pass ``max_body`` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise ApiError(413, f"body: more than the server's --max-body {max_body} bytes; send less text per request")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str, *, close: bool = False, headers: Mapping[str, str] | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers={**(headers or {}), **({"connection": "close"} if close else {})})


def submit(batcher: Batcher, texts) -> asyncio.Future:
    """The batcher's future for the texts, or 413 (more texts than the queue holds) or 503 (queue full now)."""
    if batcher.max_queue is not None and len(texts) > batcher.max_queue:
        raise ApiError(413, f"inputs: {len(texts)} texts, more than the server's --max-queue {batcher.max_queue}; "
                            "send fewer texts per request")
    try:
        return asyncio.wrap_future(batcher.submit(texts))
    except QueueFull as full:
        raise ApiError(503, f"server busy: {full.queued} texts queued, --max-queue {full.limit}; retry after {full.retry_after} s",
                       headers={"Retry-After": str(full.retry_after)}) from None


def _add_error_handlers(app) -> None:
    """Every error as ``{"error": "..."}``: client errors, unknown routes, and bugs (500)."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    @app.exception_handler(ApiError)
    async def api_error(request, error: ApiError):
        return _error(error.status, error.message, close=error.close, headers=error.headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request, error: ClientDisconnect):
        """One log line, no traceback: a client may always hang up; the answer goes nowhere."""
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        logging.getLogger("uvicorn.error").info("%s %s: %s disconnected before its whole body came", request.method,
                                                request.url.path, client)
        return _error(400, "the client disconnected before sending the whole body")

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        return _error(error.status_code, f"{request.method} {request.url.path}: {error.detail}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error: RequestValidationError):
        return _error(422, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()))

    @app.exception_handler(Exception)
    async def bug(request, error: Exception):
        return _error(500, f"internal error ({type(error).__name__}); the server's log has the details")


def _documented() -> dict:
    """What ``/docs`` shows of a predict route: the request model (the app reads the body itself), the answer, the errors."""
    return {
        "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {"schema": request_schema()}}}},
        "response_model": Answer,
        "response_description": "the entities of each input",
        "responses": {
            400: {"description": "body not UTF-8 or not JSON", "model": ErrorBody},
            408: {"description": "body not received in full within the server's --body-timeout", "model": ErrorBody},
            413: {"description": "text, body or batch over the server's limits", "model": ErrorBody},
            422: {"description": "a field of the wrong type (the message names it)", "model": ErrorBody},
            503: {"description": "the server's queue is full (--max-queue): retry after the Retry-After header's seconds",
                  "model": ErrorBody},
        },
    }


def create_app(batcher: Batcher, *, limits: Limits = Limits(), info: Mapping | None = None):
    """The application: predict routes, ``/health``, ``/info``, ``/metrics`` and ``/docs``.

    Args:
        batcher: the started batcher that tags the texts.
        limits: what one request may hold.
        info: what ``GET /info`` reports (the model's kayan.json and settings).
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import PlainTextResponse, Response

    app = FastAPI(title="Kayan NER", version=__version__, description=DESCRIPTION, redoc_url=None)
    _add_error_handlers(app)
    in_flight = [0]
    metrics = Metrics()
    app.add_middleware(MeasuredRoutes, metrics=metrics)

    async def predict(request: Request):
        parsed = parse_request(parse_body(await read_body(request, limits)), limits)
        pending = submit(batcher, parsed.texts) if parsed.texts else None
        in_flight[0] += 1
        try:
            documents = await pending if pending is not None else []
        finally:
            in_flight[0] -= 1
        return Response(to_json(answer(parsed, documents)), media_type="application/json")  # already the response model's

    app.post("/", summary="Tag text (Hugging Face token-classification shape)", **_documented())(predict)
    app.post("/predict", summary="Tag text (same as POST /)", **_documented())(predict)

    @app.get("/health", summary="200 when the model is loaded and the worker runs, else 503")
    async def health():
        if not batcher.alive:
            return _error(503, "not ready: the inference worker is not running")
        return {"status": "ok", "in_flight": in_flight[0], "queued": batcher.queued}

    @app.get("/info", summary="the model's kayan.json, labels and settings, and the server's counters")
    async def model_info():
        stats = batcher.stats
        return {**(info or {}), "served": {"batches": stats.batches, "requests": stats.requests, "texts": stats.texts}}

    @app.get("/metrics", summary="counters, queue depth and histograms in the Prometheus text format", response_class=PlainTextResponse)
    async def prometheus():
        text = exposition(metrics, batches=batcher.stats.sizes, queued=batcher.queued, limit=batcher.max_queue, in_flight=in_flight[0])
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    return app
