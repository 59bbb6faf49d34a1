"""The tag grammar: tags, entities read as seqeval reads them, and scheme conversions that keep them."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Tokens

from kayan.data.schemes import (
    bioes_to_iob2,
    check_tag,
    entities,
    inside_tag,
    iob2_to_bioes,
    iob_to_iob2,
    label_types,
    split_tag,
    to_iob2,
)

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


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("O", ("O", "")), ("B-PERS", ("B", "PERS")), ("S-LOC", ("S", "LOC")), ("I-ORG-GOV", ("I", "ORG-GOV"))],
)
def test_split_tag(tag, expected):
    assert split_tag(tag) == expected


@pytest.mark.parametrize("tag", ["", "o", "PERS", "B_PERS", "B-", "BI-X", "B--X", "B-X-", "-X"])
def test_split_tag_refuses_what_is_not_o_or_prefix_type(tag):
    with pytest.raises(ValueError, match="is not O or PREFIX-TYPE"):
        split_tag(tag)


@pytest.mark.parametrize(("tag", "scheme"), [("S-LOC", "IOB2"), ("E-LOC", "IOB1"), ("U-LOC", "BIOES"), ("B-", "IOB2")])
def test_split_tag_with_a_scheme_refuses_its_unused_prefixes(tag, scheme):
    with pytest.raises(ValueError, match=f"tag '{tag}' is not {scheme}: expected 'O', "):
        split_tag(tag, scheme)


def test_label_types_and_inside_tag():
    assert label_types(["O", "B-PERS", "I-PERS", "B-LOC", "I-ORG-GOV"]) == ["LOC", "ORG-GOV", "PERS"]
    assert label_types(["O"]) == []
    assert [inside_tag(t) for t in ("B-LOC", "I-LOC", "O")] == ["I-LOC", "I-LOC", "O"]
    with pytest.raises(ValueError, match="not IOB2"):
        inside_tag("S-LOC")


# ---------------------------------------------------------------- entities, equal to seqeval's

# (tags, default-mode entities, strict-mode entities)
ENTITY_TABLE = [
    ([], [], []),
    (["O", "O"], [], []),
    (["B-PERS", "I-PERS", "O", "B-LOC"], [("PERS", 0, 2), ("LOC", 3, 4)], [("PERS", 0, 2), ("LOC", 3, 4)]),
    (["I-PERS", "I-PERS", "O"], [("PERS", 0, 2)], []),  # I- at sentence start
    (["O", "I-LOC", "O"], [("LOC", 1, 2)], []),  # I- after O
    (["B-PERS", "I-LOC", "I-LOC"], [("PERS", 0, 1), ("LOC", 1, 3)], [("PERS", 0, 1)]),  # B-X I-Y
    (["I-PERS", "I-LOC"], [("PERS", 0, 1), ("LOC", 1, 2)], []),  # I- of another type
    (["B-ORG", "I-ORG", "I-PERS", "I-ORG"], [("ORG", 0, 2), ("PERS", 2, 3), ("ORG", 3, 4)], [("ORG", 0, 2)]),
    (["B-LOC", "B-LOC", "I-LOC"], [("LOC", 0, 1), ("LOC", 1, 3)], [("LOC", 0, 1), ("LOC", 1, 3)]),
    (["O", "B-MISC", "I-MISC"], [("MISC", 1, 3)], [("MISC", 1, 3)]),  # ends inside an entity
    (["I-MISC"], [("MISC", 0, 1)], []),
    (["B-ORG-GOV", "I-ORG-GOV", "I-ORG"], [("ORG-GOV", 0, 2), ("ORG", 2, 3)], [("ORG-GOV", 0, 2)]),
]


@pytest.mark.parametrize(("tags", "default", "strict"), ENTITY_TABLE)
def test_entities_table(tags, default, strict):
    assert entities(tags) == default
    assert entities(tags, mode="strict") == strict



def _seqeval_entities(tags, mode="default"):
    """seqeval's own extraction: get_entities (default mode) or Tokens(tags, IOB2) (strict)."""
    if mode == "strict":
        return [(e.tag, e.start, e.end) for e in Tokens(list(tags), IOB2).entities]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tag seqeval would not read as an entity tag fails the test
        return [(kind, start, end + 1) for kind, start, end in get_entities(list(tags))]


@pytest.mark.parametrize(("tags", "default", "strict"), ENTITY_TABLE)
def test_entities_table_is_seqevals(tags, default, strict):
    assert _seqeval_entities(tags) == default
    assert _seqeval_entities(tags, mode="strict") == strict


SEQEVAL_TAGS = st.lists(
    st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG-X", "I-ORG-X", "I-ORG", "B-X-Y-Z"]), max_size=12
)


@settings(max_examples=400, deadline=None)
@given(SEQEVAL_TAGS)
def test_entities_equal_seqevals_extraction(tags):
    for mode in ("default", "strict"):
        assert entities(tags, mode=mode) == _seqeval_entities(tags, mode)


def test_entities_refuse_unknown_modes_and_tags_that_are_not_iob2():
    with pytest.raises(ValueError, match="unknown mode"):
        entities(["O"], mode="lenient")
    with pytest.raises(ValueError, match="tag 'S-LOC' is not IOB2"):
        entities(["O", "S-LOC"])
