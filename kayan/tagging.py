"""Run a token-classification model over word sequences: words in, word scores and tags out.

The one inference path that training (dev and test scoring), ``kayan evaluate`` and the
Predictor share, so they agree to the word. Windows are batched by length (little padding) and
every word gets exactly one score row (kayan.features' promise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from kayan.arabic import normalize
from kayan.decoding import decode, word_confidence
from kayan.features import Feature, encode, word_scores


@dataclass(frozen=True)
class TaggingOptions:
    """How a model reads words: the settings stored with it (window, stride, normalization, decoding)."""

    window: int = 512
    stride: int = 128
    normalization: tuple[str, ...] = ()
    decoding: str = "first"
    batch_size: int = 32


def normalized(sentences: Sequence[Sequence[str]], steps: Sequence[str]) -> list[list[str]]:
    """Apply the model's normalization steps to every word (offsets are kept by the caller)."""
    if not steps:
        return [list(words) for words in sentences]
    return [[normalize(word, steps) for word in words] for words in sentences]


def _pad_batch(batch: Sequence[Feature], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch of windows into model inputs."""
    width = max(len(f.input_ids) for f in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, feature in enumerate(batch):
        ids[row, : len(feature.input_ids)] = torch.tensor(feature.input_ids)
        mask[row, : len(feature.input_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}


@torch.inference_mode()
def window_logits(model, features: Sequence[Feature], *, pad_id: int, batch_size: int) -> list[np.ndarray]:
    """Logits of each window, computed in length-sorted batches (in the order of ``features``)."""
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    out: list[np.ndarray | None] = [None] * len(features)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        inputs = _pad_batch([features[i] for i in chosen], pad_id)
        logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits.float().cpu().numpy()
        for row, index in enumerate(chosen):
            out[index] = logits[row, : len(features[index].input_ids)]
    return out  # type: ignore[return-value]


def score_words(model, tokenizer, sentences: Sequence[Sequence[str]], options: TaggingOptions) -> list[np.ndarray]:
    """Per sentence, a ``(n_words, n_labels)`` array of logits at each word's first subword."""
    words = normalized(sentences, options.normalization)
    features = encode(words, tokenizer, window=options.window, stride=options.stride)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logits = window_logits(model, features, pad_id=pad_id, batch_size=options.batch_size)
    return word_scores(features, logits, [len(w) for w in words])


def tag_words(
    model, tokenizer, sentences: Sequence[Sequence[str]], options: TaggingOptions
) -> tuple[list[list[str]], list[np.ndarray]]:
    """Word tags and per-word confidences for each sentence, decoded as ``options.decoding`` says."""
    id2label: Mapping[int, str] = {int(k): v for k, v in model.config.id2label.items()}
    was_training = model.training
    model.eval()
    try:
        scores = score_words(model, tokenizer, sentences, options)
    finally:
        model.train(was_training)
    tags = [decode(s, id2label, method=options.decoding) for s in scores]
    confidence = [word_confidence(s, tags=t, id2label=id2label) for s, t in zip(scores, tags)]
    return tags, confidence
