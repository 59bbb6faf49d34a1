"""Entity-level scores for word-level IOB2 tags: seqeval's, and the counts seqeval does not give.

seqeval is the scorer of record: the precision, recall, F1 and support that :func:`score` reports
(per type, micro, macro and weighted averages, token accuracy) are ``seqeval.metrics``' own, in
either of seqeval's two ways of reading entities (:data:`MODES`): ``"default"`` (= conlleval) or
``"strict"`` (``mode="strict", scheme=IOB2``), described at :func:`kayan.data.schemes.entities`.

What seqeval lacks is added here: the per-sentence, per-type counts (:func:`sentence_counts`)
that the bootstrap and the significance tests resample, read with :func:`kayan.data.schemes.entities`
(proven equal to seqeval's extraction). A prediction is correct when its type, first and last word
all equal a gold entity's. Inputs are ``list[list[str]]`` (one list of tags per sentence); entities
never cross sentences. Tags other than ``O``, ``B-TYPE`` and ``I-TYPE`` raise :class:`ValueError`
(convert IOB1/BIOES first; :func:`kayan.data.schemes.split_tag` is the grammar).

Where seqeval would divide by zero it gives 0 (``zero_division=0``), with one difference: a macro
average over no entity types at all is 0.0 here and NaN in seqeval (NaN is not valid JSON).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from seqeval.metrics import accuracy_score, classification_report
from seqeval.scheme import IOB2

from kayan.data.schemes import MODES, check_mode, entities, entity_counts

SCHEME = "IOB2"
MODE_NAMES = {
    "default": "seqeval default mode (conlleval-compatible)",
    "strict": "seqeval mode='strict', scheme=IOB2",
}
FIELDS = ("tp", "predicted", "support")  # the last axis of sentence_counts: tp, n_pred, n_gold


def entity_types(*tag_sets: Sequence[Sequence[str]], mode: str = "default") -> list[str]:
    """The sorted entity types that occur as entities in any of the given tag sets.

    Args:
        *tag_sets: lists of sentences of tags (gold, one or more predictions).
        mode: how entities are read (see :func:`kayan.data.schemes.entities`).

    Returns:
        The sorted types (an orphan ``I-X`` counts in default mode only).

    >>> entity_types([["B-PERS", "O"]], [["O", "I-LOC"]], mode="strict")
    ['PERS']
    """
    return sorted(entity_counts((sent for tags in tag_sets for sent in tags), mode=mode))


def sentence_counts(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    mode: str = "default",
    types: Sequence[str] | None = None,
) -> np.ndarray:
    """Per-sentence, per-type entity counts: what the bootstrap and significance tests resample.

    Summed over sentences they are the counts behind seqeval's scores (``tests/test_metrics.py``
    checks that on random sequences).

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags, aligned with ``gold``.
        mode: how entities are read (see :func:`kayan.data.schemes.entities`).
        types: the entity types, in the order of axis 1; default: :func:`entity_types` of both.
            Pass the same list when counts of two systems are to be compared.

    Returns:
        An int64 array of shape ``(n_sentences, n_types, 3)`` holding
        ``[tp, n_pred, n_gold]`` (see ``FIELDS``); summing rows gives corpus counts.

    Raises:
        ValueError: mismatched lengths, a bad tag, or an entity type missing from ``types``.

    >>> sentence_counts([["B-LOC", "O"], ["B-PERS"]], [["B-LOC", "B-LOC"], ["O"]]).tolist()
    [[[1, 2, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 1]]]
    """
    check_lengths(gold, pred)
    if types is None:
        types = entity_types(gold, pred, mode=mode)
    column = {kind: j for j, kind in enumerate(types)}
    counts = np.zeros((len(gold), len(types), 3), dtype=np.int64)
    for i, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        gold_set = set(entities(gold_tags, mode=mode))
        pred_set = set(entities(pred_tags, mode=mode))
        for field, found in ((0, gold_set & pred_set), (1, pred_set), (2, gold_set)):
            for kind, _, _ in found:
                if kind not in column:
                    raise ValueError(f"entity type {kind!r} (sentence {i + 1}) is not in types {list(types)}")
                counts[i, column[kind], field] += 1
    return counts


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, mode: str = "default") -> dict:
    """Entity precision/recall/F1 per type, micro/macro/weighted averages, and token accuracy: seqeval's.

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags, aligned with ``gold``.
        mode: ``"default"`` (= conlleval) or ``"strict"`` (seqeval strict IOB2).

    Returns:
        ``{"mode", "scheme", "types": {TYPE: row}, "micro": row, "macro": row, "weighted": row,
        "accuracy", "sentences", "words"}`` where a row holds ``precision, recall, f1, support``
        (gold entities) from seqeval's ``classification_report``, and, for types and micro,
        ``predicted`` and ``tp`` (from :func:`sentence_counts`). Macro and weighted averages run
        over the types found in gold or predictions, as seqeval's do.

    Raises:
        ValueError: mismatched lengths, a bad tag or an unknown mode.

    >>> s = score([["B-PERS", "I-PERS", "O", "B-LOC"]], [["B-PERS", "I-PERS", "O", "O"]])
    >>> s["micro"]["f1"], s["types"]["LOC"]["recall"], s["macro"]["f1"], s["accuracy"]
    (0.6666666666666666, 0.0, 0.5, 0.75)
    """
    check_mode(mode)
    gold, pred = [list(tags) for tags in gold], [list(tags) for tags in pred]  # seqeval takes lists
    types = entity_types(gold, pred, mode=mode)  # checks every tag
    totals = sentence_counts(gold, pred, mode=mode, types=types).sum(axis=0)
    report = _seqeval_report(gold, pred, mode)
    rows = {kind: _row(report[kind], totals[j]) for j, kind in enumerate(types)}
    words = sum(len(tags) for tags in gold)
    return {
        "mode": mode,
        "scheme": SCHEME,
        "types": rows,
        "micro": _row(report["micro avg"], totals.sum(axis=0)),
        "macro": _row(report["macro avg"]) if types else {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        "weighted": _row(report["weighted avg"]),
        "accuracy": float(accuracy_score(gold, pred)) if words else 0.0,
        "sentences": len(gold),
        "words": words,
    }


def _seqeval_report(gold: list[list[str]], pred: list[list[str]], mode: str) -> dict:
    """seqeval's ``classification_report`` as a dict, 0 where it would divide by zero."""
    with warnings.catch_warnings():
        # the macro average over no types at all is the mean of nothing (NaN); score() reports 0
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        if mode == "strict":
            return classification_report(gold, pred, output_dict=True, mode="strict", scheme=IOB2, zero_division=0)
        return classification_report(gold, pred, output_dict=True, zero_division=0)


def _row(seqeval_row: dict, counts: np.ndarray | None = None) -> dict:
    """A seqeval report row in Kayan's keys, with ``predicted`` and ``tp`` where counts are given."""
    row = {"precision": float(seqeval_row["precision"]), "recall": float(seqeval_row["recall"]),
           "f1": float(seqeval_row["f1-score"]), "support": int(seqeval_row["support"])}
    if counts is not None:
        row |= {"predicted": int(counts[1]), "tp": int(counts[0])}
    return row


def check_lengths(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    """Raise :class:`ValueError` unless ``gold`` and ``pred`` have the same shape.

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags.

    >>> check_lengths([["O"]], [["O", "O"]])
    Traceback (most recent call last):
    ...
    ValueError: sentence 1: 1 gold tags but 2 predicted
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sentence {i + 1}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted")
