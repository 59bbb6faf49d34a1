"""What ``kayan evaluate`` and ``kayan compare`` do, each one function with the command's arguments.

A system is a model (run folder, checkpoint, package) tagging labelled data, or a file of its
predictions (``token gold predicted`` lines). :func:`evaluate_system` scores one and
:func:`compare_systems` compares two; given ``out``, each writes the folder the command writes
(:mod:`kayan.evaluation.output_folders`), so a Python caller gets exactly what the command gives.
The command line only parses the arguments, calls one of these and prints the result; its ``--threads``
sets the PyTorch threads of its own process (:func:`kayan.model.backends.set_threads`), which a library
function leaves alone.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from kayan.data.labelmap import relabel
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.evaluation.alignment import check_same_gold, label_set_warning
from kayan.evaluation.comparison import check_two_systems, compare
from kayan.evaluation.output_folders import OUT_FIX, write_comparison, write_evaluation
from kayan.evaluation.predictions_file import read_predictions
from kayan.evaluation.scoring import evaluate
from kayan.outputs import COMPARISON, EVALUATION, check_replaceable, ref_paths
from kayan.run import locate

PathLike = str | os.PathLike


def evaluate_system(
    model: PathLike | None = None, *, data: str | None = None, predictions: PathLike | None = None,
    out: PathLike | None = None, html: bool = False, label_map: dict[str, str] | None = None,
    decoding: str | None = None, batch_size: int = 32, backend: str = "torch",
    precision: str = "fp32", bootstrap_samples: int = 1000, seed: int = 12345,
    warn: Callable[[str], object] = warnings.warn,
) -> dict:
    """``kayan evaluate``: score ``model`` on ``data``, or an existing ``predictions`` file; write ``out``.

    Args:
        model: a run folder, checkpoint or package (with ``data``; see :mod:`kayan.model.modelref`).
        data: ``CORPUS:SPLIT`` or a CoNLL file for ``model`` to tag.
        predictions: instead of a model and data, a ``token ... gold predicted`` file (no model, no torch).
        out: write ``predictions.txt``, ``metrics.json`` and ``report.md`` into this folder (a new or
            empty one, or an earlier evaluation folder, which is replaced).
        html: also write ``out/report.html``.
        label_map: rename the gold entity types (``{"PER": "PERS"}``), on either path; for a model the
            default is its own map (:func:`kayan.evaluation.model_scoring.evaluate_model`).
        decoding, batch_size, backend, precision: how the model tags
            (:func:`kayan.evaluation.model_scoring.evaluate_model`).
        bootstrap_samples: resamples of the micro-F1 interval (0: none).
        seed: the bootstrap's seed.
        warn: called with a warning for the user (gold and predicted types that look like two namings
            of one set); :func:`warnings.warn` by default.

    Returns:
        The report (:func:`kayan.evaluation.scoring.evaluate`), as ``metrics.json`` holds it.

    Raises:
        KayanError: a wrong combination of arguments, an ``out`` that may not be written, or bad input.
    """
    if html and not out:
        raise KayanError("--html writes OUT/report.html beside the other outputs; give --out DIR too")
    inputs = _inputs(model, data, predictions)
    if out:  # before any model loads; an evaluation folder already there is replaced
        check_replaceable(out, EVALUATION, inputs=inputs, overwrite=True, fix=OUT_FIX)
    if predictions:
        if model or data:
            raise KayanError("give either --predictions FILE or MODEL --data CORPUS:SPLIT, not both")
        gold, predicted = read_predictions(predictions)
        gold = relabel(gold, label_map)
        warning = label_set_warning(gold, predicted, source=str(predictions))
        if warning:
            warn(warning)
        report = evaluate(gold, predicted, bootstrap_samples=bootstrap_samples, seed=seed, source=str(predictions))
    else:
        if not model or not data:
            raise KayanError("kayan evaluate needs MODEL and --data CORPUS:SPLIT|FILE (or --predictions FILE)")
        from kayan.evaluation.model_scoring import evaluate_model  # torch

        report, gold, predicted = evaluate_model(
            model, data, label_map=label_map, decoding=decoding, batch_size=batch_size,
            bootstrap_samples=bootstrap_samples, seed=seed, backend=backend, precision=precision)
    if out:
        write_evaluation(report, gold, predicted, out, html=html, inputs=inputs)
    return report


def compare_systems(
    a: PathLike, b: PathLike, *, data: str | None = None, out: PathLike | None = None, samples: int = 1000,
    seed: int = 12345, label_map: dict[str, str] | None = None, decoding: str | None = None, batch_size: int = 32,
    backend: str = "torch", precision: str = "fp32",
) -> dict:
    """``kayan compare A B``: two systems on the same sentences, with significance tests; write ``out``.

    Args:
        a: system A: a model (tagged on ``data``) or its predictions file (``token gold predicted``).
        b: system B, likewise.
        data: ``CORPUS:SPLIT`` or a CoNLL file to tag the models on (not needed for two predictions files).
        out: write ``compare.json``, ``compare.md`` and ``compare.png`` into this folder (a new or empty
            one, or an earlier comparison folder, which is replaced).
        samples: resamples of the significance tests and the type intervals.
        seed: their seed.
        label_map, decoding, batch_size, backend, precision: how a model tags
            (:func:`kayan.evaluation.model_scoring.evaluate_model`).

    Returns:
        :func:`kayan.evaluation.comparison.compare`'s result, named by ``a`` and ``b``, as ``compare.json`` holds it.

    Raises:
        KayanError: the same system twice, a model without ``data``, systems that tagged different
            sentences or gold, an ``out`` that may not be written, or bad input.
    """
    check_two_systems(a, b)
    inputs = _inputs(a, b, data)
    if out:  # before any model loads; a comparison folder already there is replaced
        check_replaceable(out, COMPARISON, inputs=inputs, overwrite=True, fix=OUT_FIX)
    model = {"label_map": label_map, "decoding": decoding, "batch_size": batch_size, "backend": backend,
             "precision": precision}
    (gold, pred_a), (gold_b, pred_b) = (_system_tags(system, data, model) for system in (a, b))
    check_same_gold(gold, gold_b, str(a), str(b))
    result = compare(gold, pred_a, pred_b, samples=samples, seed=seed, names=(str(a), str(b)))
    if out:
        write_comparison(result, out, inputs=inputs)
    return result


def _system_tags(system: PathLike, data: str | None, model: dict) -> tuple[list[Sentence], list[list[str]]]:
    """One side of a comparison: a predictions file read as it is, or a model tagged on ``data``."""
    if Path(system).is_file():  # token gold predicted lines, e.g. a run's test_predictions.txt
        return read_predictions(system)
    if data is None:
        raise KayanError(f"{system} is a model, not a predictions file: give --data CORPUS:SPLIT to tag it on")
    from kayan.evaluation.model_scoring import evaluate_model  # torch

    _, gold, predicted = evaluate_model(system, data, bootstrap_samples=0, **model)
    return gold, predicted


def _inputs(*refs: PathLike | None) -> list[Path]:
    """What a command reads: its models (and the model folders a run folder means), data and predictions files."""
    paths = ref_paths(refs)
    return paths + [locate(path)[0] for path in paths if path.is_dir()]
