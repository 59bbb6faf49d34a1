"""Serving a model over HTTP: ``kayan serve MODEL``, with dynamic batching of concurrent requests.

API:
    :func:`serve` (``kayan serve``): load a model and serve it until SIGTERM.
    :func:`prepare`: the loaded model's FastAPI app and its :class:`~kayan.serve.batcher.Batcher`,
        to run under another ASGI server or inside a test.
    :class:`Limits`: what one request may hold.

Modules: :mod:`kayan.serve.protocol` (the Hugging Face request/response shape as pydantic models, pure),
:mod:`kayan.serve.batcher` (gathering requests into batches on a worker thread),
:mod:`kayan.serve.app` (the FastAPI routes), :mod:`kayan.serve.server` (start-up and shutdown).
FastAPI and uvicorn come with the ``serve`` extra (``pip install 'kayan[serve]'``) and are
imported only when a server is built. The names below are imported from their modules on first use
(:mod:`kayan.lazy`).
"""

from kayan.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "protocol": ["Limits"],
    "server": ["prepare", "serve"],
})
