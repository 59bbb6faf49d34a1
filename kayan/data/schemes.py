"""The one tag grammar: tags, entities, schemes as data, the IOB2 transitions, scheme conversions.

Kayan works in word-level IOB2 (``B-X`` opens an entity, ``I-X`` continues it, ``O`` is outside).
A tag is ``O`` or ``PREFIX-TYPE`` (:func:`split_tag`); every module that reads a tag's prefix or
type, the label list a model gets (:func:`label_list`), or the entities of a tag sequence
(:func:`entities`, as seqeval reads them), asks this module. A scheme is a small table: the prefixes it allows; :data:`IOB2_TRANSITIONS` is the table
of which IOB2 tag may follow which (the decoder's constraints). Corpora in IOB1 or BIOES are
converted on read, and every repair is counted so nothing changes silently. The repair rule is the
one conlleval applies when it reads a file, so converting never changes the entities conlleval sees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

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
    "BILOU": Scheme("BILOU", frozenset("BILU")),  # BIOES by other letters: L(ast) = E, U(nit) = S
}


@lru_cache(maxsize=4096)
def split_tag(tag: str, scheme: str | None = None) -> tuple[str, str]:
    """Split a tag into (prefix, type); ``O`` gives ``("O", "")``.

    Args:
        tag: a tag such as ``B-PERS``; the type may itself contain ``-`` (``B-Population-Center``),
            but neither starts nor ends with it (seqeval's strict mode would strip it: ``B-X-`` would
            be type ``X-`` in one mode and ``X`` in the other).
        scheme: also require a prefix that this scheme uses (``"IOB2"``: ``B`` or ``I``).

    Raises:
        ValueError: the tag is not ``O`` or ``PREFIX-TYPE`` with a one-letter prefix, or (with
            ``scheme``) its prefix is not one the scheme uses.

    >>> split_tag("B-PERS"), split_tag("O"), split_tag("I-Population-Center")
    (('B', 'PERS'), ('O', ''), ('I', 'Population-Center'))
    >>> split_tag("S-LOC", "IOB2")
    Traceback (most recent call last):
    ...
    ValueError: tag 'S-LOC' is not IOB2: expected 'O', 'B-TYPE' or 'I-TYPE'
    """
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, kind = tag.partition("-")
    well_formed = dash and len(prefix) == 1 and kind and not kind.startswith("-") and not kind.endswith("-")
    if scheme is not None and not (well_formed and prefix in SCHEMES[scheme].prefixes):
        forms = ["'O'", *(f"'{p}-TYPE'" for p in sorted(SCHEMES[scheme].prefixes))]
        raise ValueError(f"tag {tag!r} is not {scheme}: expected {', '.join(forms[:-1])} or {forms[-1]}")
    if not well_formed:
        raise ValueError(f"tag {tag!r} is not O or PREFIX-TYPE")
    return prefix, kind


def label_types(labels: Iterable[str]) -> list[str]:
    """The sorted entity types of a label list (or of any tags), ``O`` left out.

    Raises:
        ValueError: a label is not ``O`` or ``PREFIX-TYPE``.

    >>> label_types(["O", "B-PERS", "I-PERS", "B-LOC"])
    ['LOC', 'PERS']
    """
    return sorted({split_tag(tag)[1] for tag in labels} - {""})


def label_list(tag_sets: Iterable[Iterable[str]]) -> list[str]:
    """The sorted label set of the training tags: ``O`` first, then ``B-``/``I-`` of each type.

    Every type gets both ``B-`` and ``I-`` so a one-word-only type can still be continued.

    >>> label_list([["O", "B-PERS", "B-LOC", "I-LOC"]])
    ['O', 'B-LOC', 'I-LOC', 'B-PERS', 'I-PERS']
    """
    types = label_types(tag for tags in tag_sets for tag in tags)
    return [OUTSIDE] + [f"{prefix}-{kind}" for kind in types for prefix in "BI"]


def inside_tag(tag: str) -> str:
    """The tag of a word inside ``tag``'s entity: ``I-X`` for ``B-X`` and ``I-X``, ``O`` for ``O``.

    >>> inside_tag("B-LOC"), inside_tag("I-LOC"), inside_tag("O")
    ('I-LOC', 'I-LOC', 'O')
    """
    prefix, kind = split_tag(tag, "IOB2")
    return OUTSIDE if prefix == OUTSIDE else f"I-{kind}"


MODES = ("default", "strict")
"""The two ways seqeval reads entities out of IOB2 tags (see :func:`entities`)."""


def check_mode(mode: str) -> None:
    """Raise :class:`ValueError` unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {MODES}")


def entities(tags: Sequence[str], *, mode: str = "default") -> list[tuple[str, int, int]]:
    """Read the entities out of one sentence's IOB2 tags, as seqeval does.

    * ``"default"`` — seqeval's default mode (``get_entities``), which is ``conlleval``'s: ``B-X``
      starts an entity, and an ``I-X`` that does not continue an ``X`` entity (after ``O``, after
      another type, or at the start of a sentence) starts a new one.
    * ``"strict"`` — seqeval's ``mode="strict", scheme=IOB2`` (``Tokens(tags, IOB2).entities``): an
      entity is exactly ``B-X I-X*``; an ``I-X`` that does not continue an ``X`` entity belongs to
      no entity at all.

    tests/test_schemes.py proves it equal to those two seqeval functions on random sequences. It
    is not seqeval's own because importing ``seqeval.metrics`` imports scikit-learn, which
    ``kayan.load`` (spans from predicted tags) should not pay for.

    Args:
        tags: one IOB2 tag per word.
        mode: ``"default"`` or ``"strict"``.

    Returns:
        ``(type, start, end)`` triples, ``end`` exclusive, in order of ``start``.

    Raises:
        ValueError: for an unknown mode or a tag that is not IOB2.

    >>> entities(["B-PERS", "I-PERS", "O", "I-LOC", "B-ORG", "I-LOC"])
    [('PERS', 0, 2), ('LOC', 3, 4), ('ORG', 4, 5), ('LOC', 5, 6)]
    >>> entities(["B-PERS", "I-PERS", "O", "I-LOC", "B-ORG", "I-LOC"], mode="strict")
    [('PERS', 0, 2), ('ORG', 4, 5)]
    """
    check_mode(mode)
    strict = mode == "strict"
    found = []
    kind, start = None, 0  # the open entity, if any
    for i, tag in enumerate(tags):
        prefix, type_ = split_tag(tag, "IOB2")
        if prefix == "I" and type_ == kind:
            continue
        if kind is not None:
            found.append((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and not strict):
            kind, start = type_, i
    if kind is not None:
        found.append((kind, start, len(tags)))
    return found


def entity_counts(tag_lists: Iterable[Sequence[str]], *, mode: str = "default") -> Counter:
    """Entities per type over sentences of IOB2 tags, read as :func:`entities` reads them.

    >>> entity_counts([["B-LOC", "I-LOC", "B-PER"], ["I-PER"]]), entity_counts([["I-PER"]], mode="strict")
    (Counter({'PER': 2, 'LOC': 1}), Counter())
    """
    return Counter(kind for tags in tag_lists for kind, _, _ in entities(tags, mode=mode))


START = "<START>"
"""The previous tag at the start of a sentence."""

ANY, SAME = "any", "same"
"""Whether an allowed transition holds for any pair of entity types, or only for the same type."""

IOB2_TRANSITIONS: Mapping[tuple[str, str], str] = {
    (START, "O"): ANY, (START, "B"): ANY,
    ("O", "O"): ANY, ("O", "B"): ANY,
    ("B", "O"): ANY, ("B", "B"): ANY, ("B", "I"): SAME,
    ("I", "O"): ANY, ("I", "B"): ANY, ("I", "I"): SAME,
}  # fmt: skip
"""The allowed IOB2 transitions, by (previous prefix, current prefix); any pair not listed (such as
``O`` → ``I``, or the start → ``I``) is forbidden."""


def allowed(prev: str, cur: str) -> bool:
    """Whether ``cur`` may follow ``prev`` in a valid IOB2 sequence (``prev`` may be :data:`START`).

    Args:
        prev: the previous tag, or :data:`START` at the start of a sentence.
        cur: the current tag.

    Returns:
        ``True`` when :data:`IOB2_TRANSITIONS` allows the transition.

    Raises:
        ValueError: a tag that is not IOB2.

    >>> allowed("B-PERS", "I-PERS"), allowed("O", "I-PERS"), allowed("B-LOC", "I-PERS")
    (True, False, False)
    >>> allowed(START, "I-LOC"), allowed(START, "B-LOC"), allowed("I-LOC", "O")
    (False, True, True)
    """
    prev_prefix, prev_kind = (START, "") if prev == START else split_tag(prev, "IOB2")
    cur_prefix, cur_kind = split_tag(cur, "IOB2")
    rule = IOB2_TRANSITIONS.get((prev_prefix, cur_prefix))
    return rule == ANY or (rule == SAME and prev_kind == cur_kind)


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
    return iob_to_iob2(iob_prefixes(tags, "BIOES"))


_IOB_PREFIX = {"BIOES": {"S": "B", "E": "I"}, "BILOU": {"U": "B", "L": "I"}}


def iob_prefixes(tags: Sequence[str], scheme: str) -> list[str]:
    """The scheme's own prefixes renamed to IOB's (``S-``/``U-`` → ``B-``, ``E-``/``L-`` → ``I-``): the
    conversion itself, so that what :func:`to_iob2` changes after it is a repair.

    >>> iob_prefixes(["U-LOC", "B-PER", "L-PER"], "BILOU")
    ['B-LOC', 'B-PER', 'I-PER']
    """
    mapping = _IOB_PREFIX.get(scheme, {})
    return [mapping.get(tag[0], tag[0]) + tag[1:] if tag != OUTSIDE else tag for tag in tags]


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
    return iob_to_iob2(iob_prefixes(tags, scheme))


def detect_scheme(tags: Iterable[str]) -> str:
    """The scheme a file's tags follow: ``BILOU`` when ``L-``/``U-`` occur, ``BIOES`` when ``S-``/``E-`` do,
    else ``IOB2`` (whose repair reads IOB1 as well).

    >>> detect_scheme(["B-PER", "E-PER", "O"]), detect_scheme(["U-LOC", "O"]), detect_scheme(["I-LOC", "O"])
    ('BIOES', 'BILOU', 'IOB2')
    """
    prefixes = {tag[:2] for tag in tags}
    if prefixes & {"L-", "U-"}:
        return "BILOU"
    return "BIOES" if prefixes & {"S-", "E-"} else "IOB2"


def count_repairs(before: Sequence[str], after: Sequence[str]) -> Counter:
    """Count the changed tags by kind of change, e.g. ``{"I-PERS -> B-PERS": 3}``.

    >>> dict(count_repairs(["I-LOC", "O"], ["B-LOC", "O"]))
    {'I-LOC -> B-LOC': 1}
    """
    return Counter(f"{a} -> {b}" for a, b in zip(before, after) if a != b)
