"""Tagging schemes as data, and the conversions between them.

Kayan works in word-level IOB2 (``B-X`` opens an entity, ``I-X`` continues it, ``O`` is outside).
Corpora in IOB1 or BIOES are converted on read, and every repair is counted so nothing changes
silently. A scheme is a small table: the prefixes it allows. The repair rule is the one
conlleval applies when it reads a file, so converting never changes the entities conlleval sees.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

OUTSIDE = "O"


@dataclass(frozen=True)
class Scheme:
    """A tagging scheme: its name and the prefixes a tag may carry."""

    name: str
    prefixes: frozenset[str]


SCHEMES = {
    "IOB1": Scheme("IOB1", frozenset("BI")),
    "IOB2": Scheme("IOB2", frozenset("BI")),
    "BIOES": Scheme("BIOES", frozenset("BIES")),
}


def split_tag(tag: str) -> tuple[str, str]:
    """Split a tag into (prefix, type); ``O`` gives ``("O", "")``.

    Args:
        tag: a tag such as ``B-PERS``; the type may itself contain ``-`` (``B-Population-Center``).

    Raises:
        ValueError: the tag has no ``P-`` prefix or an empty type.

    >>> split_tag("B-PERS"), split_tag("O"), split_tag("I-Population-Center")
    (('B', 'PERS'), ('O', ''), ('I', 'Population-Center'))
    """
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, kind = tag.partition("-")
    if not dash or len(prefix) != 1 or not kind or kind.startswith("-"):
        raise ValueError(f"tag {tag!r} is not O or PREFIX-TYPE")
    return prefix, kind


def check_tag(tag: str, scheme: str) -> str | None:
    """Return why ``tag`` is not valid in ``scheme``, or None when it is.

    >>> check_tag("S-LOC", "IOB2")
    "prefix 'S' is not used in IOB2 (allowed: B, I and O)"
    >>> check_tag("B-LOC", "BIOES") is None
    True
    """
    allowed = SCHEMES[scheme].prefixes
    try:
        prefix, _ = split_tag(tag)
    except ValueError as error:
        return str(error)
    if prefix != OUTSIDE and prefix not in allowed:
        return f"prefix {prefix!r} is not used in {scheme} (allowed: {', '.join(sorted(allowed))} and O)"
    return None


def iob_to_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """Make every entity open with ``B-``: an ``I-X`` not continuing an ``X`` becomes ``B-X``.

    This converts IOB1 to IOB2 and repairs IOB2 files with stray ``I-`` openers; it keeps the
    entities conlleval (and seqeval's default mode) reads from the tags unchanged.

    Returns:
        The IOB2 tags and the number of tags changed.

    >>> iob_to_iob2(["I-PERS", "I-PERS", "O", "I-LOC", "B-LOC", "I-ORG"])
    (['B-PERS', 'I-PERS', 'O', 'B-LOC', 'B-LOC', 'B-ORG'], 3)
    """
    out: list[str] = []
    previous_type = ""
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and kind != previous_type:
            tag = f"B-{kind}"
        out.append(tag)
        previous_type = kind
    return out, sum(a != b for a, b in zip(tags, out))


def bioes_to_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """Convert BIOES (``S-`` single, ``E-`` end) to IOB2, then repair stray openers.

    >>> bioes_to_iob2(["S-LOC", "B-PERS", "E-PERS", "O"])
    (['B-LOC', 'B-PERS', 'I-PERS', 'O'], 0)
    """
    mapped = [{"S": "B", "E": "I"}.get(tag[0], tag[0]) + tag[1:] if tag != OUTSIDE else tag for tag in tags]
    return iob_to_iob2(mapped)


def iob2_to_bioes(tags: Sequence[str]) -> list[str]:
    """Convert IOB2 tags to BIOES (the last word of an entity gets ``E-``, a one-word entity ``S-``).

    >>> iob2_to_bioes(["B-LOC", "B-PERS", "I-PERS", "I-PERS", "O"])
    ['S-LOC', 'B-PERS', 'I-PERS', 'E-PERS', 'O']
    """
    out = []
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        following = split_tag(tags[i + 1]) if i + 1 < len(tags) else (OUTSIDE, "")
        ends = following != ("I", kind)
        if prefix == "B":
            out.append(f"S-{kind}" if ends else tag)
        elif prefix == "I":
            out.append(f"E-{kind}" if ends else tag)
        else:
            out.append(tag)
    return out


def to_iob2(tags: Sequence[str], scheme: str) -> tuple[list[str], int]:
    """Convert ``tags`` from ``scheme`` to IOB2; returns the tags and the number of repairs.

    >>> to_iob2(["I-ORG", "I-ORG"], "IOB1")
    (['B-ORG', 'I-ORG'], 1)
    """
    if scheme == "BIOES":
        return bioes_to_iob2(tags)
    return iob_to_iob2(tags)


def count_repairs(before: Sequence[str], after: Sequence[str]) -> Counter:
    """Count the changed tags by kind of change, e.g. ``{"I-PERS -> B-PERS": 3}``.

    >>> dict(count_repairs(["I-LOC", "O"], ["B-LOC", "O"]))
    {'I-LOC -> B-LOC': 1}
    """
    return Counter(f"{a} -> {b}" for a, b in zip(before, after) if a != b)
