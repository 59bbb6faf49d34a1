"""The predictions file, ``conlleval``'s format: ``token ... gold predicted`` lines, a blank line between sentences.

:func:`read_predictions` reads one (a run's ``test_predictions.txt``, or any system's output) and
:func:`predictions_text` writes one (``predictions.txt``, which ``conlleval.pl`` scores to Kayan's numbers).
Lines are split into fields by the one rule of CoNLL files (:func:`kayan.data.conll.split_fields`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from kayan.data.conll import TOKEN_BREAK, split_fields
from kayan.data.schemes import split_tag
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.evaluation import metrics
from kayan.evaluation.alignment import location
from kayan.files import read_utf8


def read_predictions(path: str | os.PathLike) -> tuple[list[Sentence], list[list[str]]]:
    """Read a ``conlleval``-format file: ``token ... gold predicted`` lines, blank between sentences.

    Fields are separated by spaces or tabs (as in :mod:`kayan.data.conll`); only the first and the last
    two are used. CRLF line ends, a UTF-8 byte-order mark and a missing final newline are accepted.

    Args:
        path: the predictions file.

    Returns:
        ``(sentences, predicted_tags)``: sentences hold the words and gold tags, with ``source``
        and the 1-based ``line`` of their first word; one list of predicted tags per sentence.

    Raises:
        KayanError: unreadable file, a line with fewer than 3 fields, or a tag that is not IOB2
            (the message names ``path:line``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "pred.txt"
    >>> _ = p.write_text("محمد B-PERS B-PERS\\r\\nفي O O\\r\\n\\r\\nعمان B-LOC O", encoding="utf-8")
    >>> sents, pred = read_predictions(p)
    >>> [s.words for s in sents], [s.line for s in sents], pred
    ([('محمد', 'في'), ('عمان',)], [1, 4], [['B-PERS', 'O'], ['O']])
    """
    text = read_utf8(path, what="the predictions file")
    sentences: list[Sentence] = []
    predicted: list[list[str]] = []
    rows: list[list[str]] = []
    first = 0
    for number, line in enumerate(text.split("\n") + [""], start=1):
        fields = split_fields(line.strip(" \t\r"))  # "\r": a CRLF line end
        if fields:
            rows.append(_check_fields(fields, path, number, line))
            first = first or number
        elif rows:
            words, gold, pred = zip(*rows)
            sentences.append(Sentence(words, gold, source=str(path), line=first))
            predicted.append(list(pred))
            rows, first = [], 0
    return sentences, predicted


def _check_fields(fields: list[str], path: str | os.PathLike, number: int, line: str) -> list[str]:
    if len(fields) < 3:
        raise KayanError(
            f"{path}:{number}: expected 'token ... gold predicted' (at least 3 fields, separated by "
            f"spaces or tabs) but found {len(fields)}: {line.strip()!r}; fix the line or separate "
            "sentences by a blank line"
        )
    for tag in fields[-2:]:
        try:
            split_tag(tag, metrics.SCHEME)
        except ValueError as err:
            raise KayanError(f"{path}:{number}: {err}; convert the file to IOB2 tags") from None
    return [fields[0], fields[-2], fields[-1]]


def predictions_text(gold: Sequence[Sentence], pred_tags: Sequence[Sequence[str]]) -> str:
    """``token gold predicted`` lines, a blank line after each sentence (``conlleval`` input).

    Args:
        gold: the gold sentences.
        pred_tags: one predicted tag per gold word.

    Returns:
        The text of ``predictions.txt``.

    >>> predictions_text([Sentence(("في", "عمان"), ("O", "B-LOC"))], [["O", "O"]])
    'في O O\\nعمان B-LOC O\\n\\n'
    """
    metrics.check_lengths([s.words for s in gold], pred_tags)
    lines = []
    for sentence, pred in zip(gold, pred_tags):
        for word, tag, guess in zip(sentence.words, sentence.tags, pred):
            if not word or TOKEN_BREAK.search(word):
                raise ValueError(f"word {word!r} ({location(sentence)}) is empty or holds a space, tab or line end")
            lines.append(f"{word} {tag} {guess}\n")
        lines.append("\n")
    return "".join(lines)
