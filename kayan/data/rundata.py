"""The data of a run: train, dev and test sentences resolved from the config's ``data`` section.

Dev comes from the config, else from each training corpus (its own dev split, or a block carved
from the end of its train split, which training then leaves out); test comes from the config,
else from each training corpus's test split. Test data never serves model selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from kayan.config import DataSection
from kayan.data import corpora, hfdata
from kayan.data.labelmap import relabel
from kayan.data.schemes import label_types, split_tag
from kayan.data.sentence import Sentence
from kayan.errors import KayanError


@dataclass
class Split:
    """One role of a run (train, dev or test): its sentences and where they came from."""

    role: str
    refs: list[str]
    sentences: list[Sentence]
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    notes: list[str] = field(default_factory=list)  # what reading repaired or chose
    warnings: list[str] = field(default_factory=list)  # what is almost certainly a mistake, but can be meant


@dataclass
class RunData:
    train: Split
    dev: Split
    test: Split | None


def _load(role: str, refs: Sequence[str], section: DataSection, *, hold_out_dev: bool = False) -> Split:
    """Load and concatenate the sentences of ``refs``, with types mapped."""
    split = Split(role, list(refs), [])
    for ref in refs:
        dataset = corpora.load_split(ref, root=section.dir, verify=section.verify,
                               dev_fraction=section.dev_fraction, dev_split=section.dev_split, hold_out_dev=hold_out_dev,
                               columns=section.columns)
        split.sentences += relabel(dataset.sentences, section.label_map)
        split.files.update(dataset.files)
        split.notes += [f"{ref}: {note}" for note in [dataset.note, *dataset.report.notes()] if note]
    if not split.sentences:
        raise KayanError(f"data.{role} ({', '.join(refs)}) has no sentences; point it at a non-empty split or file")
    return split


def _default_refs(train_refs: Sequence[str], role: str) -> list[str]:
    """``X:dev`` for every training source X (shipped or carved); ``X:test`` where X ships a test split."""
    refs = []
    for ref in train_refs:
        if hfdata.is_dataset_ref(ref):  # its validation/test split, or dev carved from train
            refs += [found for found in [hfdata.role_ref(ref, role)] if found]
            continue
        name, _ = corpora.parse_ref(ref)
        if name not in corpora.REGISTRY:
            name = ref if Path(ref).is_file() else name
        if role == "dev" or (name in corpora.REGISTRY and role in corpora.get(name).splits):
            refs.append(f"{name}:{role}")
    return refs


def _check_labels(train: Split, other: Split) -> None:
    """Fail before training when dev or test has an entity type train lacks."""
    known = set(label_types(tag for s in train.sentences for tag in s.tags))
    for sentence in other.sentences:
        for i, (word, tag) in enumerate(zip(sentence.words, sentence.tags)):
            _, kind = split_tag(tag)
            if kind and kind not in known:
                raise KayanError(
                    f"{sentence.source}:{sentence.line + i}: data.{other.role} has type {kind!r} (word {word!r}) "
                    f"that the training data lacks (train types: {', '.join(sorted(known))}); "
                    f"map it with data.label_map (e.g. {{{kind}: O}}) or add training data"
                )


def load_run_data(section: DataSection, *, test: bool = True) -> RunData:
    """Resolve and load train, dev and test for a run, checking labels before any model loads.

    Args:
        section: the config's data section.
        test: False leaves the test split unread (``RunData.test`` is None).
    """
    if not section.train:
        raise KayanError("data.train is empty; give at least one CORPUS:SPLIT or file path")
    train = _load("train", section.train, section, hold_out_dev=not section.dev)
    if not label_types(tag for s in train.sentences for tag in s.tags):
        raise KayanError(f"data.train ({', '.join(section.train)}) has no entity in its {len(train.sentences)} sentences: "
                         "a model trained on it only ever answers O; check the tag column (data.columns) and data.label_map")
    dev = _load("dev", list(section.dev) or _default_refs(section.train, "dev"), section)
    test_refs = (list(section.test) or _default_refs(section.train, "test")) if test else []
    test = _load("test", test_refs, section) if test_refs else None
    for other in (dev, test):
        if other is not None:
            _check_labels(train, other)
    for earlier, later in ((train, dev), (train, test), (dev, test)):
        if later is not None:
            later.warnings += overlap_notes(earlier, later)
    return RunData(train, dev, test)


def overlap_notes(earlier: Split, later: Split) -> list[str]:
    """A warning when ``later`` repeats ``earlier``'s sentences: scores on it would not measure new text.

    Identical words and tags count as the same sentence; a few shared sentences (headlines, datelines)
    are normal, so only identical splits, or more than half of ``later`` repeated, are noted.

    >>> a = Split("train", ["x"], [Sentence(("في", "عمان"), ("O", "B-LOC"))])
    >>> overlap_notes(a, Split("test", ["x"], list(a.sentences)))
    ['data.test is identical to data.train (1 sentences): its scores say nothing about new text; give a different split']
    """
    seen = {(s.words, s.tags) for s in earlier.sentences}
    shared = sum((s.words, s.tags) in seen for s in later.sentences)
    where = f"data.{later.role} is identical to data.{earlier.role} ({len(later.sentences)} sentences)"
    if shared == len(later.sentences) and len(seen) == len({(s.words, s.tags) for s in later.sentences}):
        return [f"{where}: its scores say nothing about new text; give a different split"]
    if shared > len(later.sentences) / 2:
        return [f"data.{later.role} repeats {shared} of its {len(later.sentences)} sentences from data.{earlier.role}: "
                "its scores overstate what the model does on new text"]
    return []
