"""A model's tags on a labelled split, scored: what ``kayan evaluate MODEL --data`` and ``kayan compare`` run.

The model is opened the one way every command opens one (:func:`kayan.model.modelref.open_model`),
tags the split through the shared inference path, and the tags are scored by
:func:`kayan.evaluation.scoring.evaluate`. Scoring a predictions file needs none of this (and no torch).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from kayan.data import corpora
from kayan.data.labelmap import relabel
from kayan.data.schemes import label_types
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.checks import check_number
from kayan.evaluation.scoring import evaluate
from kayan.model.location import model_folder
from kayan.model.modelref import check_batch_size, open_model


def check_labels(model_labels: Sequence[str], gold: Sequence[Sentence], *, model: str, data: str) -> None:
    """Fail when the data has entity types the model cannot predict, listing both sets.

    Args:
        model_labels: the model's tags (``config.id2label`` values).
        gold: the gold sentences (after any type mapping).
        model: the model's path, for the message.
        data: the data's name, for the message.
    """
    model_types = set(label_types(model_labels))
    data_types = set(label_types(tag for s in gold for tag in s.tags))
    if not data_types <= model_types:
        raise KayanError(
            f"{data} has entity types {sorted(data_types)} but model {model} predicts {sorted(model_types)}; "
            "map the data's types with --label-map DATA=MODEL (e.g. --label-map PER=PERS) or use a matching model"
        )


def evaluate_model(
    model_path: str | os.PathLike,
    data_ref: str,
    *,
    label_map: dict[str, str] | None = None,
    decoding: str | None = None,
    batch_size: int = 32,
    bootstrap_samples: int = 1000,
    seed: int = 12345,
    data_dir: str | None = None,
    backend: str = "torch",
    precision: str = "fp32",
) -> tuple[dict, list[Sentence], list[list[str]]]:
    """Tag a split with a model and score every word of it.

    Args:
        model_path: a run folder, checkpoint, model folder or ensemble package (see :mod:`kayan.model.modelref`).
        data_ref: ``CORPUS:SPLIT`` or a CoNLL file path.
        label_map: rename the data's entity types to the model's (default: the model's own, as in
            training: its run's ``data.label_map``, or a package's kayan.json ``label_map``).
        decoding: override the model's decoding method.
        batch_size: windows per forward pass.
        bootstrap_samples: bootstrap samples for the F1 interval (0: none).
        seed: the bootstrap's seed.
        data_dir: the corpora folder (default: ``$KAYAN_DATA_DIR``).
        backend: ``torch`` (the default), ``onnx``, ``onnx-int8`` or ``auto``, as :func:`kayan.load`:
            what an exported model scores on each.
        precision: PyTorch's arithmetic: ``fp32`` (the default), ``bf16`` or ``auto``
            (:class:`~kayan.model.backends.TorchBackend`).

    Returns:
        The report, the gold sentences and the predicted tags.
    """
    check_number("bootstrap_samples", bootstrap_samples, 0, whole=True)
    check_batch_size(batch_size)
    folder = model_folder(model_path)  # a wrong path fails before the data loads
    dataset = corpora.load_split(data_ref, root=data_dir)
    model = open_model(folder, backend=backend, decoding=decoding, batch_size=batch_size, precision=precision)
    mapping = label_map if label_map is not None else model.label_map
    gold = relabel(dataset.sentences, mapping)
    check_labels(model.labels, gold, model=str(model_path), data=data_ref)
    predicted, _ = model.tag([s.words for s in gold], documents=[s.source for s in gold])  # neighbours: same file
    report = evaluate(gold, predicted, bootstrap_samples=bootstrap_samples, seed=seed, source=data_ref)
    report["model"] = {"path": str(model_path), "folder": str(folder), "backend": model.backend_name, **model.settings()}
    report["data"] = {"ref": data_ref, "files": dataset.files, "notes": dataset.report.notes()}
    return report, gold, predicted
