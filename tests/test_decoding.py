"""Word scores → word tags: argmax, IOB2 constraints as data, and Viterbi."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kayan.config import CHOICES
from kayan.data.schemes import START, allowed
from kayan.errors import KayanError
from kayan.model.decoding import DECODERS, decode, first_subword, viterbi, word_confidence

ID2LABEL = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
LABEL2ID = {tag: i for i, tag in ID2LABEL.items()}


def _probabilities(*rows: dict[str, float]) -> np.ndarray:
    """Log-probabilities of words given as ``{tag: probability}``; the rest share what is left."""
    table = np.zeros((len(rows), len(ID2LABEL)))
    for position, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (len(ID2LABEL) - len(row))
        table[position] = [row.get(tag, rest) for tag in ID2LABEL.values()]
    return np.log(table)


def _is_valid(tags) -> bool:
    return all(allowed(prev, cur) for prev, cur in zip([START, *tags], tags))


def _total(log_probs: np.ndarray, tags) -> float:
    return float(sum(log_probs[i, LABEL2ID[tag]] for i, tag in enumerate(tags)))


@pytest.mark.parametrize(
    ("prev", "cur", "expected"),
    [
        (START, "O", True),
        (START, "B-PER", True),
        (START, "I-PER", False),
        ("O", "O", True),
        ("O", "B-LOC", True),
        ("O", "I-LOC", False),
        ("B-PER", "I-PER", True),
        ("B-PER", "I-LOC", False),
        ("B-PER", "B-PER", True),
        ("B-PER", "O", True),
        ("I-PER", "I-PER", True),
        ("I-PER", "I-LOC", False),
        ("I-PER", "B-LOC", True),
        ("I-PER", "O", True),
        ("B-ORG-GOV", "I-ORG-GOV", True),
        ("B-ORG", "I-ORG-GOV", False),
    ],
)
def test_iob2_transitions(prev, cur, expected):
    assert allowed(prev, cur) is expected


@pytest.mark.parametrize(
    ("rows", "argmax", "best"),
    [
        # O then I-PER, B-PER a close second on word 2: B-PER I-PER
        (
            [{"O": 0.5, "B-PER": 0.4}, {"I-PER": 0.6, "B-PER": 0.3}],
            ["O", "I-PER"],
            ["B-PER", "I-PER"],
        ),
        # O then I-PER, O a close second on word 2, B-PER unlikely anywhere: O O
        (
            [{"O": 0.9, "B-PER": 0.02}, {"I-PER": 0.5, "O": 0.45}],
            ["O", "I-PER"],
            ["O", "O"],
        ),
        # a sentence that starts with I-PER: B-PER
        ([{"I-PER": 0.6, "B-PER": 0.3}], ["I-PER"], ["B-PER"]),
        # B-LOC I-PER: the type must agree
        (
            [{"B-LOC": 0.5, "B-PER": 0.4}, {"I-PER": 0.7, "I-LOC": 0.2}],
            ["B-LOC", "I-PER"],
            ["B-PER", "I-PER"],
        ),
        # I-PER I-LOC inside a sentence
        (
            [{"B-PER": 0.9}, {"I-PER": 0.9}, {"I-LOC": 0.5, "I-PER": 0.4}],
            ["B-PER", "I-PER", "I-LOC"],
            ["B-PER", "I-PER", "I-PER"],
        ),
    ],
)
def test_viterbi_repairs_invalid_argmax(rows, argmax, best):
    scores = _probabilities(*rows)
    assert first_subword(scores, ID2LABEL) == argmax
    assert viterbi(scores, ID2LABEL) == best
    assert decode(scores, ID2LABEL, method="viterbi") == best
    assert decode(scores, ID2LABEL) == argmax


@pytest.mark.parametrize(
    "tags",
    [
        ["O"],
        ["B-PER", "I-PER", "O", "B-LOC"],
        ["B-LOC", "B-LOC", "I-LOC", "I-LOC", "B-PER"],
        ["O", "O", "O"],
    ],
)
def test_viterbi_equals_argmax_when_argmax_is_valid(tags):
    scores = _probabilities(*({tag: 0.4} for tag in tags))
    assert first_subword(scores, ID2LABEL) == tags
    assert viterbi(scores, ID2LABEL) == tags


def test_viterbi_takes_log_probabilities_as_they_are():
    scores = _probabilities({"O": 0.5, "B-PER": 0.4}, {"I-PER": 0.6, "B-PER": 0.3})
    assert viterbi(scores, ID2LABEL, logits=False) == ["B-PER", "I-PER"]
    assert viterbi(scores * 10, ID2LABEL, logits=True) == viterbi(scores * 10, ID2LABEL, logits=False)


def test_no_words_no_tags():
    empty = np.zeros((0, len(ID2LABEL)))
    assert viterbi(empty, ID2LABEL) == first_subword(empty, ID2LABEL) == []
    assert decode(np.zeros((0, 0)), ID2LABEL, method="viterbi") == []
    assert word_confidence(empty).shape == (0,)


def test_scores_must_match_the_labels():
    with pytest.raises(ValueError, match="3 labels"):
        viterbi(np.zeros((2, 5)), {0: "O", 1: "B-X", 2: "I-X"})


def test_unknown_method_names_the_key_and_the_choices():
    with pytest.raises(KayanError, match=r"training\.decoding = 'crf'.*first, viterbi"):
        decode(np.zeros((1, 5)), ID2LABEL, method="crf")


def test_word_confidence_is_the_chosen_labels_probability():
    scores = _probabilities({"O": 0.5, "B-PER": 0.4}, {"I-PER": 0.6, "B-PER": 0.3})
    np.testing.assert_allclose(word_confidence(scores), [0.5, 0.6])
    tags = viterbi(scores, ID2LABEL)
    np.testing.assert_allclose(word_confidence(scores, tags=tags, id2label=ID2LABEL), [0.4, 0.6])
    np.testing.assert_allclose(word_confidence(scores * 0.0), [0.2, 0.2])
    with pytest.raises(ValueError):
        word_confidence(scores, tags=tags)


_scores = st.integers(1, 6).flatmap(
    lambda n: arrays(np.float64, (n, len(ID2LABEL)), elements=st.floats(-8, 8, width=32))
)


def _valid_sequences(n_words: int) -> list[tuple[str, ...]]:
    every = itertools.product(ID2LABEL.values(), repeat=n_words)
    return [tags for tags in every if _is_valid(tags)]


VALID = {n: _valid_sequences(n) for n in range(1, 4)}


@settings(max_examples=150, deadline=None)
@given(_scores)
def test_viterbi_is_valid_and_optimal(scores):
    tags = viterbi(scores, ID2LABEL)
    assert len(tags) == len(scores)
    assert _is_valid(tags)
    if len(scores) in VALID:  # brute force: no valid sequence scores higher
        log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        best = max(_total(log_probs, seq) for seq in VALID[len(scores)])
        assert _total(log_probs, tags) >= best - 1e-9


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_viterbi_is_valid_on_long_random_sentences(n_words, seed):
    scores = np.random.default_rng(seed).normal(scale=4.0, size=(n_words, len(ID2LABEL)))
    assert _is_valid(viterbi(scores, ID2LABEL))


def test_the_config_offers_exactly_the_decoders():
    """config.py names the methods itself (a top-level module imports no stage): the names must stay the decoders'."""
    assert CHOICES["training.decoding"] == tuple(DECODERS)
