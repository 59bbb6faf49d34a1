"""Read CoNLL-style NER files: one ``token TAG [TAG ...]`` line per word, a blank line between sentences.

What real files carry is handled and counted, never silently kept or dropped: a byte-order mark,
CRLF line ends, invisible direction marks (U+200E, U+200F) inside or around tokens, a missing final
newline, typos in tags (mapped by an explicit table) and marker tokens a corpus asks to drop.
Several tag columns (Wojood's nested layers, outermost first) become one flat layer by a rule:

- ``"outer"`` (default): the first tag column — the outermost entity covering the word;
- ``"inner"``: the last tag column present on the line — the innermost entity;
- an integer ``k``: the k-th tag column (0-based), ``O`` where a line has fewer;
- ``"auto"`` (a file named by its path, not a registry corpus): the columns that hold only tags
  (``O``, ``B-LOC`` ...) are the tag columns, any other (a POS column in ``word POS TAG``, notes in
  ``word TAG X Y``) is left out and said so; several tag columns are nested layers (``"outer"``).

The scheme may be ``"auto"`` as well: BILOU when ``L-``/``U-`` occur, BIOES when ``S-``/``E-`` do,
else IOB2 (:func:`kayan.data.schemes.detect_scheme`).

Every error a user can cause names ``file:line`` and the fix, as a :class:`KayanError`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from kayan.atomic import write_text
from kayan.data.schemes import OUTSIDE, SCHEMES, check_tag, detect_scheme
from kayan.data.sentence import Sentence
from kayan.errors import KayanError

DIRECTION_MARKS = "\u200e\u200f"
STRIP_MARKS = str.maketrans("", "", DIRECTION_MARKS)
ONLY_MARKS = "<only direction marks>"  # a token with nothing visible: dropped (if tagged O) and counted
FIELD_SEPARATOR = re.compile(r"[ \t]+")  # not str.split(): NBSP inside a token is not a separator
TOKEN_BREAK = re.compile(r"[ \t\r\n]")  # a field separator or a line end: no token can hold one
_TAG_SHAPE = re.compile(r"O|[BIESLU]-\S+")  # what a tag column holds, in any scheme


@dataclass
class ReadReport:
    """What reading changed or noticed, so nothing is silent. Reports of several files add up."""

    files: list[str] = field(default_factory=list)
    sentences: int = 0
    tokens: int = 0
    bom: int = 0
    crlf_lines: int = 0
    missing_final_newline: int = 0
    direction_marks_removed: int = 0
    nested_lines: int = 0
    columns_ignored: dict = field(default_factory=dict)  # path -> the 1-based columns left out as not tags
    scheme: str = ""  # the scheme read (detected when asked for "auto")
    tag_fixes: Counter = field(default_factory=Counter)
    dropped_tokens: Counter = field(default_factory=Counter)
    repairs: Counter = field(default_factory=Counter)

    def merge(self, other: "ReadReport") -> "ReadReport":
        """Add ``other``'s counts to this report and return it."""
        self.files += other.files
        self.columns_ignored.update(other.columns_ignored)
        self.scheme = self.scheme or other.scheme
        for name in ("sentences", "tokens", "bom", "crlf_lines", "missing_final_newline",
                     "direction_marks_removed", "nested_lines"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("tag_fixes", "dropped_tokens", "repairs"):
            getattr(self, name).update(getattr(other, name))
        return self

    def notes(self) -> list[str]:
        """One human line per thing handled, e.g. ``'removed 152,599 direction marks (U+200E/U+200F)'``."""
        lines = []
        if self.bom:
            lines.append(f"skipped a byte-order mark in {self.bom} file(s)")
        if self.crlf_lines:
            lines.append(f"read {self.crlf_lines:,} CRLF line ends as LF")
        if self.missing_final_newline:
            lines.append(f"{self.missing_final_newline} file(s) end without a final newline (read as if present)")
        if self.direction_marks_removed:
            lines.append(f"removed {self.direction_marks_removed:,} direction marks (U+200E/U+200F) from tokens")
        if self.nested_lines:
            lines.append(f"flattened {self.nested_lines:,} lines with nested tag layers")
        lines += [f"{path}: column(s) {', '.join(map(str, columns))} hold no tags and were left out"
                  for path, columns in self.columns_ignored.items()]
        lines += [f"mapped tag {typo} ({n}x)" for typo, n in sorted(self.tag_fixes.items())]
        lines += [f"dropped token {tok!r} ({n}x)" for tok, n in sorted(self.dropped_tokens.items())]
        lines += [f"repaired {change} ({n}x)" for change, n in sorted(self.repairs.items())]
        return lines


def _decode_lines(path: Path, report: ReadReport) -> list[str]:
    """Decode ``path`` as UTF-8 line by line, naming the first bad line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KayanError(f"{path}: file not found; check the path or the corpus directory") from None
    except IsADirectoryError:
        raise KayanError(f"{path}: is a directory, not a CoNLL file") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        report.bom += 1
    if data and not data.endswith(b"\n"):
        report.missing_final_newline += 1
    lines = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if b"\x00" in raw:
            raise KayanError(f"{path}:{number}: contains a NUL byte; the file is binary or UTF-16 — re-save it as UTF-8 text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise KayanError(
                f"{path}:{number}: not valid UTF-8 (byte 0x{raw[error.start]:02X} at column {error.start + 1}); "
                "re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
            ) from None
        if text.endswith("\r"):
            text = text[:-1]
            report.crlf_lines += 1
        lines.append(text)
    return lines


def split_fields(line: str) -> list[str]:
    """A line's fields, separated by spaces or tabs (:data:`FIELD_SEPARATOR`); ``[]`` for a blank line.

    >>> split_fields("عبد\\u00a0الله\\tB-PERS  O ")
    ['عبد\\xa0الله', 'B-PERS', 'O']
    """
    return [f for f in FIELD_SEPARATOR.split(line.strip(" \t")) if f]


def _pick_tag(tags: Sequence[str], tag_column: str | int) -> str:
    """Choose the flat tag from a line's tag columns by the module's layer rule."""
    if tag_column == "outer":
        return tags[0]
    if tag_column == "inner":
        return tags[-1]
    return tags[tag_column] if tag_column < len(tags) else OUTSIDE


def _tag_columns(rows: Sequence[tuple[int, list[str]]], width: int, path: Path, report: ReadReport) -> list[int] | None:
    """The field indices that hold only tags, when a line has more than two fields (``width``, ``"auto"``).

    None: two fields everywhere, or no column of tags only (the usual check then names the bad line).
    """
    if width <= 2:
        return None
    tagged = [i for i in range(1, width) if all(_TAG_SHAPE.fullmatch(f[i]) for _, f in rows if len(f) > i)]
    if not tagged:
        return None
    ignored = [i + 1 for i in range(1, width) if i not in tagged]
    if ignored:
        report.columns_ignored[str(path)] = ignored
    return tagged


def _line_tags(fields: list[str], columns: list[int] | None) -> list[str]:
    """A line's tag fields: those of ``columns`` (field indices), else every field after the token."""
    return [fields[i] for i in columns if i < len(fields)] if columns else fields[1:]


def read_conll(
    path: str | Path,
    *,
    scheme: str = "IOB2",
    tag_fixes: Mapping[str, str] | None = None,
    drop_tokens: Sequence[str] = (),
    tag_column: str | int = "outer",
) -> tuple[list[Sentence], ReadReport]:
    """Read one CoNLL-style file into sentences with the file's own tags (after typo fixes).

    Tags are checked against ``scheme`` but not converted: :func:`kayan.data.corpora` converts to IOB2,
    so that statistics can still count the file's raw entities.

    Args:
        path: the file.
        scheme: the scheme its tags follow (``IOB1``, ``IOB2``, ``BIOES``, ``BILOU``), or ``auto``.
        tag_fixes: an explicit table of known typos (``{"OO": "O"}``); each fix is counted.
        drop_tokens: marker tokens that are not words (Wojood's ``$#$``); each drop is counted.
        tag_column: which tag column to keep when a line has several, or ``auto`` (see the module docstring).

    Raises:
        KayanError: unreadable bytes, a line without a tag, a tag outside the scheme, an empty file.
    """
    path = Path(path)
    if scheme not in SCHEMES and scheme != "auto":
        raise KayanError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)} or auto")
    report = ReadReport(files=[str(path)])
    rows = [(number, split_fields(line)) for number, line in enumerate(_decode_lines(path, report), start=1)]
    width = max((len(fields) for _, fields in rows), default=0)
    columns = _tag_columns(rows, width, path, report) if tag_column == "auto" else None
    layer = "outer" if tag_column == "auto" else tag_column
    if scheme == "auto":
        scheme = detect_scheme(tag for _, fields in rows if len(fields) > 1 for tag in _line_tags(fields, columns))
    report.scheme = scheme
    fix = "fix the file or add the typo to the corpus's tag_fixes" if tag_column != "auto" else "fix the file" + (
        "; or name its tag column with data.columns: {tags: N} (the token is column 1)" if width > 2 else "")
    rule = _LineRule(columns, layer, scheme, dict(tag_fixes or {}), tuple(drop_tokens), fix)
    sentences = _sentences(rows, rule, path, report)
    if not sentences:
        raise KayanError(f"{path}: no sentences (the file is empty or blank); point at a file with 'token TAG' lines")
    report.sentences = len(sentences)
    report.tokens = sum(len(s) for s in sentences)
    return sentences, report


@dataclass(frozen=True)
class _LineRule:
    """How :func:`read_conll` reads a line's fields into a word and its tag."""

    columns: list[int] | None  # the tag columns (field indices); None: every field after the token
    layer: str | int  # which of several tags is kept (the module docstring's layer rule)
    scheme: str
    fixes: Mapping[str, str]  # known tag typos and their fixes
    drop_tokens: Sequence[str]  # marker tokens that are not words
    fix: str  # what a message about a bad tag tells the user to do


def _sentences(rows: Sequence[tuple[int, list[str]]], rule: _LineRule, path: Path, report: ReadReport) -> list[Sentence]:
    """The sentences of a file's ``(line number, fields)`` rows: a row without fields ends a sentence."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    start = 0
    for number, fields in rows:
        if not fields:
            if words:
                sentences.append(Sentence(tuple(words), tuple(tags), str(path), start))
                words, tags = [], []
            continue
        if len(fields) == 1:
            what = "has one column" if not sentences and not words else "has no tag"
            raise KayanError(
                f"{path}:{number}: line {what} ({fields[0][:40]!r}); Kayan needs 'token TAG' per line, "
                "separated by a space or tab, and a blank line between sentences"
            )
        word = _word(fields, rule, f"{path}:{number}", report)
        if word is None:
            continue
        if not words:
            start = number
        words.append(word[0])
        tags.append(word[1])
    if words:
        sentences.append(Sentence(tuple(words), tuple(tags), str(path), start))
    return sentences


def _word(fields: list[str], rule: _LineRule, where: str, report: ReadReport) -> tuple[str, str] | None:
    """A line's token and tag, checked and counted in ``report``; None for a token that is dropped."""
    token = fields[0].translate(STRIP_MARKS)
    report.direction_marks_removed += len(fields[0]) - len(token)
    line_tags = _line_tags(fields, rule.columns)
    if len(line_tags) > 1:
        report.nested_lines += 1
    tag = _pick_tag(line_tags, rule.layer) if line_tags else OUTSIDE
    if not token:
        if tag != OUTSIDE:
            raise KayanError(f"{where}: a token made only of direction marks is tagged {tag!r}; remove the line")
        report.dropped_tokens[ONLY_MARKS] += 1
        return None
    if tag in rule.fixes:
        report.tag_fixes[f"{tag} -> {rule.fixes[tag]}"] += 1
        tag = rule.fixes[tag]
    problem = check_tag(tag, rule.scheme)
    if problem:
        raise KayanError(f"{where}: tag {tag!r}: {problem}; {rule.fix}")
    if token in rule.drop_tokens:
        report.dropped_tokens[token] += 1
        return None
    return token, tag


def write_conll(sentences: Sequence[Sentence], path: str | Path) -> Path:
    """Write sentences as ``token TAG`` lines, a blank line between sentences (atomically)."""
    blocks = ["\n".join(f"{w} {t}" for w, t in zip(s.words, s.tags)) for s in sentences]
    return write_text(path, "\n\n".join(blocks) + "\n")
