"""Inputs and outputs of ``kayan predict``: lines in, JSON lines, CoNLL or marked text out, as they are tagged.

Every input line (of each file, or of standard input when no file is given) gets one output record,
in input order, written and flushed as soon as it is tagged:

* ``jsonl`` (default): one JSON object per line, ``{"source": "FILE:LINE", "entities": [{"text",
  "type", "start", "end", "score"}, ...]}``; ``source`` is the file path (or ``<stdin>``) and the line
  number, from 1; offsets are characters into the line without its end (``\\n`` or ``\\r\\n``), and a
  file's leading byte-order mark (U+FEFF) is not part of its first line: ``line[start:end] == entity
  text`` for the line as Python's ``utf-8-sig`` codec decodes the file.
* ``conll``: ``word TAG`` lines, a blank line after each sentence (a sentence never crosses a line).
* ``text``: each line with its entities marked inline, ``[LOC بغداد]``: the input, marked.

Memory stays bounded whatever the size of the input: it is read in blocks of :data:`READ_BYTES`, and
a line longer than :data:`PIECE_CHARS` characters is tagged in pieces cut where a sentence starts
(at a space inside a sentence longer than that), its record written piece by piece. A file's lines
are one document for a model trained with document context (a sentence sees its neighbours across
line ends, as when the whole file was one text); each stdin line, or line of a pipe named as a file,
is its own. Input that arrives line by line (a terminal, ``tail -f``) is answered line by line:
when no more input is waiting, what has arrived is tagged at once; a file, or a pipe that keeps up,
is tagged in full batches.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import json
import os
import select
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, TextIO

from kayan.data.arabic import split_sentences
from kayan.errors import KayanError

if TYPE_CHECKING:  # annotations only: reading and writing records loads no model library
    from kayan.inference.predict import Document, Predictor

FORMATS = ("jsonl", "conll", "text")
READ_BYTES = 1 << 16
"""The most bytes read from the input at a time."""
PIECE_CHARS = 1 << 16
"""A line longer than this many characters is tagged in pieces (its record is still one)."""


@dataclass(frozen=True)
class Piece:
    """A line to tag, or a piece of a line longer than :data:`PIECE_CHARS`.

    Args:
        source: ``FILE:LINE`` or ``<stdin>:LINE``, lines counted from 1.
        text: the piece's text, without the line's end.
        offset: characters of the line before this piece (0 for a whole line).
        last: whether the piece ends its line.
        document: pieces with equal values are one document for document context.
    """

    source: str
    text: str
    offset: int = 0
    last: bool = True
    document: object = None


def read_pieces(files: Sequence[str], stdin: BinaryIO | None, *, lines_are_documents: bool = False) -> Iterator[Piece | None]:
    """The lines of ``files`` (``-`` or none: ``stdin``) as :class:`Piece` items, read lazily in bounded blocks.

    A file's lines are one document (for document context) unless ``lines_are_documents``: then each
    line is its own, as each line of stdin always is (an archive of one article per line).

    ``None`` comes whenever the next read would wait for input (a terminal or pipe that has sent all it
    has): the caller tags what it holds before the read blocks.

    Raises:
        KayanError: a file cannot be read or is not UTF-8 (the message names it and the line).

    >>> import io
    >>> [p.text for p in read_pieces([], io.BytesIO("\\ufeffجاء زيد\\r\\n\\nذهب".encode()))]
    ['جاء زيد', '', 'ذهب']
    """
    for number, name in enumerate(files or ["-"]):
        if name == "-":
            yield from _pieces(_blocks(stdin, "<stdin>"), "<stdin>", number, whole=False)
            continue
        try:
            handle = open(name, "rb", buffering=0)  # noqa: SIM115 - closed below, after the last piece
        except OSError as error:
            raise KayanError(f"{name}: cannot read it ({error.strerror}); check the path") from None
        with handle:
            whole = stat.S_ISREG(os.fstat(handle.fileno()).st_mode) and not lines_are_documents  # a pipe's: one by one
            yield from _pieces(_blocks(handle, name), name, number, whole=whole)


def _blocks(stream: BinaryIO, name: str) -> Iterator[bytes | None]:
    """The bytes of ``stream`` in blocks of at most :data:`READ_BYTES`; ``None`` before a read that would wait."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both: an in-memory stream
        fd = None
    while True:
        if fd is not None and not _readable(fd):
            yield None
        try:
            block = os.read(fd, READ_BYTES) if fd is not None else stream.read(READ_BYTES)
        except OSError as error:
            raise KayanError(f"{name}: cannot read it ({error.strerror}); check the file") from None
        if not block:
            return
        yield block


def _readable(fd: int) -> bool:
    """Whether a read of ``fd`` returns at once (data or end of file): always for a regular file."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):  # select cannot watch it (a pipe on Windows): just read
        return True


def _pieces(blocks: Iterable[bytes | None], name: str, number: int, *, whole: bool) -> Iterator[Piece | None]:
    """Decode ``blocks`` (a leading BOM dropped) and cut them into :class:`Piece` items, line by line.

    ``whole``: the lines are one document (file ``number``); else each line is its own.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    line, offset, rest = 1, 0, ""  # rest: the text of line ``line`` after ``offset``, not yet given out

    def piece(text: str, last: bool) -> Piece:
        return Piece(f"{name}:{line}", text.removesuffix("\r") if last else text, offset, last, number if whole else (number, line))

    for block in blocks:
        if block is None:
            yield None
            continue
        *complete, rest = (rest + _decode(decoder, block, name, line)).split("\n")
        for text in complete:
            yield piece(text, True)
            line, offset = line + 1, 0
        while len(rest) > PIECE_CHARS:
            cut = piece_end(rest, PIECE_CHARS)
            yield piece(rest[:cut], False)
            offset, rest = offset + cut, rest[cut:]
    _decode(decoder, b"", name, line, final=True)  # the input ends inside a character
    if rest or offset:
        yield piece(rest, True)


def _decode(decoder: codecs.IncrementalDecoder, block: bytes, name: str, line: int, *, final: bool = False) -> str:
    """Decode one block; bytes that are not UTF-8 raise :class:`KayanError` naming the line they are on."""
    try:
        return decoder.decode(block, final)
    except UnicodeDecodeError as error:
        line += error.object[: error.start].count(b"\n")
        fix = "pipe UTF-8 text" if name == "<stdin>" else "save it as UTF-8"
        raise KayanError(f"{name}:{line}: not UTF-8 text ({error.reason}); {fix}") from None


def piece_end(text: str, limit: int) -> int:
    """Where to cut a line longer than ``limit`` characters: where its last sentence starting in the
    first ``limit`` begins (the sentences before it are then the line's own), else after its last
    space there, else at ``limit``.

    >>> piece_end("جاء زيد. ذهب عمرو إلى", 15)
    9
    >>> piece_end("جاء زيد ذهب عمرو", 10)
    8
    >>> piece_end("ججججج", 3)
    3
    """
    head = text[:limit]
    sentences = split_sentences(head)
    if len(sentences) > 1:
        return sentences[-1][0]
    return head.rfind(" ") + 1 or limit


def as_conll(document: Document) -> str:
    """``word TAG`` lines, a blank line after each sentence.

    >>> from kayan.data.arabic import Token
    >>> from kayan.inference.predict import Document, TaggedSentence
    >>> print(as_conll(Document("في عمان", (TaggedSentence((Token("في", 0, 2), Token("عمان", 3, 7)), ("O", "B-LOC"), (1.0, 0.9)),))), end="")
    في O
    عمان B-LOC
    <BLANKLINE>
    """
    return "".join("".join(f"{t.text} {tag}\n" for t, tag in zip(s.tokens, s.tags)) + "\n" for s in document.sentences)


def as_marked_text(document: Document) -> str:
    """The document's text with every entity marked inline as ``[TYPE text]``.

    >>> from kayan.data.arabic import Token
    >>> from kayan.inference.predict import Document, TaggedSentence
    >>> as_marked_text(Document("في عمان.", (TaggedSentence((Token("في", 0, 2), Token("عمان", 3, 7), Token(".", 7, 8)), ("O", "B-LOC", "O"), (1.0, 0.9, 1.0)),)))
    'في [LOC عمان].'
    """
    pieces, last = [], 0
    for entity in document.entities:
        pieces += [document.text[last : entity.start], f"[{entity.type} {entity.text}]"]
        last = entity.end
    pieces.append(document.text[last:])
    return "".join(pieces)


class RecordWriter:
    """Writes each line's record to ``out`` as its pieces come, and flushes it when the line ends.

    Args:
        out: where to write.
        fmt: ``jsonl``, ``conll`` or ``text`` (module docstring).
        extra: keys added at the end of every ``jsonl`` record, after ``entities``.

    >>> import io
    >>> from kayan.data.arabic import Token
    >>> from kayan.inference.predict import Document, TaggedSentence
    >>> out = io.StringIO()
    >>> doc = Document("في عمان", (TaggedSentence((Token("في", 0, 2), Token("عمان", 3, 7)), ("O", "B-LOC"), (1.0, 0.91234)),))
    >>> writer = RecordWriter(out)  # line 3 of news.txt, "في عمان في عمان", tagged in two pieces:
    >>> writer.write(Piece("news.txt:3", "في عمان", offset=0, last=False), doc)
    >>> writer.write(Piece("news.txt:3", "في عمان", offset=8), doc)
    >>> print(out.getvalue(), end="")  # doctest: +NORMALIZE_WHITESPACE
    {"source": "news.txt:3", "entities": [{"text": "عمان", "type": "LOC", "start": 3, "end": 7, "score": 0.9123},
                                          {"text": "عمان", "type": "LOC", "start": 11, "end": 15, "score": 0.9123}]}
    """

    def __init__(self, out: TextIO, fmt: str = "jsonl", *, extra: Mapping[str, object] | None = None):
        if fmt not in FORMATS:
            raise KayanError(f"--format {fmt!r} is unknown; use one of: {', '.join(FORMATS)}")
        self.out, self.fmt, self._entities = out, fmt, 0
        self._end = "]" + "".join(f", {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in (extra or {}).items()) + "}\n"

    def write(self, piece: Piece, document: Document) -> None:
        """Write the part of ``piece``'s record that ``document`` (the piece, tagged) holds."""
        if self.fmt == "jsonl":
            self._jsonl(piece, document)
        elif self.fmt == "conll":
            self.out.write(as_conll(document))
        else:
            self.out.write(as_marked_text(document) + ("\n" if piece.last else ""))
        if piece.last:
            self.out.flush()

    def _jsonl(self, piece: Piece, document: Document) -> None:
        """The JSON object of a line, written entity by entity: the same bytes as one ``json.dumps`` of it."""
        if piece.offset == 0:
            self.out.write(f'{{"source": {json.dumps(piece.source, ensure_ascii=False)}, "entities": [')
            self._entities = 0
        for entity in document.entities:
            item = {**entity.to_dict(), "start": entity.start + piece.offset, "end": entity.end + piece.offset,
                    "score": round(entity.score, 4)}
            self.out.write((", " if self._entities else "") + json.dumps(item, ensure_ascii=False))
            self._entities += 1
        if piece.last:
            self.out.write(self._end)


def write_predictions(
    predictor: Predictor,
    pieces: Iterable[Piece | None],
    out: TextIO,
    *,
    fmt: str = "jsonl",
    progress: Callable[[int], object] | None = None,
    extra: Mapping[str, object] | None = None,
) -> int:
    """Tag lines and write one record per line to ``out``, each flushed once its line is tagged.

    Args:
        predictor: the loaded model.
        pieces: lines or pieces of lines, and ``None`` where the input went idle (see :func:`read_pieces`).
        out: where to write.
        fmt: ``jsonl``, ``conll`` or ``text`` (module docstring).
        progress: called with the number of words tagged after each chunk.
        extra: keys added at the end of every ``jsonl`` record (:class:`RecordWriter`).

    Returns:
        The number of lines written.
    """
    records = RecordWriter(out, fmt, extra=extra)
    waiting: collections.deque[Piece] = collections.deque()

    def items() -> Iterator[tuple[str, object] | None]:
        for piece in pieces:
            if piece is not None:
                waiting.append(piece)
                yield piece.text, piece.document
            else:
                yield None

    lines = 0
    for document in predictor.tag_stream(items(), progress=progress):
        piece = waiting.popleft()
        records.write(piece, document)
        lines += piece.last
    return lines


@contextlib.contextmanager
def progress_bar(*, enabled: bool) -> Iterator[Callable[[int], object]]:
    """A tqdm bar counting tagged words on stderr; a no-op when ``enabled`` is false (not a TTY)."""
    from tqdm import tqdm

    with tqdm(unit=" words", unit_scale=True, disable=not enabled, desc="tagging", leave=False) as bar:
        yield bar.update
