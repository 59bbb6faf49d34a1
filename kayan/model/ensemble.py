"""Seed ensembles: several models' word probabilities averaged before decoding.

Each member reads the words through the shared inference path with its own tokenizer, window,
stride and normalization (:meth:`kayan.model.modelref.OpenModel.word_scores`), so the members' scores
line up word for word whatever their subwords. The ensemble's word scores are the log of the
mean of the members' softmax probabilities: softmax of them gives back the averaged
probabilities, so decoding (first subword or Viterbi) and word confidences work on them unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kayan.model.settings import ModelSettings
from kayan.model.tagging import decode_scores

"""The folder of an ensemble package that holds one package per member (``members/0``, ...)."""


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def average_probabilities(members: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Per sentence, the log of the mean of the members' word probabilities.

    Args:
        members: per member, per sentence, ``(n_words, n_labels)`` word scores (logits).

    Returns:
        Per sentence, ``(n_words, n_labels)`` float64 log-probabilities, floored at the smallest
        positive float so that every score stays finite.

    >>> a, b = [np.log([[0.9, 0.1]])], [np.log([[0.5, 0.5]])]
    >>> np.exp(average_probabilities([a, b])[0]).round(3).tolist()
    [[0.7, 0.3]]
    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    averaged = []
    for index, rows in enumerate(zip(*members, strict=True)):
        if len({row.shape for row in rows}) != 1:
            raise RuntimeError(f"sentence {index}: the members' word scores have shapes {[r.shape for r in rows]}")
        mean = sum(_softmax(np.asarray(row, dtype=np.float64)) for row in rows) / len(rows)
        averaged.append(np.log(np.maximum(mean, np.finfo(np.float64).tiny)))
    return averaged


@dataclass
class Ensemble:
    """Models opened together (:func:`kayan.model.modelref.open_model` on an ensemble package) that tag as one.

    It answers what a single :class:`kayan.model.modelref.OpenModel` answers (``word_scores``, ``tag``,
    ``labels``, ``settings``, ``members``), so evaluation, the Predictor and the server take
    either.

    Args:
        folder: the ensemble package.
        stored: its kayan.json's settings (:class:`kayan.model.settings.ModelSettings`).
        id2label: label id → tag, shared by every member.
        decoding: how the averaged scores are decoded: ``first`` or ``viterbi``.
        members: the opened member models.
        label_map: the data's entity types renamed to the model's: the first member's.
    """

    folder: Path
    stored: ModelSettings
    id2label: dict[int, str]
    decoding: str
    members: tuple
    label_map: dict[str, str]

    @property
    def labels(self) -> list[str]:
        """The tags, in label-id order."""
        return [self.id2label[i] for i in range(len(self.id2label))]

    @property
    def backend_name(self) -> str:
        """The members' backend (``torch``, ``onnx`` ...), or their names joined by ``+`` when they differ."""
        return "+".join(sorted({m.backend_name for m in self.members}))

    def settings(self) -> dict:
        """The decoding and each member's window, stride and normalization, for reports."""
        members = [{"folder": str(m.folder), **m.settings()} for m in self.members]
        for member in members:
            del member["decoding"]  # only the ensemble's decoding applies
        return {"decoding": self.decoding, "members": members}

    def word_scores(self, sentences: Sequence[Sequence[str]], documents: Sequence[object] | None = None) -> list[np.ndarray]:
        """Per sentence, the log of the members' mean word probabilities (:func:`average_probabilities`)."""
        return average_probabilities([member.word_scores(sentences, documents) for member in self.members])

    def tag(self, sentences: Sequence[Sequence[str]], documents: Sequence[object] | None = None
            ) -> tuple[list[list[str]], list[np.ndarray]]:
        """Word tags and confidences per sentence, decoded from the averaged probabilities."""
        return decode_scores(self.word_scores(sentences, documents), self.id2label, self.decoding)
