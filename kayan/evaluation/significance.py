"""Confidence intervals and significance tests for micro F1, resampling sentences.

Every function but :func:`type_intervals` (which counts the tags it is given) takes the per-sentence
counts of :func:`kayan.evaluation.metrics.sentence_counts` (shape ``(n_sentences, n_types, 3)``: tp,
predicted, gold). Micro F1 of any set of sentences is ``2 * tp / (predicted + gold)`` of their summed
counts (0 when that is 0), so a resample is a weighted sum of rows: everything is vectorised with numpy
and deterministic for a seed.

p-values use the add-one estimate ``(r + 1) / (samples + 1)`` (Noreen 1989), where ``r`` counts
resamples at least as extreme as the observed difference: it is never 0, and it is exactly 1 for
two identical systems.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kayan.evaluation.metrics import entity_types, sentence_counts

_CELLS = 1_000_000  # sentence draws made at once: bounds memory to a few tens of MB


def micro_f1(totals: np.ndarray) -> np.ndarray | float:
    """Micro F1 from ``[..., 3]`` summed counts (tp, predicted, gold); 0 where nothing is counted.

    Args:
        totals: counts summed over sentences and types, last axis ``(tp, predicted, gold)``.

    Returns:
        F1 with the shape of ``totals[..., 0]`` (a float for one row).

    >>> micro_f1(np.array([1, 2, 4]))
    0.3333333333333333
    """
    totals = np.asarray(totals, dtype=np.float64)
    denominator = totals[..., 1] + totals[..., 2]
    f1 = np.divide(2 * totals[..., 0], denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(f1) if f1.ndim == 0 else f1


def bootstrap_f1(
    counts: np.ndarray, *, samples: int = 1000, seed: int = 12345, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of micro F1, resampling sentences with replacement.

    Args:
        counts: ``sentence_counts`` of one system, shape ``(n_sentences, n_types, 3)``.
        samples: number of bootstrap resamples.
        seed: seed of the random generator (same seed, same interval).
        confidence: the interval's coverage, e.g. 0.95 for a 95% interval.

    Returns:
        ``(low, high)``, the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles.

    >>> counts = np.array([[[1, 1, 1]], [[0, 1, 1]], [[2, 2, 3]], [[1, 2, 1]]])
    >>> low, high = bootstrap_f1(counts, samples=200, seed=1)
    >>> 0.0 <= low <= micro_f1(counts.sum(axis=(0, 1))) <= high <= 1.0
    True
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    per_sentence = _per_sentence(counts)
    rng = np.random.default_rng(seed)
    f1 = micro_f1(_resampled_sums(per_sentence, samples, rng))
    low, high = np.quantile(f1, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def type_intervals(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, samples: int = 1000,
                   seed: int = 12345) -> dict[str, list[float]]:
    """95% bootstrap intervals of each type's F1 and the micro F1 (sentences resampled, seeded).

    >>> type_intervals([["B-LOC"], ["B-LOC", "O"]], [["B-LOC"], ["B-LOC", "O"]], samples=20)["LOC"]
    [1.0, 1.0]
    """
    kinds = entity_types(gold, pred)
    per_type = sentence_counts(gold, pred, types=kinds)  # sentences x types x (tp, predicted, gold)
    counts = np.concatenate([per_type, per_type.sum(axis=1, keepdims=True)], axis=1)  # and the micro column
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(gold), size=(samples, len(gold)))
    low, high = np.percentile(micro_f1(counts[picks].sum(axis=1)), [2.5, 97.5], axis=0)
    columns = kinds + ["micro"]
    return {kind: [round(float(a), 6), round(float(b), 6)] for kind, a, b in zip(columns, low, high)}


def paired_bootstrap(counts_a: np.ndarray, counts_b: np.ndarray, *, samples: int = 1000, seed: int = 12345) -> dict:
    """Paired bootstrap test of the micro-F1 difference between two systems on the same sentences.

    Both systems are scored on the same resampled sentences. Under the null hypothesis the
    resampled differences are centred on 0, so the test counts resamples whose difference strays
    from the observed one by at least the observed amount (Berg-Kirkpatrick et al., 2012, whose
    one-sided test counts ``delta* >= 2 * delta``):

    * ``p_value`` (two-sided): ``|delta* - delta| >= |delta|``;
    * ``p_value_one_sided``: ``sign(delta) * (delta* - 2 * delta) >= 0``, the paper's test in the
      direction of the observed difference.

    Args:
        counts_a: ``sentence_counts`` of system A (same types, same sentences as B).
        counts_b: ``sentence_counts`` of system B.
        samples: number of bootstrap resamples.
        seed: seed of the random generator.

    Returns:
        ``{"f1_a", "f1_b", "delta" (= f1_a - f1_b), "p_value", "p_value_one_sided", "samples", "seed"}``.

    >>> a = np.array([[[1, 1, 1]], [[1, 1, 1]], [[0, 1, 1]]])
    >>> paired_bootstrap(a, a, samples=50)["p_value"]
    1.0
    """
    per_a, per_b = _paired(counts_a, counts_b)
    f1_a, f1_b = micro_f1(per_a.sum(axis=0)), micro_f1(per_b.sum(axis=0))
    delta = f1_a - f1_b
    rng = np.random.default_rng(seed)
    both = _resampled_sums(np.concatenate([per_a, per_b], axis=1), samples, rng)
    deltas = micro_f1(both[:, :3]) - micro_f1(both[:, 3:])
    two_sided = np.abs(deltas - delta) >= abs(delta) - 1e-12
    one_sided = np.sign(delta) * (deltas - 2 * delta) >= -1e-12
    return {
        "f1_a": f1_a, "f1_b": f1_b, "delta": float(delta),
        "p_value": _p(two_sided), "p_value_one_sided": _p(one_sided), "samples": samples, "seed": seed,
    }


def approximate_randomization(
    counts_a: np.ndarray, counts_b: np.ndarray, *, samples: int = 1000, seed: int = 12345
) -> dict:
    """Approximate randomization test: swap each sentence's counts between the systems with p = 0.5.

    Two-sided: a shuffle is as extreme as the data when ``|delta*| >= |delta|``.

    Args:
        counts_a: ``sentence_counts`` of system A (same types, same sentences as B).
        counts_b: ``sentence_counts`` of system B.
        samples: number of random shuffles.
        seed: seed of the random generator.

    Returns:
        ``{"delta", "p_value", "samples", "seed"}``.

    >>> a = np.array([[[1, 1, 1]], [[1, 1, 1]], [[0, 1, 1]]])
    >>> approximate_randomization(a, a, samples=50)["p_value"]
    1.0
    """
    per_a, per_b = _paired(counts_a, counts_b)
    total_a, total_b = per_a.sum(axis=0), per_b.sum(axis=0)
    delta = micro_f1(total_a) - micro_f1(total_b)
    rng = np.random.default_rng(seed)
    change = (per_b - per_a).astype(np.float64)
    extreme = 0
    for size in _chunks(samples, len(per_a)):
        moved = rng.integers(0, 2, size=(size, len(per_a))).astype(np.float64) @ change
        deltas = micro_f1(total_a + moved) - micro_f1(total_b - moved)
        extreme += int(np.sum(np.abs(deltas) >= abs(delta) - 1e-12))
    return {"delta": float(delta), "p_value": (extreme + 1) / (samples + 1), "samples": samples, "seed": seed}


def _per_sentence(counts: np.ndarray) -> np.ndarray:
    """Sum a ``(n, types, 3)`` array over types into ``(n, 3)``."""
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[2] != 3:
        raise ValueError(f"counts must have shape (sentences, types, 3), not {counts.shape}")
    if len(counts) == 0:
        raise ValueError("counts hold no sentences: there is nothing to resample")
    return counts.sum(axis=1)


def _paired(counts_a: np.ndarray, counts_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    per_a, per_b = _per_sentence(counts_a), _per_sentence(counts_b)
    if len(per_a) != len(per_b):
        raise ValueError(f"systems scored on different sentences: {len(per_a)} vs {len(per_b)}")
    return per_a, per_b


def _chunks(samples: int, n: int) -> list[int]:
    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    step = max(1, _CELLS // max(n, 1))
    return [min(step, samples - start) for start in range(0, samples, step)]


def _resampled_sums(per_sentence: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sum ``samples`` resamples (with replacement) of the rows of ``per_sentence``."""
    n = len(per_sentence)
    parts = [per_sentence[rng.integers(0, n, size=(size, n))].sum(axis=1) for size in _chunks(samples, n)]
    return np.concatenate(parts)


def _p(extreme: np.ndarray) -> float:
    return (int(np.sum(extreme)) + 1) / (len(extreme) + 1)
