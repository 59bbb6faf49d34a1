"""Two systems compared on the same gold sentences: both scores, the micro-F1 difference, its two
significance tests and each system's per-type bootstrap intervals (what ``compare.json`` holds).

A system is a model tagging data, or a file of its predictions: reading or tagging them is
:mod:`kayan.evaluation.systems`'s; here are only tags.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kayan.checks import check_number
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.evaluation import metrics, significance
from kayan.evaluation.scoring import gold_tags


def compare(
    gold: Sequence[Sentence],
    pred_a: Sequence[Sequence[str]],
    pred_b: Sequence[Sequence[str]],
    *,
    samples: int = 1000,
    seed: int = 12345,
    names: tuple[str, str] = ("A", "B"),
) -> dict:
    """Compare two systems on the same gold sentences (default mode, micro F1).

    Args:
        gold: the gold sentences.
        pred_a: the tags of system A.
        pred_b: the tags of system B.
        samples: resamples / shuffles of each significance test, and resamples of the type intervals.
        seed: seed of the tests and the intervals.
        names: display names of A and B.

    Returns:
        ``names``, ``scores`` (name → :func:`kayan.evaluation.metrics.score`), ``delta`` (F1 A − F1 B),
        ``paired_bootstrap`` and ``approximate_randomization`` (see :mod:`kayan.evaluation.significance`),
        and ``type_intervals`` (name → :func:`kayan.evaluation.significance.type_intervals`).

    >>> g = [Sentence(("في", "عمان"), ("O", "B-LOC"))]
    >>> compare(g, [["O", "B-LOC"]], [["O", "O"]], samples=20)["delta"]
    1.0
    """
    if len(set(names)) != 2:
        raise ValueError(f"names must be two different names, not {names}")
    check_number("samples", samples, 1, whole=True)
    tags = gold_tags(gold)
    types = metrics.entity_types(tags, pred_a, pred_b)
    counts_a = metrics.sentence_counts(tags, pred_a, types=types)
    counts_b = metrics.sentence_counts(tags, pred_b, types=types)
    tests = {"samples": samples, "seed": seed}
    return {
        "names": list(names), "mode": "default", "scheme": metrics.SCHEME, "sentences": len(gold),
        "scores": {names[0]: metrics.score(tags, pred_a), names[1]: metrics.score(tags, pred_b)},
        "delta": significance.micro_f1(counts_a.sum(axis=(0, 1))) - significance.micro_f1(counts_b.sum(axis=(0, 1))),
        "paired_bootstrap": significance.paired_bootstrap(counts_a, counts_b, **tests),
        "approximate_randomization": significance.approximate_randomization(counts_a, counts_b, **tests),
        "type_intervals": {name: significance.type_intervals(tags, pred, **tests)
                           for name, pred in zip(names, (pred_a, pred_b))},
    }


def check_two_systems(a: str | os.PathLike, b: str | os.PathLike) -> None:
    """Refuse a comparison of a system with itself (the same file, or the same model by another path).

    Checked on the paths, before anything is read or tagged: a run folder and its ``model/`` are one model.

    >>> check_two_systems("x.txt", "./x.txt")
    Traceback (most recent call last):
    kayan.errors.KayanError: x.txt and ./x.txt are the same system; compare two different predictions files or models
    """
    def identity(path: str | os.PathLike) -> Path:
        resolved = Path(path).expanduser().resolve()
        return resolved / "model" if (resolved / "model" / "config.json").is_file() else resolved

    if identity(a) == identity(b):
        raise KayanError(f"{a} and {b} are the same system; compare two different predictions files or models")
