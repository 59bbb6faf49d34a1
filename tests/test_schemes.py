"""Scheme conversions: every repair keeps the entities conlleval reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kayan.metrics import entities
from kayan.schemes import bioes_to_iob2, check_tag, iob2_to_bioes, iob_to_iob2, to_iob2

TAGS = st.lists(st.sampled_from(["O", "B-PERS", "I-PERS", "B-LOC", "I-LOC"]), max_size=30)


@pytest.mark.parametrize(
    "tags, expected, repairs",
    [
        (["I-PERS", "I-PERS"], ["B-PERS", "I-PERS"], 1),  # IOB1 opener
        (["O", "I-LOC", "I-ORG"], ["O", "B-LOC", "B-ORG"], 2),  # I- after O; I- of another type
        (["B-LOC", "I-LOC", "B-LOC"], ["B-LOC", "I-LOC", "B-LOC"], 0),  # already IOB2
        ([], [], 0),
    ],
)
def test_iob_to_iob2(tags, expected, repairs):
    assert iob_to_iob2(tags) == (expected, repairs)


@given(TAGS)
def test_repair_keeps_conlleval_entities(tags):
    repaired, _ = iob_to_iob2(tags)
    assert entities(repaired, mode="default") == entities(tags, mode="default")
    assert entities(repaired, mode="strict") == entities(tags, mode="default")


@given(TAGS)
def test_bioes_round_trip(tags):
    iob2, _ = iob_to_iob2(tags)
    assert bioes_to_iob2(iob2_to_bioes(iob2)) == (iob2, 0)


def test_to_iob2_dispatches_on_scheme():
    assert to_iob2(["S-LOC", "B-ORG", "E-ORG"], "BIOES") == (["B-LOC", "B-ORG", "I-ORG"], 0)


@pytest.mark.parametrize("tag, scheme, ok", [("E-LOC", "BIOES", True), ("E-LOC", "IOB2", False), ("O", "IOB1", True), ("B-", "IOB2", False)])
def test_check_tag(tag, scheme, ok):
    assert (check_tag(tag, scheme) is None) == ok
