"""Corpus statistics: what ``kayan data stats`` prints.

Entities are counted two ways, from the tags as the file has them: as conlleval reads them
(an ``I-X`` that opens an entity counts; seqeval's default mode) and in strict IOB2 (only
``B-X I-X*`` chunks; seqeval's ``mode="strict", scheme=IOB2``). The two differ exactly where a
file has stray ``I-`` openers, which Kayan repairs to ``B-`` on read (the repairs are listed).
"""

from __future__ import annotations

from collections import Counter
from statistics import mean, median
from typing import Sequence

from kayan.data.dataset import CorpusSplit
from kayan.data.schemes import entity_counts

LENGTH_BUCKETS = (10, 25, 50, 100, 200, 512)


def _sorted(counts: Counter) -> dict[str, int]:
    return dict(sorted(counts.items()))


def _percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile of already sorted values."""
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def length_distribution(lengths: Sequence[int]) -> dict:
    """Summary and histogram of sentence lengths in words.

    >>> length_distribution([2, 5, 30])["histogram"]
    {'1-10': 2, '11-25': 0, '26-50': 1, '51-100': 0, '101-200': 0, '201-512': 0, '>512': 0}
    """
    ordered = sorted(lengths)
    histogram, low = {}, 1
    for high in LENGTH_BUCKETS:
        histogram[f"{low}-{high}"] = sum(low <= n <= high for n in ordered)
        low = high + 1
    histogram[f">{LENGTH_BUCKETS[-1]}"] = sum(n > LENGTH_BUCKETS[-1] for n in ordered)
    return {
        "min": ordered[0], "max": ordered[-1], "mean": round(mean(ordered), 1), "median": median(ordered),
        "p95": _percentile(ordered, 0.95), "p99": _percentile(ordered, 0.99), "histogram": histogram,
    }


def corpus_stats(dataset: CorpusSplit) -> dict:
    """Counts for one loaded split, JSON-ready."""
    iob = dataset.scheme not in ("BIOES", "BILOU")  # their entities are exact: count them once converted to IOB2
    conlleval = _sorted(entity_counts(dataset.raw_tags if iob else [s.tags for s in dataset.sentences]))
    strict = _sorted(entity_counts(dataset.raw_tags, mode="strict")) if iob else None
    tags = Counter(tag for sentence in dataset.sentences for tag in sentence.tags)
    return {
        "name": dataset.name,
        "files": dataset.files,
        "scheme": dataset.scheme,
        "note": dataset.note,
        "sentences": len(dataset.sentences),
        "tokens": sum(len(s) for s in dataset.sentences),
        "entities": {"conlleval": conlleval, "conlleval_total": sum(conlleval.values()),
                     "strict_iob2": strict, "strict_iob2_total": sum(strict.values()) if strict is not None else None},
        "tags": dict(sorted(tags.items())),
        "sentence_length": length_distribution([len(s) for s in dataset.sentences]),
        "handled": dataset.report.notes(),
    }


def format_stats(stats: dict) -> str:
    """Human-readable text for :func:`corpus_stats`' result."""
    ents = stats["entities"]
    lines = [f"{stats['name']}  ({stats['scheme']}, read as IOB2)"]
    if stats["note"]:
        lines.append(f"  {stats['note']}")
    lines += [f"  sentences  {stats['sentences']:>9,}", f"  tokens     {stats['tokens']:>9,}"]
    lines.append(f"  entities   {ents['conlleval_total']:>9,}  (conlleval / seqeval default)")
    if ents["strict_iob2"] is not None:
        lines.append(f"             {ents['strict_iob2_total']:>9,}  (strict IOB2)")
    lines.append(f"  {'type':<22}{'conlleval':>10}{'strict':>10}")
    for kind, count in ents["conlleval"].items():
        strict = f"{ents['strict_iob2'].get(kind, 0):,}" if ents["strict_iob2"] is not None else "-"
        lines.append(f"  {kind:<22}{count:>10,}{strict:>10}")
    length = stats["sentence_length"]
    lines.append(f"  sentence length: min {length['min']}, median {length['median']}, mean {length['mean']}, "
                 f"p95 {length['p95']}, p99 {length['p99']}, max {length['max']}")
    lines.append("  histogram: " + ", ".join(f"{k}: {v}" for k, v in length["histogram"].items()))
    lines += [f"  handled: {note}" for note in stats["handled"]] or ["  handled: nothing to repair"]
    return "\n".join(lines)
