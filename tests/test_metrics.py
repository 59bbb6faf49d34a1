"""kayan.evaluation.metrics against hand-made tables, seqeval (both modes) and conlleval.pl.

score() reports seqeval's numbers; what is tested against seqeval here is what Kayan adds: the
per-sentence counts the bootstrap and significance tests resample must sum to seqeval's counts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from kayan.data.schemes import split_tag
from kayan.evaluation.metrics import entity_types, score, sentence_counts
from kayan.evaluation.significance import micro_f1
from tests.conftest import ANERCORP_TEST, assert_equals_conlleval, corrupt, needs_perl, needs_shared, read_two_columns


@pytest.mark.parametrize("tag", ["E-PERS", "S-LOC", "B_PERS", "B-", "PERS", "o", "", "U-X", "b-LOC", "B--X", "I-X-"])
def test_tags_that_are_not_iob2_are_refused(tag):
    with pytest.raises(ValueError, match="not IOB2"):
        split_tag(tag, "IOB2")
    with pytest.raises(ValueError, match="not IOB2"):
        score([["O", tag]], [["O", "O"]])


def test_unknown_mode_and_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="unknown mode"):
        score([], [], mode="lenient")
    with pytest.raises(ValueError, match="1 gold sentences but 2 predicted"):
        score([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="sentence 2: 1 gold tags but 2 predicted"):
        score([["O"], ["O"]], [["O"], ["O", "O"]])


@pytest.mark.parametrize(
    ("gold", "pred", "mode", "expected"),
    [
        # (tp, predicted, gold) of the micro row
        ([["B-PERS", "I-PERS"]], [["B-PERS", "I-PERS"]], "default", (1, 1, 1)),
        ([["B-PERS", "I-PERS"]], [["B-PERS", "O"]], "default", (0, 1, 1)),
        ([["B-PERS", "I-PERS"]], [["I-PERS", "I-PERS"]], "default", (1, 1, 1)),
        ([["B-PERS", "I-PERS"]], [["I-PERS", "I-PERS"]], "strict", (0, 0, 1)),
        ([["O", "B-LOC"], ["B-LOC"]], [["B-LOC", "O"], ["B-LOC"]], "default", (1, 2, 2)),
        ([["B-LOC", "I-ORG"]], [["B-LOC", "O"]], "default", (1, 1, 2)),
        ([["B-LOC", "I-ORG"]], [["B-LOC", "O"]], "strict", (1, 1, 1)),
    ],
)
def test_micro_counts(gold, pred, mode, expected):
    micro = score(gold, pred, mode=mode)["micro"]
    assert (micro["tp"], micro["predicted"], micro["support"]) == expected
    assert micro["f1"] == pytest.approx(micro_f1(np.array(expected)))


def test_score_with_no_entities_is_zero_not_nan():
    result = score([["O", "O"]], [["O", "O"]])
    assert result["types"] == {}
    assert result["micro"]["f1"] == result["macro"]["f1"] == result["weighted"]["f1"] == 0.0
    assert result["accuracy"] == 1.0


def test_sentence_counts_sum_to_score_and_refuse_unknown_types():
    gold = [["B-LOC", "O", "B-PERS"], ["O", "B-ORG"]]
    pred = [["B-LOC", "O", "B-LOC"], ["I-ORG", "I-ORG"]]
    counts = sentence_counts(gold, pred, types=["LOC", "ORG", "PERS"])
    assert counts.shape == (2, 3, 3)
    result = score(gold, pred)
    for j, kind in enumerate(["LOC", "ORG", "PERS"]):
        row = result["types"][kind]
        assert counts[:, j].sum(axis=0).tolist() == [row["tp"], row["predicted"], row["support"]]
    with pytest.raises(ValueError, match="'PERS'.*not in types"):
        sentence_counts(gold, pred, types=["LOC", "ORG"])


# ---------------------------------------------------------------- seqeval equality


def _seqeval_report(gold, pred, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "strict":
            return classification_report(gold, pred, output_dict=True, mode="strict", scheme=IOB2)
        return classification_report(gold, pred, output_dict=True)


def assert_equals_seqeval(gold, pred, mode):
    """score() reports seqeval's rows, and the per-sentence counts give seqeval's numbers."""
    ours = score(gold, pred, mode=mode)
    theirs = _seqeval_report(gold, pred, mode)
    rows = {**ours["types"], "micro avg": ours["micro"], "macro avg": ours["macro"], "weighted avg": ours["weighted"]}
    if not ours["types"]:  # seqeval's macro average over no types is NaN; ours is 0
        del rows["macro avg"], theirs["macro avg"]
        assert ours["macro"]["f1"] == 0.0
    assert set(rows) == set(theirs)
    for name, row in rows.items():
        for key, their_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert row[key] == float(theirs[name][their_key]), (name, key)
        assert row["support"] == int(theirs[name]["support"]), name
    types = sorted(ours["types"])
    counts = sentence_counts(gold, pred, mode=mode, types=types).sum(axis=0)
    for name, (tp, predicted, support) in [*zip(types, counts), ("micro avg", counts.sum(axis=0))]:
        theirs_row = theirs[name]
        assert support == theirs_row["support"], name
        assert (tp / predicted if predicted else 0.0) == pytest.approx(theirs_row["precision"], abs=1e-12), name
        assert (tp / support if support else 0.0) == pytest.approx(theirs_row["recall"], abs=1e-12), name
        assert micro_f1(np.array([tp, predicted, support])) == pytest.approx(theirs_row["f1-score"], abs=1e-12), name


@pytest.fixture(scope="module")
def anercorp():
    sentences = read_two_columns(ANERCORP_TEST)
    gold = [tags for _, tags in sentences]
    return sentences, gold, corrupt(gold)


@needs_shared
@pytest.mark.parametrize("mode", ["default", "strict"])
def test_anercorp_corrupted_equals_seqeval(anercorp, mode):
    _, gold, pred = anercorp
    assert sum(t.startswith("I-") and (i == 0 or s[i - 1][2:] != t[2:]) for s in pred for i, t in enumerate(s))
    assert_equals_seqeval(gold, pred, mode)
    assert_equals_seqeval(gold, gold, mode)


@needs_shared
def test_anercorp_entity_counts(anercorp):
    _, gold, pred = anercorp
    result = score(gold, pred)
    assert score(gold, gold)["micro"]["support"] == 2285  # SOURCE.md: conlleval's count
    assert score(gold, gold, mode="strict")["micro"]["support"] == 2211
    assert result["words"] == 25008 and result["sentences"] == 925


TAGS = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG-X", "I-ORG-X"])


@st.composite
def gold_and_pred(draw):
    lengths = draw(st.lists(st.integers(0, 8), min_size=1, max_size=6))
    gold = [draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    pred = [draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    return gold, pred


@settings(max_examples=150, deadline=None)
@given(gold_and_pred())
def test_random_sequences_equal_seqeval(data):
    gold, pred = data
    for mode in ("default", "strict"):
        assert_equals_seqeval(gold, pred, mode)
    assert entity_types(gold, pred) == sorted(score(gold, pred)["types"])


# ---------------------------------------------------------------- conlleval.pl

CRAFTED = [  # ill-formed sequences on both sides; (gold, pred)
    (["I-PERS", "I-PERS", "O", "B-LOC"], ["B-PERS", "I-PERS", "O", "I-LOC"]),
    (["B-PERS", "I-LOC", "I-LOC", "O"], ["B-PERS", "I-PERS", "I-LOC", "O"]),
    (["O", "I-ORG", "B-ORG", "I-ORG"], ["O", "I-ORG", "I-ORG", "I-ORG"]),
    (["B-MISC", "I-MISC"], ["B-MISC", "I-MISC"]),  # sentence ends inside an entity
    (["B-MISC", "I-MISC"], ["I-MISC", "B-MISC"]),
    (["B-LOC", "B-LOC", "I-PERS"], ["B-LOC", "I-LOC", "I-PERS"]),
    (["O", "O", "O"], ["I-LOC", "O", "B-ORG"]),
]


@needs_shared
@needs_perl
def test_anercorp_corrupted_equals_conlleval(anercorp, tmp_path):
    _, gold, pred = anercorp
    assert_equals_conlleval(gold, pred, tmp_path)


@needs_shared
@needs_perl
def test_crafted_ill_formed_sequences_equal_conlleval(tmp_path):
    gold, pred = [g for g, _ in CRAFTED], [p for _, p in CRAFTED]
    assert_equals_conlleval(gold, pred, tmp_path)
    for n, (g, p) in enumerate(CRAFTED):  # each alone too: per-sentence differences don't cancel out
        sub = tmp_path / str(n)
        sub.mkdir()
        if entity_types([g], [p]):
            assert_equals_conlleval([g], [p], sub)


def test_counts_are_integers():
    counts = sentence_counts([["B-LOC"]], [["B-LOC"]])
    assert counts.dtype == np.int64
