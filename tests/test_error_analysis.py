"""kayan.evaluation.error_analysis: one tiny hand-made case per category, the pairing rules, the invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kayan.data.schemes import entities
from kayan.data.sentence import Sentence
from kayan.evaluation.error_analysis import (
    CATEGORIES,
    bracketed,
    confusion_matrix,
    error_counts,
    match_entities,
    sentence_events,
    worst_sentences,
)
from kayan.evaluation.metrics import score


def _only(gold, pred, mode="default"):
    """The categories of one sentence's events."""
    return [category for category, _, _ in sentence_events([gold], [pred], mode=mode)[0]]


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        (["B-PERS", "I-PERS", "O"], ["B-PERS", "I-PERS", "O"], ["exact"]),
        (["B-PERS", "I-PERS", "O"], ["B-ORG", "I-ORG", "O"], ["type"]),
        (["B-PERS", "I-PERS", "O"], ["B-PERS", "I-PERS", "I-PERS"], ["boundary"]),
        (["B-PERS", "I-PERS", "O"], ["O", "B-PERS", "O"], ["boundary"]),
        (["B-PERS", "I-PERS", "O"], ["O", "B-LOC", "I-LOC"], ["type_boundary"]),
        (["B-PERS", "I-PERS", "O"], ["O", "O", "O"], ["missed"]),
        (["O", "O", "O"], ["O", "O", "B-LOC"], ["spurious"]),
        (["B-PERS", "O", "B-LOC"], ["B-PERS", "B-ORG", "O"], ["exact", "spurious", "missed"]),
        # an I- after O is an entity in default mode, nothing in strict mode
        (["B-LOC", "O"], ["O", "I-LOC"], ["missed", "spurious"]),
    ],
)
def test_each_category(gold, pred, expected):
    assert _only(gold, pred) == expected


def test_strict_mode_drops_orphan_inside_tags():
    assert _only(["B-LOC", "I-LOC"], ["I-LOC", "I-LOC"]) == ["exact"]
    assert _only(["B-LOC", "I-LOC"], ["I-LOC", "I-LOC"], mode="strict") == ["missed"]


def test_earlier_stage_wins_and_each_entity_counted_once():
    # gold LOC [0,3) overlaps a LOC [0,1) and a PERS [1,3): the same-type overlap is paired first
    events = match_entities([("LOC", 0, 3)], [("LOC", 0, 1), ("PERS", 1, 3)])
    assert events == [("boundary", ("LOC", 0, 3), ("LOC", 0, 1)), ("spurious", None, ("PERS", 1, 3))]
    # a same-span type error beats a larger same-type overlap
    events = match_entities([("LOC", 1, 3)], [("ORG", 1, 3)])
    assert events == [("type", ("LOC", 1, 3), ("ORG", 1, 3))]
    # one prediction spanning two gold entities pairs with the one it overlaps most; the other is missed
    events = match_entities([("PERS", 0, 1), ("PERS", 1, 4)], [("PERS", 0, 4)])
    assert events == [("missed", ("PERS", 0, 1), None), ("boundary", ("PERS", 1, 4), ("PERS", 0, 4))]
    # on a tie, the leftmost prediction
    events = match_entities([("PERS", 0, 4)], [("PERS", 0, 2), ("PERS", 2, 4)])
    assert events[0] == ("boundary", ("PERS", 0, 4), ("PERS", 0, 2))


def test_counts_per_type_key_spurious_by_predicted_type():
    counts = error_counts([["B-LOC", "O", "O"]], [["B-ORG", "O", "B-PERS"]])
    assert counts["LOC"]["type"] == 1
    assert counts["PERS"]["spurious"] == 1
    assert sum(counts["ORG"].values()) == 0  # ORG only appears as the wrong type of a LOC


def test_confusion_matrix_rows_are_gold_columns_predicted():
    result = confusion_matrix([["B-LOC", "O", "B-ORG", "B-LOC"]], [["B-ORG", "B-PERS", "O", "B-LOC"]])
    labels, matrix = result["labels"], result["matrix"]
    assert labels == ["LOC", "ORG", "PERS", "O"]
    cell = {(g, p): matrix[i][j] for i, g in enumerate(labels) for j, p in enumerate(labels)}
    assert cell["LOC", "ORG"] == 1 and cell["LOC", "LOC"] == 1
    assert cell["ORG", "O"] == 1 and cell["O", "PERS"] == 1
    assert sum(map(sum, matrix)) == 4


TAGS = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(TAGS, TAGS), max_size=12), st.sampled_from(["default", "strict"]))
def test_invariants(pairs, mode):
    gold, pred = [[g for g, _ in pairs]], [[p for _, p in pairs]]
    counts = error_counts(gold, pred, mode=mode)
    result = score(gold, pred, mode=mode)
    for kind, row in result["types"].items():
        found = counts.get(kind, dict.fromkeys(CATEGORIES, 0))
        assert found["exact"] == row["tp"]
        assert sum(found[c] for c in CATEGORIES[:5]) == row["support"]
    confusion = confusion_matrix(gold, pred, mode=mode)
    labels, matrix = confusion["labels"], confusion["matrix"]
    for i, kind in enumerate(labels[:-1]):
        assert sum(matrix[i]) == result["types"][kind]["support"]
        assert sum(row[i] for row in matrix) == result["types"][kind]["predicted"]
    assert matrix[-1][-1] == 0


def test_worst_sentences_ranked_and_side_by_side():
    gold = [
        Sentence(("زار", "محمد", "عمان"), ("O", "B-PERS", "B-LOC"), source="g.txt", line=1),
        Sentence(("في", "القاهرة"), ("O", "B-LOC"), source="g.txt", line=5),
        Sentence(("قال", "علي", "بن", "أحمد"), ("O", "B-PERS", "I-PERS", "I-PERS"), source="g.txt", line=8),
    ]
    pred = [["O", "B-PERS", "I-PERS"], ["O", "B-LOC"], ["B-ORG", "B-PERS", "O", "B-LOC"]]
    worst = worst_sentences(gold, pred, k=5)
    assert [(w["sentence"], w["errors"]) for w in worst] == [(3, 3), (1, 2)]  # sentence 2 has no errors
    top = worst[0]
    assert top["line"] == 8 and top["source"] == "g.txt"
    assert top["gold_text"] == "قال [PERS علي بن أحمد]"
    assert top["pred_text"] == "[ORG قال] [PERS علي] بن [LOC أحمد]"
    assert top["gold"] == [{"type": "PERS", "start": 1, "end": 4, "text": "علي بن أحمد"}]
    assert worst_sentences(gold, pred, k=1) == worst[:1]
    assert worst_sentences(gold, pred, k=0) == []


def test_bracketed_with_no_spans_and_adjacent_spans():
    assert bracketed(["a", "b"], []) == "a b"
    assert bracketed(["a", "b"], entities(["B-X", "B-Y"])) == "[X a] [Y b]"
