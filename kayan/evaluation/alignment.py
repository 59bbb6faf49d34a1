"""Gold and predictions checked against each other before they are scored: the same words in the same
order, the same gold tags for two compared systems, and entity types that are not two namings of one set.

Each refusal names the place to fix, ``file:line`` where the sentences carry one (:func:`location`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from kayan.data.schemes import label_types
from kayan.data.sentence import Sentence
from kayan.errors import KayanError

_ALIGN_FIX = "the predictions must list the gold sentences' words, in order, one per line"


def location(sentence: Sentence, word: int = 0) -> str:
    """Where a sentence's word comes from, for messages: ``file:line``, the file, or ``the gold data``.

    >>> location(Sentence(("a", "b"), source="gold.txt", line=7), 1)
    'gold.txt:8'
    """
    if not sentence.source:
        return "the gold data"
    return f"{sentence.source}:{sentence.line + word}" if sentence.line else sentence.source


def check_alignment(gold: Sequence[Sentence], predicted: Sequence[Sentence], *, pred_path: str | os.PathLike) -> None:
    """Check that predicted sentences hold exactly the gold words, sentence by sentence.

    Args:
        gold: the gold sentences.
        predicted: the sentences read from the predictions file (with their ``line``).
        pred_path: the predictions file, for messages.

    Raises:
        KayanError: at the first sentence whose length or words differ, naming the predictions
            file's line, the sentence number and both words; or when the sentence counts differ.

    >>> check_alignment([Sentence(("a", "b"))], [Sentence(("a", "c"), line=7)], pred_path="p.txt")
    Traceback (most recent call last):
    ...
    kayan.errors.KayanError: p.txt:8: sentence 1, word 2 is 'c' but the gold word is 'b' (the gold data); \
the predictions must list the gold sentences' words, in order, one per line
    """
    for i, (g, p) in enumerate(zip(gold, predicted), start=1):
        if len(g) != len(p):
            raise KayanError(
                f"{pred_path}:{p.line}: sentence {i} has {len(p)} words but the gold sentence "
                f"({location(g)}) has {len(g)}; {_ALIGN_FIX}"
            )
        for j, (gold_word, pred_word) in enumerate(zip(g.words, p.words)):
            if gold_word != pred_word:
                raise KayanError(
                    f"{pred_path}:{p.line + j}: sentence {i}, word {j + 1} is {pred_word!r} but the gold "
                    f"word is {gold_word!r} ({location(g, j)}); {_ALIGN_FIX}"
                )
    if len(gold) > len(predicted):
        raise KayanError(
            f"{pred_path}: {len(predicted)} sentences but the gold data has {len(gold)}: sentence "
            f"{len(predicted) + 1} ({location(gold[len(predicted)])}) and later ones are missing; {_ALIGN_FIX}"
        )
    if len(gold) < len(predicted):
        extra = predicted[len(gold)]
        raise KayanError(
            f"{pred_path}:{extra.line}: {len(predicted)} sentences but the gold data has {len(gold)}: "
            f"sentence {len(gold) + 1} and later ones are extra; {_ALIGN_FIX}"
        )


def check_same_gold(a: Sequence[Sentence], b: Sequence[Sentence], name_a: str, name_b: str) -> None:
    """Two systems compared must have tagged the same words (:func:`check_alignment`) with the same gold tags."""
    check_alignment(a, b, pred_path=name_b)
    for index, (x, y) in enumerate(zip(a, b)):
        if x.tags != y.tags:
            raise KayanError(f"{name_b}: sentence {index + 1} ({location(y)}) differs from {name_a}'s ({location(x)}) "
                             "in its gold tags; compare predictions of the same data")


def label_set_warning(gold: Sequence[Sentence], pred_tags: Sequence[Sequence[str]], *, source: str = "") -> str | None:
    """A warning when gold and predicted entity types look like two namings of one set (PER against PERS).

    Each side then has types the other never uses, and they are scored as unrelated types;
    ``None`` when the types agree or one side only adds or lacks a few.

    >>> label_set_warning([Sentence(("زيد",), ("B-PERS",))], [["B-PER"]])[:60]
    'gold types [PERS] and predicted types [PER] differ: PER is n'
    """
    gold_types = set(label_types(tag for s in gold for tag in s.tags))
    pred_types = set(label_types(tag for tags in pred_tags for tag in tags))
    only_pred, only_gold = sorted(pred_types - gold_types), sorted(gold_types - pred_types)
    if not only_pred or not only_gold:
        return None
    where = f"{source}: " if source else ""
    return (f"{where}gold types [{', '.join(sorted(gold_types))}] and predicted types [{', '.join(sorted(pred_types))}] "
            f"differ: {', '.join(only_pred)} is never gold and {', '.join(only_gold)} never predicted, so they are scored "
            f"as unrelated types; if they name the same types, rename the gold ones with --label-map GOLD=PREDICTED "
            f"(e.g. --label-map {only_gold[0]}={only_pred[0]})")
