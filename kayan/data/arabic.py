"""Sentences, words and normalization for raw Arabic text, with character offsets.

Raw text is split into sentences and word tokens the way ANERcorp separates them, and every
token keeps its ``start``/``end`` offsets into the caller's original string, so entities found
on the tokens map back to the exact characters a user typed. Normalization (diacritics, tatweel,
alef forms) is applied per word *after* tokenization, so it never moves an offset.

Why not camel-tools (1.6.0 checked): a 125 kB wheel whose Requires-Dist pulls torch, transformers,
scikit-learn>=1.8, pandas, scipy, camel-kenlm (native) and 14 more, and whose charsets module scans
all 1.1M code points at import. Its ``simple_word_tokenize`` needs no data download (the NER and
morphology models do) but returns strings without offsets, splits ``3.5`` into ``3 . 5`` and keeps
direction marks inside words. So this is a small regex tokenizer that mirrors it (whitespace, then
every Unicode punctuation/symbol) with offsets, using ``regex`` (required by transformers).

Token rules, tried in this order at each position:

1. URL (``http://``, ``https://``, ``www.``) up to whitespace, minus trailing punctuation.
2. E-mail address.
3. Single-letter abbreviations: one letter + ``.``, possibly chained (``د.``, ``ق.م.``, ``U.S.``).
   They are kept whole and never end a sentence; the price is that a sentence really ending in
   a one-letter word (``المجموعة ب.``) runs on to the next one unless a newline follows.
4. A word: letters, combining marks (diacritics), tatweel and digits, with ``.`` ``,`` ``٫`` ``٬``
   kept between two digits (``3.5``, ``٣٫٥``, ``1,000``). Clitics stay attached (``وبغداد``,
   ``بـ34.3``); a hyphen or apostrophe splits (``Afro-Asiatic`` is three tokens).
5. Punctuation and symbols: each is its own token, but a run of the *same* character stays one
   token (``...``, ``--``, ``؟؟``), as ANERcorp has ``--`` and ``''``; ``?!`` is two tokens.
   Private-use and unassigned code points count as symbols.

Whitespace of any kind separates tokens. Format and control characters (zero-width space/joiners,
LRM/RLM/ALM, embeddings, isolates, BOM, C0/C1 controls) are never part of a token: they separate
tokens like whitespace (one inside a word splits it) but are not sentence breaks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import regex

from kayan.errors import KayanError

__all__ = [
    "NORMALIZATIONS",
    "Token",
    "check_normalization",
    "normalize",
    "split_sentences",
    "tokenize",
    "tokenize_sentences",
]

# Characters allowed inside a URL; Arabic punctuation never is (it would glue the next word on).
_URL_CHAR = r"[^\s\p{Z}\p{C}<>\"«»،؛؟]"
_TOKEN_RE = regex.compile(
    rf"""
    # 1. URL, without trailing punctuation
      (?:(?i:https?://|www\.){_URL_CHAR}+(?<![.,;:!?'"’”)\]}}]))
    # 2. e-mail address
    | (?<![\p{{L}}\p{{M}}\p{{N}}._%+-])
      [\p{{L}}\p{{N}}][\p{{L}}\p{{N}}._%+-]*@[\p{{L}}\p{{N}}-]+(?:\.[\p{{L}}\p{{N}}-]+)+
    # 3. single-letter abbreviations
    | (?<![\p{{L}}\p{{M}}\p{{N}}.])(?:\p{{L}}\p{{M}}*\.)+(?![\p{{L}}\p{{M}}\p{{N}}.])
    # 4. word or number: letters (tatweel is one), marks, digits, separators between digits
    | (?:[\p{{L}}\p{{M}}\p{{N}}]|(?<=\p{{N}})[.,٫٬](?=\p{{N}}))+
    # 5. punctuation or symbol, a run of the same character
    | (?P<mark>[\p{{P}}\p{{S}}\p{{Co}}\p{{Cn}}])(?P=mark)*
    """,
    regex.VERBOSE,
)
# The lookbehinds in 2 and 3 let those rules start only where a run of word characters starts,
# so that text such as "a.a.a.a..." is tokenized in linear, not quadratic, time.

# A token that can end a sentence, and tokens that may follow it before the break.
_TERMINATOR_RE = regex.compile(r"[.!?؟…۔‼⁇⁈⁉]+")
_TRAILER_RE = regex.compile(r"[.!?؟…۔‼⁇⁈⁉]+|[\"'”’»›)\]}]+")
_WHITESPACE_RE = regex.compile(r"[\s\p{Z}]")
_LINE_BREAK_RE = regex.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")

# Harakat, tanween, shadda, sukun, dagger alef and Quranic annotation marks. Maddah and hamza
# above/below (U+0653-U+0655) are kept: in decomposed text they are part of a letter (ا + ٔ = أ).
_DIACRITICS_RE = regex.compile(
    "[\u0610-\u061a\u064b-\u0652\u0656-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8"
    "\u06ea-\u06ed\u0898-\u089f\u08ca-\u08e1\u08e3-\u08ff]"
)
_TATWEEL_RE = regex.compile("\u0640+")
# أ إ آ ٱ, and a bare alef followed by a combining maddah/hamza (the decomposed spellings).
_ALEF_RE = regex.compile("[\u0623\u0625\u0622\u0671][\u0653-\u0655]*|\u0627[\u0653-\u0655]+")


@dataclass(frozen=True)
class Token:
    """A word or punctuation token of a raw text.

    Args:
        text: the token as it appears in the original string, ``original[start:end]``.
        start: offset of its first character in the original string.
        end: offset just past its last character.
    """

    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split raw text into word and punctuation tokens with offsets into ``text``.

    Args:
        text: raw text, any length; may hold several sentences and lines.

    Returns:
        The tokens in order; ``text[t.start:t.end] == t.text`` for each. Rules: module docstring.

    >>> [t.text for t in tokenize("قال د. أحمد: وبغداد «جميلة»، ونسبة ٣٫٥ %...")]
    ['قال', 'د.', 'أحمد', ':', 'وبغداد', '«', 'جميلة', '»', '،', 'ونسبة', '٣٫٥', '%', '...']
    >>> tokenize("\\u200fمرحبا!")
    [Token(text='مرحبا', start=1, end=6), Token(text='!', start=6, end=7)]
    """
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def _sentence_ranges(text: str, tokens: Sequence[Token]) -> list[tuple[int, int]]:
    """Group tokens into sentences, as [first, last + 1) index ranges into ``tokens``.

    A sentence ends after a line break, or after a run of terminators (``. ! ? ؟ …``) and the
    closing quotes/brackets attached to it, when whitespace or the end of the text follows.

    Args:
        text: the raw text.
        tokens: ``tokenize(text)``.
    """
    ranges = []
    first = i = 0
    while i < len(tokens):
        last = i
        terminated = bool(_TERMINATOR_RE.fullmatch(tokens[i].text))
        if terminated:
            while (
                last + 1 < len(tokens)
                and tokens[last + 1].start == tokens[last].end
                and _TRAILER_RE.fullmatch(tokens[last + 1].text)
            ):
                last += 1
        if last + 1 == len(tokens):
            ends = True
        else:
            gap = (tokens[last].end, tokens[last + 1].start)
            ends = bool(_LINE_BREAK_RE.search(text, *gap)) or (
                terminated and bool(_WHITESPACE_RE.search(text, *gap))
            )
        if ends:
            ranges.append((first, last + 1))
            first = last + 1
        i = last + 1
    return ranges


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Find the sentences of a raw text, as (start, end) character spans into it.

    A sentence ends at every line break (so a paragraph break always ends one) and after
    ``.`` ``!`` ``?`` ``؟`` ``…`` (or a run of them, plus attached closing quotes or brackets)
    when whitespace follows. It never ends inside a token: not inside numbers (``3.5``, ``٣٫٥``),
    URLs, or after a single-letter abbreviation (``د.``); see the module docstring for the cost.
    Spans exclude surrounding whitespace and invisible marks; sentences never overlap.

    Args:
        text: raw text.

    Returns:
        One (start, end) span per sentence, in order; ``[]`` for empty or blank text.

    >>> text = "وصل د. أحمد إلى بغداد. بلغت النسبة 3.5 ؟\\n\\nشكرا"
    >>> [text[s:e] for s, e in split_sentences(text)]
    ['وصل د. أحمد إلى بغداد.', 'بلغت النسبة 3.5 ؟', 'شكرا']
    """
    tokens = tokenize(text)
    return [(tokens[a].start, tokens[b - 1].end) for a, b in _sentence_ranges(text, tokens)]


def tokenize_sentences(text: str) -> list[list[Token]]:
    """Split a raw text into sentences of tokens, with offsets into the whole ``text``.

    Same as :func:`tokenize` on each span of :func:`split_sentences`, in one pass.

    Args:
        text: raw text.

    Returns:
        One non-empty token list per sentence.

    >>> [[t.text for t in s] for s in tokenize_sentences("جاء زيد. ذهب عمرو!")]
    [['جاء', 'زيد', '.'], ['ذهب', 'عمرو', '!']]
    """
    tokens = tokenize(text)
    return [tokens[a:b] for a, b in _sentence_ranges(text, tokens)]


def _remove_diacritics(word: str) -> str:
    """Drop harakat, tanween, shadda, sukun, dagger alef and Quranic marks."""
    return _DIACRITICS_RE.sub("", word)


def _remove_tatweel(word: str) -> str:
    """Drop tatweel (kashida, U+0640)."""
    return _TATWEEL_RE.sub("", word)


def _unify_alef(word: str) -> str:
    """Write أ إ آ ٱ (precomposed or decomposed) as a bare alef ا."""
    return _ALEF_RE.sub("\u0627", word)


NORMALIZATIONS: dict[str, Callable[[str], str]] = {
    "remove_diacritics": _remove_diacritics,
    "remove_tatweel": _remove_tatweel,
    "unify_alef": _unify_alef,
}
"""Named word-normalization steps; a model stores the names of the steps it was trained with."""


def check_normalization(steps: Sequence[str]) -> tuple[str, ...]:
    """Validate a list of normalization step names, for config files and packaged models.

    Args:
        steps: names from :data:`NORMALIZATIONS`, in the order they are to be applied.

    Returns:
        The steps as a tuple.

    Raises:
        KayanError: a step is not a known name, or ``steps`` is one string instead of a list.

    >>> check_normalization(["remove_tatweel", "unify_alef"])
    ('remove_tatweel', 'unify_alef')
    """
    valid = ", ".join(sorted(NORMALIZATIONS))
    if isinstance(steps, str):
        raise KayanError(
            f"normalization steps must be a list of names, not the string {steps!r}; "
            f"write [{steps!r}] (valid steps: {valid})"
        )
    checked = tuple(steps)
    for step in checked:
        if not isinstance(step, str) or step not in NORMALIZATIONS:
            raise KayanError(
                f"unknown normalization step {step!r}; valid steps: {valid}. Fix or remove it "
                "where the steps are listed (the run config or the model's kayan.json)."
            )
    return checked


def normalize(word: str, steps: Sequence[str]) -> str:
    """Normalize one token with the named steps, applied in the given order.

    Apply it per token after :func:`tokenize`: offsets stay those of the original token. A token
    made only of tatweel or diacritics would normalize to ``""``; then the original ``word`` is
    returned unchanged, so callers always get a non-empty word and never drop a token.

    Args:
        word: one token's text.
        steps: names from :data:`NORMALIZATIONS` (checked by :func:`check_normalization`).

    Returns:
        The normalized word, or ``word`` itself if normalizing would leave nothing.

    Raises:
        KayanError: a step name is unknown.

    >>> normalize("أَحْمَـــد", ["remove_diacritics", "remove_tatweel", "unify_alef"])
    'احمد'
    >>> normalize("ـــ", ["remove_tatweel"])
    'ـــ'
    """
    result = word
    for step in check_normalization(steps):
        result = NORMALIZATIONS[step](result)
    return result or word
