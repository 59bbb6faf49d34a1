"""Beyond one machine: tag a Ray dataset on a cluster, one model load per actor (``pip install kayan[scale]``).

:func:`tag_dataset` maps the dataset's batches through a pool of actors (``map_batches`` with a
callable class); each actor loads the model once, with its own threads, and tags its batches as
``kayan predict`` does, each row its own document. Every output row holds the row's id and
``record``: the JSON line ``kayan predict --out`` writes for that document (``source`` is the id,
``entities`` with character offsets into the row's text, ``model_sha256``, ``kayan_version``).

Ray Data does not keep the rows' order unless its context says so
(``ray.data.DataContext.get_current().execution_options.preserve_order = True``); the id says which
row a record belongs to either way. Writing the result (``write_json``, ``write_parquet``) and
resuming are Ray's: a dataset has no manifest (use ``kayan predict --out`` on one machine for that).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from kayan import __version__
from kayan.errors import KayanError
from kayan.inference.bulk import model_digest
from kayan.inference.predict import load
from kayan.inference.predict_io import Piece, write_predictions


class _Tagger:
    """The actor that tags batches: the model loaded once, in ``__init__``."""

    def __init__(self, model: str, options: Mapping, text_field: str, id_field: str, digest: str):
        self.predictor = load(model, **options)
        self.text_field, self.id_field = text_field, id_field
        self.extra = {"model_sha256": digest, "kayan_version": __version__}

    def __call__(self, batch: Mapping) -> dict:
        ids, texts = list(batch[self.id_field]), list(batch[self.text_field])
        for source, text in zip(ids, texts):
            if not isinstance(text, str):
                raise KayanError(f"row {source}: column {self.text_field!r} holds {type(text).__name__}, not text")
        out = io.StringIO()
        pieces = [Piece(str(source), text, document=n) for n, (source, text) in enumerate(zip(ids, texts))]
        write_predictions(self.predictor, pieces, out, extra=self.extra)
        return {self.id_field: ids, "record": out.getvalue().splitlines()}


def tag_dataset(dataset, model: str, *, text_field: str = "text", id_field: str = "source", actors: int = 2,
                threads: int = 1, batch_size: int = 256, backend: str = "auto", decoding: str | None = None,
                precision: str = "fp32", forward_batch: int = 32):
    """Tag every row of a Ray dataset with a packaged model, on a pool of ``actors`` actors.

    Args:
        dataset: a ``ray.data.Dataset`` with a text column and an id column.
        model: a packaged model folder (or run folder) every node can read at this path.
        text_field: the column holding the text.
        id_field: the column naming each row (kept, and the record's ``source``).
        actors: actors in the pool, each loading the model once.
        threads: CPU threads of each actor's forward passes (and the CPUs Ray reserves for it).
        batch_size: rows per batch handed to an actor.
        backend: ``auto``, ``torch``, ``onnx`` or ``onnx-int8`` (:func:`kayan.load`).
        decoding: override the model's decoding.
        precision: ``fp32``, ``bf16`` or ``auto``.
        forward_batch: windows per forward pass (``kayan.load``'s ``batch_size``).

    Returns:
        A lazy ``ray.data.Dataset`` of ``{id_field, "record"}`` rows.

    Raises:
        KayanError: the model cannot be read (checked here, before any actor starts).
    """
    digest = model_digest(model)
    options = {"backend": backend, "decoding": decoding, "threads": threads, "precision": precision,
               "batch_size": forward_batch}
    return dataset.map_batches(_Tagger, fn_constructor_args=(str(model), options, text_field, id_field, digest),
                               batch_size=batch_size, concurrency=actors, num_cpus=threads, batch_format="numpy")
