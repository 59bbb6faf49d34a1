"""Partial labels: a corpus that never tags a type does not teach its words to be "not that type".

WikiANN tags PER, LOC and ORG; trained beside ANERcorp, its ``O`` words would teach that nothing is MISC.
Their ``O`` becomes a set of allowed labels instead, ``O``, ``B-MISC`` and ``I-MISC``, and the loss is the
negative log of the probability the model gives that set (:func:`partial_cross_entropy`), which is the usual
cross-entropy where the set holds one label. The windows carry one extra label id per such set after the
real labels (:func:`label_sets`); the model's own labels, and kayan.json, stay as they were.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from kayan.data.schemes import OUTSIDE, split_tag
from kayan.model.features import IGNORE


def label_sets(labels: Sequence[str], missing: Sequence[tuple[str, ...]]) -> tuple[dict[tuple[str, ...], int], torch.Tensor]:
    """An id for each set of missing types (after the real labels' ids), and which labels each id allows.

    >>> ids, allowed = label_sets(["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC"], [("MISC",)])
    >>> ids, allowed.int().tolist()[-1]
    ({('MISC',): 5}, [1, 0, 0, 1, 1])
    """
    sets = sorted(set(missing))
    allowed = torch.zeros(len(labels) + len(sets), len(labels), dtype=torch.bool)
    allowed[torch.arange(len(labels)), torch.arange(len(labels))] = True
    ids = {}
    for offset, kinds in enumerate(sets):
        ids[kinds] = row = len(labels) + offset
        allowed[row] = torch.tensor([tag == OUTSIDE or split_tag(tag)[1] in kinds for tag in labels])
    return ids, allowed


def set_labels(rows: Sequence[Sequence[int]], sentences: Sequence[int], missing: Sequence[tuple[str, ...] | None],
               ids: Mapping[tuple[str, ...], int], outside: int = 0) -> list[list[int]]:
    """Windows' label ids with ``O`` replaced by the id of the types its sentence's corpus misses.

    Args:
        rows: each window's label ids; sentences: each window's sentence index;
        missing: per sentence, the types its corpus never tags (None: none); ids: from :func:`label_sets`.

    >>> set_labels([[IGNORE, 0, 3, 0], [0, 1]], [0, 1], [("MISC",), None], {("MISC",): 5})
    [[-100, 5, 3, 5], [0, 1]]
    """
    return [[ids[missing[i]] if label == outside else label for label in row] if missing[i] else list(row)
            for row, i in zip(rows, sentences)]


def partial_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """The mean over labelled positions of ``-log P(label set)``: ``logsumexp(all) - logsumexp(allowed)``.

    Args:
        logits: ``(..., labels)``.
        labels: ``(...)``: an id of ``allowed``'s rows, or :data:`IGNORE`.
        allowed: ``(ids, labels)`` booleans from :func:`label_sets`.

    >>> logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0]])
    >>> allowed = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=torch.bool)
    >>> ce = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]))
    >>> bool(torch.isclose(partial_cross_entropy(logits, torch.tensor([0, 2]), allowed), ce))
    True
    >>> round(float(partial_cross_entropy(logits[:1], torch.tensor([3]), allowed)), 4)  # O or the third: -log(p0 + p2)
    0.0943
    """
    logits = logits.float()
    at = labels != IGNORE
    if not at.any():
        return logits.sum() * 0.0  # keeps the graph
    chosen, kept = logits[at], allowed.to(logits.device)[labels[at]]
    everything = torch.logsumexp(chosen, dim=-1)
    inside = torch.logsumexp(chosen.masked_fill(~kept, float("-inf")), dim=-1)
    return (everything - inside).mean()
