"""The data of a run: train, dev and test sentences resolved from the config's ``data`` section.

Dev comes from the config, else from each training corpus (its own dev split, or a block carved
from the end of its train split, which training then leaves out); test comes from the config,
else from each training corpus's test split. Test data never serves model selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from kayan.config import DataSection
from kayan.data import corpora, hfdata, overlap
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
    unannotated: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source file -> the run's types its corpus never tags


@dataclass
class RunData:
    train: Split
    dev: Split
    test: Split | None


def corpus_name(ref: str) -> str:
    """The corpus a reference reads, whatever its split: what ``data.label_maps`` keys it by, and what tells
    a training corpus from dev's and test's own (a registry name, a file's path, a dataset without its split).

    >>> corpus_name("aqmar:train"), corpus_name("anercorp"), corpus_name("my/file.txt:dev"), corpus_name("parquet:x.parquet:train")
    ('aqmar', 'anercorp', 'my/file.txt', 'parquet:x.parquet')
    """
    if hfdata.is_dataset_ref(ref):
        split = hfdata.parse(ref).split
        return ref[: len(ref) - len(split) - 1] if split else ref
    name, split = corpora.parse_ref(ref)
    if name in corpora.REGISTRY or (split and not Path(ref).is_file()):  # a file's path may itself hold a colon
        return name
    return ref


def corpus_label_map(ref: str, section: DataSection) -> Mapping[str, str] | None:
    """The ``data.label_maps`` entry of ``ref``'s corpus as one mapping: a mapping, the name of one its registry
    entry holds, or a list of those applied in turn (``[anercorp, {MISC: O}]``)."""
    name = corpus_name(ref)
    chosen = section.label_maps.get(name)
    if chosen is None:
        return None
    combined: dict[str, str] = {}
    for mapping in chosen if isinstance(chosen, list) else [chosen]:
        if isinstance(mapping, str):
            named = corpora.REGISTRY[name].label_maps if name in corpora.REGISTRY else {}
            if mapping not in named:
                raise KayanError(f"config key data.label_maps.{name} names the map {mapping!r}, which {name} does not have "
                                 f"(it has: {', '.join(named) or 'none'}); name one of those, or give the map itself, e.g. {{PER: PERS}}")
            mapping = named[mapping]
        combined = then(combined, mapping)
    return combined


def then(first: Mapping[str, str], second: Mapping[str, str]) -> dict[str, str]:
    """One type map doing ``first``, then ``second`` (a type ``first`` drops stays dropped).

    >>> then({"PER": "PERS", "MIS1": "MISC"}, {"MISC": "O", "LOC": "GPE"})
    {'PER': 'PERS', 'MIS1': 'O', 'MISC': 'O', 'LOC': 'GPE'}
    """
    combined = {kind: target if target == "O" else second.get(target, target) for kind, target in first.items()}
    for kind, target in second.items():
        combined.setdefault(kind, target)
    return combined


def _load_parts(role: str, refs: Sequence[str], section: DataSection, *,
                hold_out_dev: Callable[[str], bool] = lambda ref: False) -> tuple[Split, list[list[Sentence]]]:
    """Load the sentences of ``refs``, with types mapped (the ref's corpus map, then ``data.label_map``);
    returns the split and each ref's own sentences."""
    split, parts = Split(role, list(refs), []), []
    for ref in refs:
        dataset = corpora.load_split(ref, root=section.dir, verify=section.verify,
                               dev_fraction=section.dev_fraction, dev_split=section.dev_split,
                               hold_out_dev=hold_out_dev(ref), columns=section.columns)
        parts.append(relabel(relabel(dataset.sentences, corpus_label_map(ref, section)), section.label_map))
        split.sentences += parts[-1]
        split.files.update(dataset.files)
        split.notes += [f"{ref}: {note}" for note in [dataset.note, *dataset.report.notes()] if note]
    if not split.sentences:
        raise KayanError(f"data.{role} ({', '.join(refs)}) has no sentences; point it at a non-empty split or file")
    return split, parts


def _load(role: str, refs: Sequence[str], section: DataSection) -> Split:
    """Load and concatenate the sentences of ``refs``, with types mapped."""
    return _load_parts(role, refs, section)[0]


def _holds_out_dev(section: DataSection) -> Callable[[str], bool]:
    """Whether a training reference leaves out the dev block carved from it: always when ``data.dev`` is
    empty (dev is those blocks), else when ``data.dev`` names that corpus's dev (``anercorp:dev``)."""
    named = {corpus_name(ref) for ref in section.dev if corpora.parse_ref(ref)[1] == "dev"}
    return lambda ref: not section.dev or corpus_name(ref) in named


def _drop_held_out_text(train: Split, parts: list[list[Sentence]], held_out: Sequence[Split]) -> None:
    """Leave out the sentences of training corpora that are not dev's or test's own corpus and repeat
    dev or test text (:func:`kayan.data.overlap.repeats`: NewsFANE retells ANERcorp); a note counts them."""
    home = {corpus_name(ref) for split in held_out for ref in split.refs}
    held = [s.words for split in held_out for s in split.sentences]
    for index, (ref, sentences) in enumerate(zip(train.refs, parts)):
        if corpus_name(ref) in home:  # a corpus's own split decides what its train and test share
            continue
        flags = overlap.repeats([s.words for s in sentences], held)
        if any(flags):
            parts[index] = [s for s, repeated in zip(sentences, flags) if not repeated]
            train.notes.append(f"{ref}: left out {sum(flags)} of its {len(sentences)} sentences that repeat the text "
                               f"of data.dev or data.test ({', '.join(sorted(home))})")
    train.sentences = [s for part in parts for s in part]


def _find_unannotated(train: Split, parts: list[list[Sentence]]) -> None:
    """Where a training corpus never tags a type the others do, record it per source file (its O words are
    then taught "O or that type", :mod:`kayan.training.partial_labels`), with a note."""
    kinds = [set(label_types(tag for s in part for tag in s.tags)) for part in parts]
    everything = set().union(*kinds)
    for ref, part, own in zip(train.refs, parts, kinds):
        missing = tuple(sorted(everything - own))
        if missing and part:
            train.unannotated.update({s.source: missing for s in part})
            train.notes.append(f"{ref}: never tags {', '.join(missing)}: its O words are not taught as O against "
                               f"{'that type' if len(missing) == 1 else 'those types'} (data.partial_labels)")


def _default_refs(train_refs: Sequence[str], role: str) -> list[str]:
    """``X:dev`` for every training source X (shipped or carved); ``X:test`` where X ships a test split."""
    refs = []
    for ref in train_refs:
        if hfdata.is_dataset_ref(ref):  # its validation/test split, or dev carved from train
            refs += [found for found in [hfdata.role_ref(ref, role)] if found]
            continue
        name = corpus_name(ref)
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
    _check_label_maps(section)
    train, parts = _load_parts("train", section.train, section, hold_out_dev=_holds_out_dev(section))
    if not label_types(tag for s in train.sentences for tag in s.tags):
        raise KayanError(f"data.train ({', '.join(section.train)}) has no entity in its {len(train.sentences)} sentences: "
                         "a model trained on it only ever answers O; check the tag column (data.columns) and data.label_map")
    dev = _load("dev", list(section.dev) or _default_refs(section.train, "dev"), section)
    test_refs = (list(section.test) or _default_refs(section.train, "test")) if test else []
    test = _load("test", test_refs, section) if test_refs else None
    _drop_held_out_text(train, parts, [split for split in (dev, test) if split is not None])
    if section.partial_labels:
        _find_unannotated(train, parts)
    for other in (dev, test):
        if other is not None:
            _check_labels(train, other)
    for earlier, later in ((train, dev), (train, test), (dev, test)):
        if later is not None:
            later.warnings += overlap_notes(earlier, later)
    return RunData(train, dev, test)


def _check_label_maps(section: DataSection) -> None:
    """Every ``data.label_maps`` key names a corpus the run reads."""
    read = {corpus_name(ref) for ref in [*section.train, *section.dev, *section.test]}
    for name in section.label_maps:
        if name not in read:
            raise KayanError(f"config key data.label_maps.{name} names no corpus of data.train, data.dev or data.test "
                             f"({', '.join(sorted(read))}); key it by one of those")


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
