"""Text that two corpora share, found under different tokenization and spelling.

NewsFANE re-annotates much of ANERcorp's text, split into other sentences and tokens (``(د ب أ)`` against
``( د ب ا )``). Sentences are compared by their letters (:func:`sentence_key`), cut into overlapping pieces
of :data:`PIECE` letters: a training sentence repeats held-out text when at least half of its pieces are
held-out pieces, or when it holds at least half of the pieces of one held-out sentence (a long sentence
that swallowed a short one).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

import regex

from kayan.data.arabic import normalize

PIECE = 25  # letters, about five words: long enough that two unrelated sentences rarely share one
SHARE = 0.5

_KEY_STEPS = ("remove_diacritics", "remove_tatweel", "unify_alef")
_NOT_LETTER = regex.compile(r"[^\p{L}\p{N}]+")


def sentence_key(words: Sequence[str]) -> str:
    """A sentence's letters and digits, with diacritics, tatweel and hamza forms of alef, ى/ي and ة/ه unified:
    the same text under another tokenization or spelling of these gives the same key.

    >>> sentence_key(["(د", "ب", "أ)", "أعلن"]) == sentence_key(["(", "د", "ب", "ا", ")", "اعلن"])
    True
    """
    text = "".join(normalize(word, _KEY_STEPS) for word in words).replace("ى", "ي").replace("ة", "ه")
    return _NOT_LETTER.sub("", text)


def pieces(key: str, size: int = PIECE) -> set[str]:
    """The overlapping ``size``-letter pieces of ``key`` (a shorter key is its own one piece; empty: none).

    >>> sorted(pieces("abcde", 3)), pieces("ab", 3), pieces("", 3)
    (['abc', 'bcd', 'cde'], {'ab'}, set())
    """
    if not key:
        return set()
    return {key[i:i + size] for i in range(max(1, len(key) - size + 1))}


def repeats(sentences: Sequence[Sequence[str]], held_out: Sequence[Sequence[str]], *,
            size: int = PIECE, share: float = SHARE) -> list[bool]:
    """For each sentence (its words), whether it repeats held-out text (the module's rule).

    >>> held = [["ذهب", "الرئيس", "الى", "القاهرة"]]
    >>> repeats([["ذهب", "الرئيس"],  # half of its pieces are held out
    ...          ["وقال", "انه", "ذهب", "الرئيس", "الى", "القاهره", "ثم", "عاد", "الى", "بيته", "في", "المساء"],  # holds it all
    ...          ["وصل", "الوزير", "الى", "دمشق"]], held, size=8)
    [True, True, False]
    """
    held_pieces = [pieces(sentence_key(words), size) for words in held_out]
    owners: dict[str, list[int]] = defaultdict(list)
    for index, found in enumerate(held_pieces):
        for piece in found:
            owners[piece].append(index)
    flags = []
    for words in sentences:
        own = pieces(sentence_key(words), size)
        hits = [piece for piece in own if piece in owners]
        per_held = Counter(index for piece in hits for index in owners[piece])
        flags.append(bool(own) and (len(hits) >= share * len(own)
                                    or any(count >= share * len(held_pieces[i]) for i, count in per_held.items())))
    return flags
