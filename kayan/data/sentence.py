"""The one sentence type every stage reads and writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sentence:
    """A sentence of words with one word-level IOB2 tag each.

    Args:
        words: the words, as the corpus (or the tokenizer) has them.
        tags: one tag per word (``O``, ``B-PERS``, ``I-LOC`` ...); empty for unlabelled text.
        source: where the sentence came from (a file path), for messages.
        line: the 1-based line of the sentence's first word in ``source`` (0 when unknown).
    """

    words: tuple[str, ...]
    tags: tuple[str, ...] = ()
    source: str = ""
    line: int = 0

    def __post_init__(self) -> None:
        if self.tags and len(self.tags) != len(self.words):
            raise ValueError(f"{len(self.words)} words but {len(self.tags)} tags")

    def __len__(self) -> int:
        return len(self.words)
