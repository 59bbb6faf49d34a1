"""The plain recipe's pure helpers in scripts/benchmark/ (plain.py, report.py): alignment, truncation accounting,
scoring, ratios.

No training here: a WordPiece tokenizer learnt from a handful of Arabic words stands in for an
encoder's, and predictions are written by hand.
"""

from __future__ import annotations

import doctest
import importlib
import sys
from pathlib import Path

import pytest

from kayan.data.sentence import Sentence
from kayan.model.tiny import train_wordpiece_tokenizer

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
LABEL2ID = {"O": 0, "B-LOC": 1, "I-LOC": 2, "B-PERS": 3, "I-PERS": 4}
ID2LABEL = {i: tag for tag, i in LABEL2ID.items()}


@pytest.fixture(scope="module")
def bench():
    """scripts/benchmark/plain.py, imported as ``benchmark.plain`` the way quality.py imports it."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module("benchmark.plain")
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.fixture(scope="module")
def report(bench):
    return importlib.import_module("benchmark.report")


@pytest.fixture(scope="module")
def tokenizer():
    words = ["زار", "محمد", "عبد", "الله", "بغداد", "ودمشق", "أمس", "،", "ثم", "عاد"]
    return train_wordpiece_tokenizer(words, vocab_size=120, model_max_length=512)


def test_doctests(bench, report):
    assert doctest.testmod(bench).failed == 0
    assert doctest.testmod(report).failed == 0


@pytest.mark.parametrize("word_ids, tags, expected", [
    ([None, 0, 1, None], ["B-PERS", "O"], [-100, 3, 0, -100]),
    ([None, 0, 0, 0, 1, None], ["B-LOC", "I-LOC"], [-100, 1, -100, -100, 2, -100]),  # continuations ignored
    ([None, 0, None], ["O", "B-PERS", "I-PERS"], [-100, 0, -100]),  # truncated: words 1-2 have no subword
])
def test_align_labels_first_subword_only(bench, word_ids, tags, expected):
    assert bench.align_labels(word_ids, tags, LABEL2ID) == expected


@pytest.mark.parametrize("word_ids, predicted, n_words, expected, cut", [
    ([None, 0, 1, 2, None], [0, 3, 4, 0, 0], 3, ["B-PERS", "I-PERS", "O"], 0),
    ([None, 0, 0, 1, None], [0, 1, 4, 2, 0], 2, ["B-LOC", "I-LOC"], 0),  # a continuation's label is ignored
    ([None, 0, 1, None], [0, 0, 3, 0], 4, ["O", "B-PERS", "O", "O"], 2),  # words 2-3 cut: predicted O
    ([None, None], [0, 0], 2, ["O", "O"], 2),  # nothing kept
])
def test_word_tags_predicts_cut_words_as_o(bench, word_ids, predicted, n_words, expected, cut):
    assert bench.word_tags(word_ids, predicted, n_words, ID2LABEL) == expected
    assert bench.cut_words(word_ids, n_words) == cut


def test_f1_counts_every_word(bench):
    gold = [["B-PERS", "I-PERS", "O", "B-LOC"], ["O", "B-LOC"]]
    predicted = [["B-PERS", "I-PERS", "O", "O"], ["O", "B-LOC"]]  # sentence 1's last word was cut
    scores = bench.plain_scores(gold, predicted, kept=[3, 2])
    assert scores["test_f1"] == pytest.approx(2 * (1.0 * 2 / 3) / (1.0 + 2 / 3), abs=1e-4)  # P 1, R 2/3
    assert scores["test_f1_kept_words_only"] == 1.0  # what the recipe reports about itself


def test_truncated_sentence_end_to_end(bench, tokenizer):
    """A sentence longer than max_length: its tail gets no labels in training and is predicted O."""
    sentence = Sentence(("زار", "محمد", "عبد", "الله", "بغداد", "ودمشق"),
                        ("O", "B-PERS", "I-PERS", "I-PERS", "B-LOC", "B-LOC"))
    short = Sentence(("زار", "بغداد"), ("O", "B-LOC"))
    features, word_ids = bench.tokenize(tokenizer, [sentence, short], LABEL2ID, max_length=5)
    assert len(features[0]["input_ids"]) == 5  # [CLS] + 3 subwords + [SEP]
    cut = [bench.cut_words(ids, len(s.words)) for ids, s in zip(word_ids, [sentence, short])]
    assert cut[0] >= 3 and cut[1] == 0
    assert features[0]["labels"][0] == features[0]["labels"][-1] == -100
    perfect = [[LABEL2ID[sentence.tags[w]] if w is not None else 0 for w in ids] for ids in word_ids[:1]]
    perfect.append([LABEL2ID[short.tags[w]] if w is not None else 0 for w in word_ids[1]])
    predicted = [bench.word_tags(ids, p, len(s.words), ID2LABEL) for ids, p, s in zip(word_ids, perfect, [sentence, short])]
    assert predicted[0][-cut[0]:] == ["O"] * cut[0]
    scores = bench.plain_scores([sentence.tags, short.tags], predicted, [6 - cut[0], 2])
    assert scores["test_f1_kept_words_only"] == 1.0
    assert scores["test_f1"] < 1.0  # the cut entities count as missed


def test_labels_follow_the_encoder_when_it_covers_the_data(bench):
    assert bench.plain_labels({"O", "B-PERS"}, LABEL2ID) == list(LABEL2ID)
    assert bench.plain_labels({"O", "B-ORG", "I-ORG"}, LABEL2ID) == ["B-ORG", "I-ORG", "O"]


@pytest.mark.parametrize("plain, kayan, target, ratio, met", [
    (1000.0, 1600.0, 1.5, 1.6, True),
    (1000.0, 1400.0, 1.5, 1.4, False),
    (0.80, 0.80, 1.0, 1.0, True),  # F1 not lower: equal is met
    (0.0, 0.0, 1.0, None, None),  # nothing to compare
    (500.0, 400.0, None, 0.8, None),  # no target
])
def test_compare(report, plain, kayan, target, ratio, met):
    row = report.compare("key", "label", plain, kayan, target, "{:.2f}")
    assert row["ratio"] == (pytest.approx(ratio) if ratio is not None else None)
    assert row["met"] is met
