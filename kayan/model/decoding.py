"""Word scores → word tags: first-subword argmax, or the best valid IOB2 sequence (Viterbi).

The scores are the ``(n_words, n_labels)`` arrays of :func:`kayan.model.features.word_scores`. The IOB2
constraints are data, as in seqeval's scheme classes: :data:`kayan.data.schemes.IOB2_TRANSITIONS` lists the
allowed (previous prefix, current prefix) pairs and whether the two entity types must agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from kayan.data.schemes import START, allowed
from kayan.errors import KayanError


def _labels(scores: np.ndarray, id2label: Mapping[int, str]) -> list[str]:
    """The tags of the score columns, in id order; checks that they match the (non-empty) scores."""
    labels = [id2label[i] for i in range(len(id2label))]
    if scores.ndim != 2 or (len(scores) and scores.shape[1] != len(labels)):
        raise ValueError(f"scores of shape {scores.shape} do not match {len(labels)} labels")
    return labels


def first_subword(scores: np.ndarray, id2label: Mapping[int, str]) -> list[str]:
    """The highest-scoring tag of each word (its first subword's argmax), constraints ignored.

    Args:
        scores: ``(n_words, n_labels)`` scores.
        id2label: label id → tag, ids 0..n_labels-1.

    Returns:
        One tag per word.

    >>> id2label = {0: "O", 1: "B-PER", 2: "I-PER"}
    >>> first_subword(np.array([[0.1, 2.0, 0.0], [3.0, 0.0, 0.5]]), id2label)
    ['B-PER', 'O']
    """
    scores = np.asarray(scores)
    labels = _labels(scores, id2label)
    return [labels[i] for i in scores.argmax(axis=1)] if len(scores) else []


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    """Log-probabilities over the last axis, computed stably."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Additive start (L,) and transition (L, L) scores: 0 where allowed, -inf where forbidden."""
    start = np.array([0.0 if allowed(START, cur) else -np.inf for cur in labels])
    table = [[0.0 if allowed(prev, cur) else -np.inf for cur in labels] for prev in labels]
    return start, np.array(table).reshape(len(labels), len(labels))


def viterbi(scores: np.ndarray, id2label: Mapping[int, str], *, logits: bool = True) -> list[str]:
    """The valid IOB2 tag sequence with the highest total score.

    Args:
        scores: ``(n_words, n_labels)`` scores.
        id2label: label id → tag, ids 0..n_labels-1; valid output needs a ``B-X`` for every ``I-X``.
        logits: the scores are raw logits, turned into log-probabilities per word first; with
            ``False`` they are added as they are (log-probabilities, or any additive scores).

    Returns:
        One tag per word, never ``I-X`` after ``O``, after another type, or first.

    >>> id2label = {0: "O", 1: "B-PER", 2: "I-PER"}
    >>> scores = np.log(np.array([[0.6, 0.1, 0.3], [0.1, 0.1, 0.8]]))
    >>> first_subword(scores, id2label), viterbi(scores, id2label)
    (['O', 'I-PER'], ['B-PER', 'I-PER'])
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = _labels(scores, id2label)
    if len(scores) == 0:
        return []
    emissions = _log_softmax(scores) if logits else scores
    start, transition = _transitions(labels)
    best = start + emissions[0]
    backpointers = np.zeros(emissions.shape, dtype=np.int64)
    for position in range(1, len(emissions)):
        candidates = best[:, None] + transition
        backpointers[position] = candidates.argmax(axis=0)
        best = candidates.max(axis=0) + emissions[position]
    path = [int(best.argmax())]
    for position in range(len(emissions) - 1, 0, -1):
        path.append(int(backpointers[position, path[-1]]))
    return [labels[i] for i in reversed(path)]


DECODERS: Mapping[str, Callable[[np.ndarray, Mapping[int, str]], list[str]]] = {
    "first": first_subword,
    "viterbi": viterbi,
}
"""The decoding methods, by the name the config key ``training.decoding`` takes."""


def decode(scores: np.ndarray, id2label: Mapping[int, str], *, method: str = "first") -> list[str]:
    """Word tags from word scores, by the decoding method named in the config.

    Args:
        scores: ``(n_words, n_labels)`` logits.
        id2label: label id → tag, ids 0..n_labels-1.
        method: ``"first"`` (argmax of each word's first subword) or ``"viterbi"`` (the best valid
            IOB2 sequence).

    Returns:
        One tag per word.

    Raises:
        KayanError: ``method`` is not one of :data:`DECODERS` (the message names the config key
            ``training.decoding``).

    >>> decode(np.array([[0.0, 1.0, 0.0]]), {0: "O", 1: "B-LOC", 2: "I-LOC"}, method="viterbi")
    ['B-LOC']
    """
    if method not in DECODERS:
        raise KayanError(
            f"training.decoding = {method!r} is not a decoding method; "
            f"set training.decoding to one of: {', '.join(DECODERS)}"
        )
    return DECODERS[method](scores, id2label)


def word_confidence(
    scores: np.ndarray,
    *,
    tags: Sequence[str] | None = None,
    id2label: Mapping[int, str] | None = None,
) -> np.ndarray:
    """The softmax probability of each word's chosen label.

    Args:
        scores: ``(n_words, n_labels)`` logits.
        tags: the chosen tags (from :func:`decode`); by default each word's argmax label.
        id2label: label id → tag; needed with ``tags``.

    Returns:
        A ``(n_words,)`` array of probabilities.

    >>> word_confidence(np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))).round(2).tolist()
    [0.75, 0.5]
    >>> word_confidence(np.log(np.array([[0.25, 0.75]])), tags=["O"], id2label={0: "O", 1: "B-X"})
    array([0.25])
    """
    scores = np.asarray(scores, dtype=np.float64)
    probabilities = np.exp(_log_softmax(scores))
    if tags is None:
        return probabilities.max(axis=-1) if len(scores) else np.zeros(0)
    if id2label is None:
        raise ValueError("word_confidence(tags=...) needs id2label")
    label2id = {tag: i for i, tag in id2label.items()}
    chosen = np.array([label2id[tag] for tag in tags], dtype=np.int64)
    return probabilities[np.arange(len(chosen)), chosen]
