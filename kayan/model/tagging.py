"""Run a token-classification model over word sequences: words in, word scores and tags out.

The one inference path that training (dev and test scoring), ``kayan evaluate`` and the
Predictor share, so they agree to the word. Windows are batched by length (little padding) and
every word gets exactly one score row (kayan.model.features' promise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from kayan.data.arabic import normalize
from kayan.model.backends import as_backend
from kayan.model.decoding import decode, word_confidence
from kayan.model.features import Feature, encode, word_scores


@dataclass(frozen=True)
class TaggingOptions:
    """How a model reads words: the settings stored with it (window, stride, normalization, decoding)."""

    window: int = 512
    stride: int = 128
    normalization: tuple[str, ...] = ()
    decoding: str = "first"
    batch_size: int = 32
    context: int = 0  # subwords of the neighbouring sentences on each side (document context)


def normalized(sentences: Sequence[Sequence[str]], steps: Sequence[str]) -> list[list[str]]:
    """Apply the model's normalization steps to every word (offsets are kept by the caller).

    The one place words are normalized for a model: :func:`windows` calls it at inference (and for dev and
    test scoring in training), :func:`kayan.training.build.build_trainer` for the training windows, both
    with the steps of the model's :class:`TaggingOptions`.
    """
    if not steps:
        return [list(words) for words in sentences]
    return [[normalize(word, steps) for word in words] for words in sentences]


def _pad_batch(batch: Sequence[Feature], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad a batch of windows into ``input_ids`` and ``attention_mask`` arrays.

    >>> _pad_batch([Feature([2, 7, 3], None, [-1, 0, -1], 0), Feature([2, 3], None, [-1, -1], 1)], 0)
    (array([[2, 7, 3],
           [2, 3, 0]]), array([[1, 1, 1],
           [1, 1, 0]]))
    """
    width = max(len(f.input_ids) for f in batch)
    ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, feature in enumerate(batch):
        ids[row, : len(feature.input_ids)] = feature.input_ids
        mask[row, : len(feature.input_ids)] = 1
    return ids, mask


def window_logits(model, features: Sequence[Feature], *, pad_id: int, batch_size: int) -> list[np.ndarray]:
    """Logits of each window, computed in length-sorted batches (in the order of ``features``).

    Args:
        model: a PyTorch model, or a backend (see :mod:`kayan.model.backends`).
        features: the windows from :func:`kayan.model.features.encode`.
        pad_id: the tokenizer's padding id.
        batch_size: windows per forward call (what bounds memory).
    """
    backend = as_backend(model)
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    out: list[np.ndarray | None] = [None] * len(features)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        logits = backend.logits(*_pad_batch([features[i] for i in chosen], pad_id))
        for row, index in enumerate(chosen):
            out[index] = logits[row, : len(features[index].input_ids)]
    return out  # type: ignore[return-value]


def windows(tokenizer, sentences: Sequence[Sequence[str]], options: TaggingOptions,
            documents: Sequence[object] | None = None) -> list[Feature]:
    """The windows a model reads for these sentences: words normalized, then encoded (:func:`kayan.model.features.encode`).

    ``documents`` says which sentences are neighbours for document context (``None``: all of them, in order).
    """
    words = normalized(sentences, options.normalization)
    return encode(words, tokenizer, window=options.window, stride=options.stride, context=options.context,
                  documents=documents)


def score_words(
    model, tokenizer, sentences: Sequence[Sequence[str]], options: TaggingOptions, *, n_labels: int | None = None,
    documents: Sequence[object] | None = None,
) -> list[np.ndarray]:
    """Per sentence, a ``(n_words, n_labels)`` array of logits at each word's first subword.

    ``n_labels`` gives the arrays their width when no sentence has a word (no forward call at all);
    ``documents`` is :func:`windows`'.
    """
    features = windows(tokenizer, sentences, options, documents)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logits = window_logits(model, features, pad_id=pad_id, batch_size=options.batch_size)
    return word_scores(features, logits, [len(w) for w in sentences], n_labels=n_labels)


def tag_words(
    model,
    tokenizer,
    sentences: Sequence[Sequence[str]],
    options: TaggingOptions,
    *,
    id2label: Mapping[int, str] | None = None,
    documents: Sequence[object] | None = None,
) -> tuple[list[list[str]], list[np.ndarray]]:
    """Word tags and per-word confidences for each sentence, decoded as ``options.decoding`` says.

    Args:
        model: a PyTorch model (put in eval mode for the call), or a backend (see
            :mod:`kayan.model.backends`).
        tokenizer: the model's fast tokenizer.
        sentences: word lists (not modified).
        options: window, stride, normalization, decoding and batch size.
        id2label: label id → tag; by default ``model.config.id2label``.
        documents: per sentence, its document, for document context (``None``: one document, in order).
    """
    id2label = int_keys(model.config.id2label if id2label is None else id2label)
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module is not None and module.training
    if module is not None:
        module.eval()
    try:
        scores = score_words(model, tokenizer, sentences, options, n_labels=len(id2label), documents=documents)
    finally:
        if module is not None:
            module.train(was_training)
    return decode_scores(scores, id2label, options.decoding)


def decode_scores(scores: Sequence[np.ndarray], id2label: Mapping[int, str], decoding: str) -> tuple[list[list[str]], list[np.ndarray]]:
    """Word tags (decoded as ``decoding`` says) and the probability of each chosen tag, per sentence.

    Args:
        scores: per sentence, ``(n_words, n_labels)`` word scores (logits, or log-probabilities).
        id2label: label id → tag, int keys.
        decoding: ``first`` or ``viterbi``.

    >>> decode_scores([np.log([[0.2, 0.8], [0.9, 0.1]])], {0: "O", 1: "B-LOC"}, "first")[0]
    [['B-LOC', 'O']]
    """
    tags = [decode(s, id2label, method=decoding) for s in scores]
    confidence = [word_confidence(s, tags=t, id2label=id2label) for s, t in zip(scores, tags)]
    return tags, confidence


def int_keys(id2label: Mapping) -> dict[int, str]:
    """A label map with int ids, whatever its keys were (a config read from JSON may hold strings).

    >>> int_keys({"0": "O", "1": "B-LOC"})
    {0: 'O', 1: 'B-LOC'}
    """
    return {int(k): str(v) for k, v in id2label.items()}
