"""Predicted tags scored against gold sentences: the evaluation report, ready for JSON (``metrics.json``).

Scores are seqeval's, in both modes (see :mod:`kayan.evaluation.metrics`); error analysis and the bootstrap
interval (:mod:`kayan.evaluation.significance`) are computed in the default (conlleval) mode. No model and
no files here: the tags come from a model (:mod:`kayan.evaluation.model_scoring`) or a predictions file
(:mod:`kayan.evaluation.predictions_file`), and the report is rendered by :mod:`kayan.evaluation.markdown`
and written by :mod:`kayan.evaluation.output_folders`.
"""

from __future__ import annotations

from collections.abc import Sequence

from kayan.checks import check_number
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.evaluation import error_analysis, metrics, significance
from kayan.evaluation.alignment import location

CONFIDENCE = 0.95


def gold_tags(gold: Sequence[Sentence], *, source: str = "") -> list[list[str]]:
    """The gold tags of labelled sentences, refusing an empty or unlabelled set.

    Args:
        gold: the gold sentences.
        source: where they come from (file or split), for the message when there are none.

    Returns:
        One list of tags per sentence.

    Raises:
        KayanError: no sentences, or a sentence with words but no tags.

    >>> gold_tags([], source="test.txt")
    Traceback (most recent call last):
    ...
    kayan.errors.KayanError: no sentences to score in test.txt; check the split name/file
    """
    if not gold:
        raise KayanError(f"no sentences to score in {source or 'the gold data'}; check the split name/file")
    for i, sentence in enumerate(gold, start=1):
        if len(sentence) and not sentence.tags:
            raise KayanError(f"{location(sentence)}: sentence {i} has no gold tags; evaluate on a labelled file")
    return [list(sentence.tags) for sentence in gold]


def evaluate(
    gold: Sequence[Sentence],
    pred_tags: Sequence[Sequence[str]],
    *,
    bootstrap_samples: int = 1000,
    seed: int = 12345,
    worst: int = 10,
    source: str = "",
) -> dict:
    """Score predicted tags against gold sentences: the full report, ready for JSON.

    Args:
        gold: the gold sentences.
        pred_tags: one predicted tag per gold word.
        bootstrap_samples: resamples for the micro-F1 confidence interval (0: no interval).
        seed: seed of the bootstrap.
        worst: how many of the worst sentences to list.
        source: where the gold comes from, for messages.

    Returns:
        ``scheme``, ``modes`` (names), ``sentences``, ``words``, ``dropped`` (always 0: every word is
        scored), ``accuracy``, ``default`` and ``strict`` (:func:`kayan.evaluation.metrics.score`), ``errors``,
        ``confusion``, ``worst_sentences`` and ``bootstrap`` (default mode).

    Raises:
        KayanError: no gold sentences, or unlabelled ones.
        ValueError: ``pred_tags`` not shaped like the gold, or a tag that is not IOB2.

    >>> r = evaluate([Sentence(("في", "عمان"), ("O", "B-LOC"))], [["O", "B-LOC"]], bootstrap_samples=10)
    >>> r["default"]["micro"]["f1"], r["bootstrap"]["low"], r["dropped"]
    (1.0, 1.0, 0)
    """
    check_number("bootstrap_samples", bootstrap_samples, 0, whole=True)
    tags = gold_tags(gold, source=source)
    metrics.check_lengths(tags, pred_tags)
    default = metrics.score(tags, pred_tags, mode="default")
    return {
        "scheme": metrics.SCHEME,
        "modes": dict(metrics.MODE_NAMES),
        "source": source or gold[0].source,
        "sentences": len(gold),
        "words": default["words"],
        "dropped": 0,
        "accuracy": default["accuracy"],
        "default": default,
        "strict": metrics.score(tags, pred_tags, mode="strict"),
        "errors": error_analysis.error_counts(tags, pred_tags),
        "confusion": error_analysis.confusion_matrix(tags, pred_tags),
        "worst_sentences": error_analysis.worst_sentences(gold, pred_tags, k=worst),
        "bootstrap": _bootstrap(tags, pred_tags, default, samples=bootstrap_samples, seed=seed),
    }


def _bootstrap(
    tags: list[list[str]], pred_tags: Sequence[Sequence[str]], default: dict, *, samples: int, seed: int
) -> dict | None:
    if not samples:
        return None
    counts = metrics.sentence_counts(tags, pred_tags)
    low, high = significance.bootstrap_f1(counts, samples=samples, seed=seed, confidence=CONFIDENCE)
    return {
        "mode": "default", "metric": "micro f1", "f1": default["micro"]["f1"],
        "low": low, "high": high, "confidence": CONFIDENCE, "samples": samples, "seed": seed,
    }

