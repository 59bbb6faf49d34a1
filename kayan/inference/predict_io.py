"""Inputs and outputs of ``kayan predict``: documents in, JSON lines, CoNLL or marked text out.

A *document* is one input file, or one line of standard input (when no file is given). Each gets one
output record, in input order:

* ``jsonl`` (default): one JSON object per document, ``{"source": ..., "entities": [{"text", "type",
  "start", "end", "score"}, ...]}``; ``source`` is the file path or ``<stdin>:LINE``; offsets are
  characters into the document (the file's text after UTF-8 decoding, or the line without its end),
  a leading byte-order mark (U+FEFF) not included: ``text[start:end] == entity text`` for the text
  as Python's ``utf-8-sig`` codec decodes it.
* ``conll``: ``word TAG`` lines, a blank line after each sentence (documents simply follow each other).
* ``text``: the document with each entity marked inline, ``[LOC بغداد]``; one output line per stdin line.
"""

from __future__ import annotations

import collections
import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO, TextIO

from kayan.errors import KayanError
from kayan.files import read_utf8
from kayan.inference.predict import Document, Predictor

FORMATS = ("jsonl", "conll", "text")


def read_documents(files: Sequence[str], stdin: BinaryIO) -> Iterator[tuple[str, str]]:
    """``(source, text)`` per file, or per line of ``stdin`` when ``files`` is empty or a file is ``-`` (read lazily).

    A leading UTF-8 byte-order mark is dropped: offsets index the text after it.

    Raises:
        KayanError: a file cannot be read or is not UTF-8 (the message names it, or the stdin line).
    """
    for name in files or ["-"]:
        if name == "-":
            yield from _stdin_lines(stdin)
        else:
            yield name, read_utf8(name, what="it")


def _stdin_lines(stdin: BinaryIO) -> Iterator[tuple[str, str]]:
    """``(<stdin>:LINE, line)`` per line of standard input, its end of line (and a first-line BOM) removed."""
    for number, raw in enumerate(stdin, start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise KayanError(f"<stdin>:{number}: not UTF-8 text ({error.reason}); pipe UTF-8 text") from None
        yield f"<stdin>:{number}", line.rstrip("\r\n")


def as_jsonl(source: str, document: Document) -> str:
    """One JSON line for a document (scores rounded to 4 places).

    >>> from kayan.data.arabic import Token
    >>> from kayan.inference.predict import TaggedSentence
    >>> doc = Document("في عمان", (TaggedSentence((Token("في", 0, 2), Token("عمان", 3, 7)), ("O", "B-LOC"), (1.0, 0.91234)),))
    >>> as_jsonl("<stdin>:1", doc)
    '{"source": "<stdin>:1", "entities": [{"text": "عمان", "type": "LOC", "start": 3, "end": 7, "score": 0.9123}]}\\n'
    """
    entities = [{**e.to_dict(), "score": round(e.score, 4)} for e in document.entities]
    return json.dumps({"source": source, "entities": entities}, ensure_ascii=False) + "\n"


def as_conll(document: Document) -> str:
    """``word TAG`` lines, a blank line after each sentence.

    >>> from kayan.data.arabic import Token
    >>> from kayan.inference.predict import TaggedSentence
    >>> print(as_conll(Document("في عمان", (TaggedSentence((Token("في", 0, 2), Token("عمان", 3, 7)), ("O", "B-LOC"), (1.0, 0.9)),))), end="")
    في O
    عمان B-LOC
    <BLANKLINE>
    """
    return "".join("".join(f"{t.text} {tag}\n" for t, tag in zip(s.tokens, s.tags)) + "\n" for s in document.sentences)


def as_marked_text(document: Document) -> str:
    """The document's text with every entity marked inline as ``[TYPE text]``.

    >>> from kayan.data.arabic import Token
    >>> from kayan.inference.predict import TaggedSentence
    >>> as_marked_text(Document("في عمان.", (TaggedSentence((Token("في", 0, 2), Token("عمان", 3, 7), Token(".", 7, 8)), ("O", "B-LOC", "O"), (1.0, 0.9, 1.0)),)))
    'في [LOC عمان].'
    """
    pieces, last = [], 0
    for entity in document.entities:
        pieces += [document.text[last : entity.start], f"[{entity.type} {entity.text}]"]
        last = entity.end
    pieces.append(document.text[last:])
    return "".join(pieces)


def write_predictions(
    predictor: Predictor,
    documents: Iterable[tuple[str, str]],
    out: TextIO,
    *,
    fmt: str = "jsonl",
    progress: Callable[[int], object] | None = None,
) -> int:
    """Tag documents and write one record per document to ``out``; returns the number of documents.

    Args:
        predictor: the loaded model.
        documents: ``(source, text)`` pairs (see :func:`read_documents`).
        out: where to write.
        fmt: ``jsonl``, ``conll`` or ``text`` (module docstring).
        progress: called with the number of words tagged after each chunk.
    """
    if fmt not in FORMATS:
        raise KayanError(f"--format {fmt!r} is unknown; use one of: {', '.join(FORMATS)}")
    sources: collections.deque[str] = collections.deque()

    def texts() -> Iterator[str]:
        for source, text in documents:
            sources.append(source)
            yield text

    count = 0
    for document in predictor.tag_texts(texts(), progress=progress):
        source = sources.popleft()
        if fmt == "jsonl":
            out.write(as_jsonl(source, document))
        elif fmt == "conll":
            out.write(as_conll(document))
        else:
            marked = as_marked_text(document)
            out.write(marked if marked.endswith("\n") else marked + "\n")
        out.flush()
        count += 1
    return count


@contextlib.contextmanager
def progress_bar(*, enabled: bool) -> Iterator[Callable[[int], object]]:
    """A tqdm bar counting tagged words on stderr; a no-op when ``enabled`` is false (not a TTY)."""
    from tqdm import tqdm

    with tqdm(unit=" words", unit_scale=True, disable=not enabled, desc="tagging", leave=False) as bar:
        yield bar.update
