"""Entity-level scores for word-level IOB2 tags, equal to seqeval and ``conlleval``.

Two ways of reading entities out of a tag sequence are offered, the two that seqeval has:

* ``"default"`` — seqeval's default mode, which is ``conlleval``'s: ``B-X`` starts an entity, and an
  ``I-X`` that does not continue an ``X`` entity (after ``O``, after another type, or at the start
  of a sentence) starts a new one.
* ``"strict"`` — seqeval's ``mode="strict", scheme=IOB2``: an entity is exactly ``B-X I-X*``; an
  ``I-X`` that does not continue an ``X`` entity belongs to no entity at all.

A prediction is correct when its type, first and last word all equal a gold entity's. Inputs are
``list[list[str]]`` (one list of tags per sentence); entities never cross sentences. Tags other
than ``O``, ``B-TYPE`` and ``I-TYPE`` raise :class:`ValueError` (convert IOB1/BIOES first).

Where seqeval would divide by zero it gives 0, and so does this module, with one difference: a
macro average over no entity types at all is 0.0 here and NaN in seqeval (NaN is not valid JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

MODES = ("default", "strict")
SCHEME = "IOB2"
MODE_NAMES = {
    "default": "seqeval default mode (conlleval-compatible)",
    "strict": "seqeval mode='strict', scheme=IOB2",
}
FIELDS = ("tp", "predicted", "support")  # the last axis of sentence_counts: tp, n_pred, n_gold


@lru_cache(maxsize=4096)
def split_tag(tag: str) -> tuple[str, str]:
    """Split an IOB2 tag into its prefix and entity type.

    Args:
        tag: ``O``, ``B-TYPE`` or ``I-TYPE`` (the type may itself contain ``-``).

    Returns:
        ``("O", "")`` or ``(prefix, type)``.

    Raises:
        ValueError: for any other tag (``E-X``, ``S-X``, ``B_X``, ``B-``, ``PERS`` ...).

    >>> split_tag("B-PERS"), split_tag("I-ORG-GOV"), split_tag("O")
    (('B', 'PERS'), ('I', 'ORG-GOV'), ('O', ''))
    """
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[0] in "BI" and tag[1] == "-":
        return tag[0], tag[2:]
    raise ValueError(f"tag {tag!r} is not IOB2: expected 'O', 'B-TYPE' or 'I-TYPE'")


def entities(tags: Sequence[str], *, mode: str = "default") -> list[tuple[str, int, int]]:
    """Read the entities out of one sentence's tags.

    Args:
        tags: one IOB2 tag per word.
        mode: ``"default"`` (seqeval default = conlleval) or ``"strict"`` (seqeval strict IOB2).

    Returns:
        ``(type, start, end)`` triples, ``end`` exclusive, in order of ``start``.

    Raises:
        ValueError: for an unknown mode or a tag that is not IOB2.

    >>> entities(["B-PERS", "I-PERS", "O", "I-LOC", "B-ORG", "I-LOC"])
    [('PERS', 0, 2), ('LOC', 3, 4), ('ORG', 4, 5), ('LOC', 5, 6)]
    >>> entities(["B-PERS", "I-PERS", "O", "I-LOC", "B-ORG", "I-LOC"], mode="strict")
    [('PERS', 0, 2), ('ORG', 4, 5)]
    """
    _check_mode(mode)
    strict = mode == "strict"
    found = []
    kind, start = None, 0  # the open entity, if any
    for i, tag in enumerate(tags):
        prefix, type_ = split_tag(tag)
        if prefix == "I" and type_ == kind:
            continue
        if kind is not None:
            found.append((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and not strict):
            kind, start = type_, i
    if kind is not None:
        found.append((kind, start, len(tags)))
    return found


def entity_types(*tag_sets: Sequence[Sequence[str]], mode: str = "default") -> list[str]:
    """The sorted entity types that occur as entities in any of the given tag sets.

    Args:
        *tag_sets: lists of sentences of tags (gold, one or more predictions).
        mode: how entities are read (see :func:`entities`).

    Returns:
        The sorted types (an orphan ``I-X`` counts in default mode only).

    >>> entity_types([["B-PERS", "O"]], [["O", "I-LOC"]], mode="strict")
    ['PERS']
    """
    return sorted({kind for tags in tag_sets for sent in tags for kind, _, _ in entities(sent, mode=mode)})


def sentence_counts(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    mode: str = "default",
    types: Sequence[str] | None = None,
) -> np.ndarray:
    """Per-sentence, per-type entity counts, the sufficient statistics of every score here.

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags, aligned with ``gold``.
        mode: how entities are read (see :func:`entities`).
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


def prf(tp: float, predicted: float, support: float) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts, 0 wherever a denominator is 0 (as seqeval).

    Args:
        tp: correct entities.
        predicted: predicted entities.
        support: gold entities.

    Returns:
        ``(precision, recall, f1)``.

    >>> prf(1, 2, 4)
    (0.5, 0.25, 0.3333333333333333)
    """
    precision = tp / predicted if predicted else 0.0
    recall = tp / support if support else 0.0
    total = precision + recall
    return precision, recall, (2 * precision * recall / total if total else 0.0)


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, mode: str = "default") -> dict:
    """Entity precision/recall/F1 per type, micro/macro/weighted averages, and token accuracy.

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags, aligned with ``gold``.
        mode: ``"default"`` (= conlleval) or ``"strict"`` (seqeval strict IOB2).

    Returns:
        ``{"mode", "scheme", "types": {TYPE: row}, "micro": row, "macro": row, "weighted": row,
        "accuracy", "sentences", "words"}`` where a row holds ``precision, recall, f1, support``
        (gold entities) and, for types and micro, ``predicted`` and ``tp``. Macro and weighted
        averages run over the types found in gold or predictions, as seqeval's do.

    Raises:
        ValueError: mismatched lengths, a bad tag or an unknown mode.

    >>> s = score([["B-PERS", "I-PERS", "O", "B-LOC"]], [["B-PERS", "I-PERS", "O", "O"]])
    >>> s["micro"]["f1"], s["types"]["LOC"]["recall"], s["macro"]["f1"], s["accuracy"]
    (0.6666666666666666, 0.0, 0.5, 0.75)
    """
    _check_mode(mode)
    types = entity_types(gold, pred, mode=mode)
    totals = sentence_counts(gold, pred, mode=mode, types=types).sum(axis=0)
    rows = {kind: _row(*totals[j]) for j, kind in enumerate(types)}
    words = sum(len(sent) for sent in gold)
    correct = sum(g == p for gold_tags, pred_tags in zip(gold, pred) for g, p in zip(gold_tags, pred_tags))
    return {
        "mode": mode,
        "scheme": SCHEME,
        "types": rows,
        "micro": _row(*totals.sum(axis=0)),
        "macro": _average(list(rows.values()), weighted=False),
        "weighted": _average(list(rows.values()), weighted=True),
        "accuracy": correct / words if words else 0.0,
        "sentences": len(gold),
        "words": words,
    }


def _row(tp: int, predicted: int, support: int) -> dict:
    tp, predicted, support = int(tp), int(predicted), int(support)
    precision, recall, f1 = prf(tp, predicted, support)
    return {"precision": precision, "recall": recall, "f1": f1,
            "support": support, "predicted": predicted, "tp": tp}


def _average(rows: list[dict], *, weighted: bool) -> dict:
    """seqeval's macro (unweighted) or weighted (by support) mean of per-type rows."""
    support = sum(row["support"] for row in rows)
    if not rows or (weighted and not support):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": support}
    weights = [row["support"] if weighted else 1 for row in rows]
    return {
        key: float(np.average([row[key] for row in rows], weights=weights))
        for key in ("precision", "recall", "f1")
    } | {"support": support}


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {MODES}")


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
