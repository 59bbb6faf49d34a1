"""The documents of an archive to tag: lines of text files, a text field of JSON lines, a text column of parquet.

Each document is read as :class:`~kayan.inference.predict_io.Piece` items (a document longer than
:data:`~kayan.inference.predict_io.PIECE_CHARS` characters in a text file comes in pieces), each its
own document for document context, in file order, with a ``source`` that names it for good:

* a text file (the default): one document per line, ``FILE:LINE`` as ``kayan predict`` names it,
  read in 64 KiB blocks;
* JSON lines (``text_field`` given, any file name but ``*.parquet``): one document per non-blank
  line, its ``text_field`` string; ``FILE:LINE``. A line is read whole;
* parquet (``*.parquet``): one document per row, its ``text_field`` column (``text`` by default);
  ``FILE:ROW``, rows counted from 1. Read a record batch (1,024 rows) at a time.

:func:`count_documents` counts them without decoding text (a file's newlines, parquet's metadata),
so that progress can show an ETA.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from kayan.errors import KayanError
from kayan.inference.predict_io import READ_BYTES, Piece, read_pieces

PARQUET_ROWS = 1024
DEFAULT_COLUMN = "text"


def is_parquet(name: str | Path) -> bool:
    """Whether a file is read as parquet (by its name).

    >>> is_parquet("news/2024.parquet"), is_parquet("news.jsonl")
    (True, False)
    """
    return str(name).lower().endswith(".parquet")


def read_documents(files: Sequence[str], *, text_field: str | None = None) -> Iterator[Piece]:
    """The documents of ``files``, in order, as pieces (see the module docstring).

    Raises:
        KayanError: a file cannot be read, is not UTF-8, or a record has no text (naming FILE:LINE).
    """
    for number, name in enumerate(files):
        if is_parquet(name):
            yield from _parquet_rows(name, number, text_field or DEFAULT_COLUMN)
        elif text_field is not None:
            yield from _json_lines(name, number, text_field)
        else:
            yield from (piece for piece in read_pieces([name], None, lines_are_documents=True) if piece is not None)


def _json_lines(name: str, number: int, field: str) -> Iterator[Piece]:
    """One piece per non-blank line of a JSON-lines file: the line's ``field``."""
    try:
        handle = open(name, "rb")  # noqa: SIM115 - closed below, after the last line
    except OSError as error:
        raise KayanError(f"{name}: cannot read it ({error.strerror}); check the path") from None
    with handle:
        for line, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            where = f"{name}:{line}"
            try:
                record = json.loads(raw.decode("utf-8-sig" if line == 1 else "utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise KayanError(f"{where}: not a UTF-8 JSON object ({error}); give JSON lines, or drop --text-field "
                                 "for plain text") from None
            text = record.get(field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise KayanError(f"{where}: no text in field {field!r} (found {type(text).__name__}); "
                                 "name the field that holds the text with --text-field")
            yield Piece(where, text, document=(number, line))


def _parquet_rows(name: str, number: int, column: str) -> Iterator[Piece]:
    """One piece per row of a parquet file: its ``column``, read a record batch at a time."""
    parquet = _open_parquet(name)
    if column not in parquet.schema_arrow.names:
        raise KayanError(f"{name}: no column {column!r} (it has {', '.join(parquet.schema_arrow.names)}); "
                         "name the text column with --text-field")
    row = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_ROWS, columns=[column]):
        for text in batch.column(0).to_pylist():
            row += 1
            if not isinstance(text, str):
                raise KayanError(f"{name}:{row}: column {column!r} holds {type(text).__name__}, not text; "
                                 "give a string column with --text-field")
            yield Piece(f"{name}:{row}", text, document=(number, row))


def _open_parquet(name: str):
    """A ``pyarrow.parquet.ParquetFile``, or a one-line error."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise KayanError(f"{name}: reading parquet needs pyarrow; pip install pyarrow") from None
    try:
        return pq.ParquetFile(name)
    except (OSError, ValueError) as error:  # pyarrow.ArrowInvalid is a ValueError
        raise KayanError(f"{name}: cannot read it as parquet ({error}); check the file") from None


def count_documents(files: Sequence[str], *, text_field: str | None = None) -> int:
    """How many documents :func:`read_documents` gives, counted without decoding text."""
    total = 0
    for name in files:
        if is_parquet(name):
            total += _open_parquet(name).metadata.num_rows
        elif text_field is not None:
            with open(name, "rb") as handle:
                total += sum(1 for raw in handle if raw.strip())
        else:
            total += _count_lines(Path(name))
    return total


def _count_lines(path: Path) -> int:
    """The lines of a text file as ``kayan predict`` counts them: a last line without its end counts too."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(READ_BYTES * 16), b""):
            lines, last = lines + block.count(b"\n"), block[-1:]
    return lines + (last != b"\n")
