"""A label map: a corpus's entity types renamed (``{"PER": "PERS"}``), a type mapped to ``O`` dropped.

Training applies the config's ``data.label_map`` to every split it reads, and scoring applies the
same map (``--label-map``, or the model's own) to the gold sentences: both go through :func:`relabel`.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from kayan.data.schemes import split_tag
from kayan.data.sentence import Sentence


def map_types(tags: Sequence[str], label_map: Mapping[str, str] | None) -> tuple[str, ...]:
    """Rename the entity types of ``tags``; a type mapped to ``O`` is dropped.

    >>> map_types(["B-PER", "I-PER", "B-MIS1"], {"PER": "PERS", "MIS1": "O"})
    ('B-PERS', 'I-PERS', 'O')
    """
    if not label_map:
        return tuple(tags)
    out = []
    for tag in tags:
        prefix, kind = split_tag(tag)
        target = label_map.get(kind, kind)
        out.append("O" if prefix == "O" or target == "O" else f"{prefix}-{target}")
    return tuple(out)


def relabel(sentences: Iterable[Sentence], label_map: Mapping[str, str] | None) -> list[Sentence]:
    """The sentences with their tags' entity types renamed (:func:`map_types`); words, source and line kept.

    >>> relabel([Sentence(("زار", "بغداد"), ("O", "B-LOC"), "f.txt", 3)], {"LOC": "GPE"})
    [Sentence(words=('زار', 'بغداد'), tags=('O', 'B-GPE'), source='f.txt', line=3)]
    """
    return [Sentence(s.words, map_types(s.tags, label_map), s.source, s.line) for s in sentences]
