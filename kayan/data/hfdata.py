"""Corpora as 🤗 ``datasets``: read dataset references, and export any corpus as a DatasetDict.

A corpus reference may name a dataset instead of a CoNLL file:

- ``hf:OWNER/NAME[:CONFIG]:SPLIT``: :func:`datasets.load_dataset` (the Hub, where reachable, or a
  local folder of data files, e.g. one written by ``kayan data export``);
- ``parquet:PATH[:SPLIT]`` and ``json:PATH[:SPLIT]``: a file (its one split is ``train``) or a folder;
- ``PATH[:SPLIT]`` where PATH is a folder written by ``save_to_disk``.

Tokens and tags are found the way the ecosystem stores them: a ``tokens`` column and a ``ner_tags``
column of ``ClassLabel`` ids (WikiANN, CoNLL-2003) or of tag strings; ``data.columns``
(``{tokens: ..., tags: ...}``) names other columns. Rows get every check a CoNLL line gets: tags
against the scheme (IOB1/IOB2, or BIOES when its prefixes appear), direction marks removed and
counted, stray ``I-`` openers repaired and counted; empty rows are skipped and counted; errors name
the dataset and the row. A dataset without a validation split gets a dev block carved from train,
as a CoNLL corpus does. :func:`export` writes the other direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from kayan.checks import in_range
from kayan.data.conll import ONLY_MARKS, STRIP_MARKS, TOKEN_BREAK, ReadReport
from kayan.data.dataset import CorpusSplit, carve
from kayan.data.schemes import OUTSIDE, check_tag, count_repairs, detect_scheme, iob_prefixes, to_iob2
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.files import sha256_of

PREFIXES = ("hf:", "parquet:", "json:")
TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "labels", "ner")
COLUMN_KEYS = ("tokens", "tags")
DEV_NAMES = ("validation", "dev", "val", "valid")
_SAVED_MARKERS = ("dataset_dict.json", "state.json")


@dataclass
class DatasetReadReport(ReadReport):
    """A :class:`ReadReport` that also counts rows without tokens (skipped, like blank lines)."""

    empty_rows: int = 0

    def notes(self) -> list[str]:
        lines = super().notes()
        return lines + ([f"skipped {self.empty_rows:,} empty row(s)"] if self.empty_rows else [])


@dataclass(frozen=True)
class Ref:
    """A parsed dataset reference: its kind (``hf``, ``parquet``, ``json``, ``disk``), target and split."""

    text: str
    kind: str
    target: str
    config: str | None
    split: str | None


def _is_saved_folder(path: str) -> bool:
    return bool(path) and Path(path).is_dir() and any((Path(path) / m).is_file() for m in _SAVED_MARKERS)


def is_dataset_ref(ref: str) -> bool:
    """Whether ``ref`` names a dataset rather than a registry corpus or a CoNLL file.

    >>> is_dataset_ref("hf:unimelb-nlp/wikiann:ar:train"), is_dataset_ref("anercorp:test")
    (True, False)
    """
    return ref.startswith(PREFIXES) or _is_saved_folder(ref) or _is_saved_folder(ref.rpartition(":")[0])


def parse(ref: str) -> Ref:
    """Parse a dataset reference.

    >>> parse("hf:unimelb-nlp/wikiann:ar:validation")
    Ref(text='hf:unimelb-nlp/wikiann:ar:validation', kind='hf', target='unimelb-nlp/wikiann', config='ar', split='validation')
    >>> parse("parquet:/no/such/file.parquet:test").split
    'test'
    """
    kind, sep, body = ref.partition(":")
    if not sep or f"{kind}:" not in PREFIXES:
        kind, body = "disk", ref
    if kind == "hf":
        parts = body.split(":")
        if len(parts) > 3 or not parts[0]:
            raise KayanError(f"{ref}: write hf:OWNER/NAME[:CONFIG]:SPLIT, e.g. hf:unimelb-nlp/wikiann:ar:train")
        config = parts[1] if len(parts) == 3 else None
        return Ref(ref, kind, parts[0], config, parts[-1] if len(parts) > 1 else None)
    if Path(body).exists() or ":" not in body:
        return Ref(ref, kind, body, None, None)
    target, _, split = body.rpartition(":")
    return Ref(ref, kind, target, None, split or None)


def _load_dict(ref: Ref) -> Mapping[str, Any]:
    """The splits of the referenced dataset, as a DatasetDict (a single Dataset becomes ``train``)."""
    import datasets

    try:
        if ref.kind == "hf":
            loaded = datasets.load_dataset(ref.target, ref.config)
        elif _is_saved_folder(ref.target):
            loaded = datasets.load_from_disk(ref.target)
        elif not Path(ref.target).exists():
            raise KayanError(f"{ref.text}: {ref.target} does not exist; check the path")
        elif Path(ref.target).is_dir():
            loaded = datasets.load_dataset(ref.kind, data_dir=ref.target)
        else:
            loaded = datasets.load_dataset(ref.kind, data_files={"train": ref.target})
    except KayanError:
        raise
    except (OSError, ValueError, TypeError, datasets.exceptions.DatasetGenerationError) as error:  # network, missing files, bad format
        if isinstance(error, datasets.exceptions.DatasetGenerationError) and error.__cause__ is not None:
            error = error.__cause__  # "An error occurred while generating the dataset" says nothing: its cause does
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        where = "the Hub is unreachable or the name is wrong; use a local copy (parquet:PATH, a save_to_disk folder)" \
            if ref.kind == "hf" else f"check that it holds {ref.kind} data"
        raise KayanError(f"{ref.text}: could not load the dataset ({type(error).__name__}: {first[:200]}); {where}") from None
    return {"train": loaded} if isinstance(loaded, datasets.Dataset) else loaded


def _find_column(names: Sequence[str], wanted: str | None, defaults: Sequence[str], key: str, ref: str) -> str:
    if wanted:
        if wanted not in names:
            raise KayanError(f"{ref}: data.columns.{key} names column {wanted!r}, which the dataset lacks (columns: {', '.join(names)})")
        return wanted
    for name in defaults:
        if name in names:
            return name
    raise KayanError(
        f"{ref}: no {key} column (looked for {', '.join(defaults)}; the dataset has {', '.join(names)}); "
        f"name it with data.columns (e.g. --set data.columns.{key}=COLUMN)"
    )


def _columns(dataset: Any, columns: Mapping[str, str] | None, ref: str) -> tuple[str, str, list[str] | None]:
    """The token column, the tag column, and the tag names when tags are ``ClassLabel`` ids."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(COLUMN_KEYS))
    if unknown:
        raise KayanError(f"data.columns: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(COLUMN_KEYS)}")
    names = list(dataset.column_names)
    tokens = _find_column(names, columns.get("tokens"), TOKEN_COLUMNS, "tokens", ref)
    tags = _find_column(names, columns.get("tags"), TAG_COLUMNS, "tags", ref)
    inner = getattr(dataset.features[tags], "feature", None)
    label_names = list(inner.names) if inner is not None and hasattr(inner, "names") else None
    return tokens, tags, label_names


def _row_tags(raw: Sequence[Any], label_names: list[str] | None, where: str) -> list[str]:
    """One row's tags as strings (``ClassLabel`` ids mapped to their names)."""
    out = []
    for tag in raw:
        if isinstance(tag, str):
            out.append(tag)
        elif label_names is not None and in_range(tag, 0, len(label_names) - 1, whole=True):
            out.append(label_names[tag])
        else:
            fix = "store tags as a ClassLabel sequence or as strings" if label_names is None else \
                f"ids must be 0..{len(label_names) - 1}"
            raise KayanError(f"{where}: tag {tag!r} has no name; {fix}")
    return out


def _row_sentence(tokens: Any, tags: list[str], scheme: str, report: DatasetReadReport, where: str) -> tuple[list, list]:
    """Check one row like a CoNLL sentence; returns its words and its (unrepaired) tags."""
    if len(tokens) != len(tags):
        raise KayanError(f"{where}: {len(tokens)} tokens but {len(tags)} tags; each token needs exactly one tag")
    words, kept = [], []
    for position, (token, tag) in enumerate(zip(tokens, tags)):
        if not isinstance(token, str):
            raise KayanError(f"{where}, token {position}: {token!r} is not a string; the token column must hold strings")
        problem = check_tag(tag, scheme)
        if problem:
            raise KayanError(f"{where}, token {position} ({token[:40]!r}): tag {tag!r}: {problem}; fix the dataset")
        word = token.translate(STRIP_MARKS).strip()
        report.direction_marks_removed += len(token.strip()) - len(word)
        if TOKEN_BREAK.search(word):
            raise KayanError(f"{where}, token {position} ({word[:40]!r}): a token holds a space, tab or line end; "
                             "split it into one token per word (CoNLL files cannot hold it either)")
        if not word:
            if tag != OUTSIDE:
                raise KayanError(f"{where}, token {position}: an empty token is tagged {tag!r}; remove it from the row")
            report.dropped_tokens[ONLY_MARKS] += 1
            continue
        words.append(word)
        kept.append(tag)
    return words, kept


def to_sentences(dataset: Any, ref: str, *, columns: Mapping[str, str] | None = None) -> tuple[list[Sentence], list[tuple], DatasetReadReport, str]:
    """Read one split's rows as IOB2 sentences, checked like a CoNLL file.

    Args:
        dataset: a :class:`datasets.Dataset`.
        ref: its reference, named in every message (``parquet:x.parquet:train row 12``).
        columns: ``{"tokens": ..., "tags": ...}`` overriding the column names found.

    Returns:
        The sentences, their raw tags (before repairs), the report and the scheme read.
    """
    token_column, tag_column, label_names = _columns(dataset, columns, ref)
    all_tokens, all_tags = dataset[token_column], dataset[tag_column]
    report = DatasetReadReport(files=[ref])
    named = []
    for row, (tokens, raw) in enumerate(zip(all_tokens, all_tags)):
        if tokens is None or raw is None or not isinstance(tokens, (list, tuple)) or not isinstance(raw, (list, tuple)):
            raise KayanError(f"{ref} row {row}: columns {token_column!r} and {tag_column!r} must hold lists, got {tokens!r}")
        named.append(_row_tags(raw, label_names, f"{ref} row {row}"))
    scheme = detect_scheme(label_names or sorted({t for tags in named for t in tags}))
    sentences, raw_tags = [], []
    for row, (tokens, tags) in enumerate(zip(all_tokens, named)):
        words, kept = _row_sentence(tokens, tags, scheme, report, f"{ref} row {row}")
        if not words:
            report.empty_rows += 1
            continue
        iob2, _ = to_iob2(kept, scheme)
        report.repairs.update(count_repairs(iob_prefixes(kept, scheme), iob2))
        raw_tags.append(tuple(kept))
        sentences.append(Sentence(tuple(words), tuple(iob2), f"{ref} row {row}", 0))
    if not sentences:
        raise KayanError(f"{ref}: no sentences (every row is empty); point at a split with tokens")
    report.sentences, report.tokens = len(sentences), sum(len(s) for s in sentences)
    return sentences, raw_tags, report, scheme


def _pick_split(splits: Sequence[str], wanted: str | None, ref: str) -> tuple[str, bool]:
    """The split to read for ``wanted``, and whether dev/train must be carved from ``train``."""
    wanted = wanted or "train"
    has_dev = any(name in splits for name in DEV_NAMES)
    if wanted in splits:
        return wanted, wanted == "train" and not has_dev
    if wanted in DEV_NAMES:
        for name in DEV_NAMES:
            if name in splits:
                return name, False
        if "train" in splits:
            return "train", True
    choices = list(splits) + ([] if has_dev or "train" not in splits else ["dev (carved from train)"])
    raise KayanError(f"{ref}: the dataset has no split {wanted!r}; choose one of: {', '.join(choices)}")


def _files_of(ref: Ref, dataset: Any) -> dict[str, str]:
    """The files read, with their sha256: the data files of a local source, else the Arrow cache."""
    target = Path(ref.target)
    if ref.kind in ("parquet", "json") and target.is_file():
        paths = [target]
    elif ref.kind in ("parquet", "json") and target.is_dir() and not _is_saved_folder(ref.target):
        paths = sorted(p for p in target.rglob(f"*.{ref.kind}*") if p.is_file())
    else:
        paths = sorted({Path(entry["filename"]) for entry in getattr(dataset, "cache_files", []) or []})
    return {str(path): sha256_of(path) for path in paths if path.is_file()}


def load_split(ref: str, *, columns: Mapping[str, str] | None = None, dev_fraction: float = 0.1, hold_out_dev: bool = False,
         dev_split: str = "end"):
    """Load a dataset reference as a :class:`kayan.data.dataset.CorpusSplit` (IOB2 sentences and a read report).

    Args:
        ref: ``hf:OWNER/NAME[:CONFIG]:SPLIT``, ``parquet:PATH[:SPLIT]``, ``json:PATH[:SPLIT]`` or a
            ``save_to_disk`` folder ``PATH[:SPLIT]``; ``dev`` means the validation split, else the
            last ``dev_fraction`` of train.
        columns: names of the token and tag columns when they are not the usual ones.
        dev_fraction: size of the carved dev block.
        hold_out_dev: for ``train`` of a dataset without validation, leave the carved block out.
    """
    parsed = parse(ref)
    splits = _load_dict(parsed)
    source, carved = _pick_split(list(splits), parsed.split, ref)
    name = ref if parsed.split else f"{ref}:{source}"
    sentences, raw_tags, report, scheme = to_sentences(splits[source], name, columns=columns)
    dataset = CorpusSplit(name, sentences, raw_tags, report, scheme, _files_of(parsed, splits[source]))
    if not carved:
        return dataset
    wanted = "dev" if (parsed.split or "train") in DEV_NAMES else "train"
    return carve(dataset, wanted, dev_fraction, hold_out_dev, dev_split)


def role_ref(ref: str, role: str) -> str | None:
    """The reference of ``role`` (``dev`` or ``test``) beside a training dataset reference, if it has one.

    ``dev`` always exists (the validation split, or a block carved from train); ``test`` only
    where the dataset has a ``test`` split.
    """
    parsed = parse(ref)
    if role == "test" and "test" not in _load_dict(parsed):
        return None
    base = ref[: len(ref) - len(parsed.split) - 1] if parsed.split else ref
    return f"{base}:{role}"

