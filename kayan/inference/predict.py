"""Tag raw Arabic text with a packaged model: ``kayan.load(path).predict(text)`` → entities.

The Predictor splits text into sentences and words with :mod:`kayan.data.arabic` (every word keeps its
character offsets into the caller's string), applies the model's normalization to each word, runs
the model through :func:`kayan.model.tagging.tag_words` (the same windows, length-sorted batches and
decoding as training and evaluation; an ensemble package averages its members' word probabilities
first, see :mod:`kayan.model.ensemble`) and reads entities out of the word tags. Normalization happens
after tokenization, so offsets always point into the *original* text: ``text[e.start:e.end] ==
e.text`` holds for every entity, with diacritics, tatweel or any other character in the input.

Entities are read from the tags as ``conlleval`` (and seqeval's default mode) reads them: ``B-X``
starts an entity, and an ``I-X`` that continues nothing also starts one. An entity runs from its
first word's start to its last word's end; its score is the mean of its words' confidences (the
softmax probability of each word's chosen tag).

Memory is bounded by the batch, not the text: a text is cut at line breaks into segments of about
64k characters (sentences never cross a line break, so this changes nothing), and the model runs on
chunks of about :data:`CHUNK_WORDS` words at a time, cut inside a text where needed; a model trained
with document context also gets the sentences on the other side of a cut as neighbours, so its tags
do not depend on where the cuts fall. :meth:`Predictor.tag_stream` tags a stream of texts (lines of
files, say) whose neighbours form one document, and answers at once when the input goes idle.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kayan.data.arabic import Token, tokenize_sentences
from kayan.data.schemes import entities as read_entities
from kayan.errors import KayanError
from kayan.model.ensemble import Ensemble
from kayan.model import settings
from kayan.model.modelref import OpenModel, open_model
from kayan.model.tagging import TaggingOptions

SEGMENT_CHARS = 1 << 16
CHUNK_WORDS = 8192


@dataclass(frozen=True)
class Entity:
    """A named entity found in the input.

    Args:
        text: the entity as it appears in the input: ``text == input[start:end]``.
        type: the entity type (``PERS``, ``LOC``, ...), as the model's labels name it.
        start: offset of its first character in the input string; for
            :meth:`Predictor.predict_words`, the index of its first word.
        end: offset just past its last character; for :meth:`Predictor.predict_words`, the index
            just past its last word.
        score: the mean, over its words, of the probability of each word's tag (0 to 1).
    """

    text: str
    type: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        """The entity as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence of the input: its tokens (with offsets), one tag and one confidence per token."""

    tokens: tuple[Token, ...]
    tags: tuple[str, ...]
    confidences: tuple[float, ...]


@dataclass(frozen=True)
class Document:
    """One input text and its tagged sentences, in order."""

    text: str
    sentences: tuple[TaggedSentence, ...]

    @property
    def entities(self) -> list[Entity]:
        """The entities of every sentence, in order of their offsets."""
        return [e for s in self.sentences for e in sentence_entities(self.text, s)]


def sentence_entities(text: str, sentence: TaggedSentence) -> list[Entity]:
    """The entities of one tagged sentence, with character offsets into ``text``.

    Args:
        text: the original string the sentence's tokens point into.
        sentence: the tokens, tags and confidences.

    Returns:
        The entities in order; they never overlap.

    >>> tokens = (Token("زار", 0, 3), Token("أَحمـد", 4, 10), Token("بغداد", 11, 16))
    >>> s = TaggedSentence(tokens, ("O", "B-PERS", "I-LOC"), (0.9, 0.8, 0.6))
    >>> sentence_entities("زار أَحمـد بغداد", s)  # doctest: +NORMALIZE_WHITESPACE
    [Entity(text='أَحمـد', type='PERS', start=4, end=10, score=0.8),
     Entity(text='بغداد', type='LOC', start=11, end=16, score=0.6)]
    """
    found = []
    for kind, first, last in read_entities(sentence.tags):
        start, end = sentence.tokens[first].start, sentence.tokens[last - 1].end
        score = sum(sentence.confidences[first:last]) / (last - first)
        found.append(Entity(text[start:end], kind, start, end, score))
    return found


def word_entities(words: Sequence[str], tags: Sequence[str], confidences: Sequence[float]) -> list[Entity]:
    """The entities of a pre-tokenized sentence, with word indices as ``start``/``end``.

    >>> word_entities(["في", "عمان", "اليوم"], ["O", "B-LOC", "O"], [1.0, 0.75, 1.0])
    [Entity(text='عمان', type='LOC', start=1, end=2, score=0.75)]
    """
    return [
        Entity(" ".join(words[first:last]), kind, first, last, float(sum(confidences[first:last]) / (last - first)))
        for kind, first, last in read_entities(tags)
    ]


def _segments(text: str, size: int = SEGMENT_CHARS) -> Iterator[tuple[int, str]]:
    """Cut ``text`` into ``(offset, piece)`` pieces of about ``size`` characters, each ending at a line feed.

    No token crosses a line break and every line break ends a sentence, so tokenizing the pieces
    gives the same sentences as tokenizing the whole text. A line longer than ``size`` stays whole.

    >>> list(_segments("ab\\ncd\\nef", size=4))
    [(0, 'ab\\n'), (3, 'cd\\n'), (6, 'ef')]
    """
    start = 0
    while start < len(text):
        end = start + size
        if end >= len(text):
            yield start, text[start:]
            return
        cut = text.rfind("\n", start, end)
        if cut < 0:
            cut = text.find("\n", end)
        if cut < 0:
            yield start, text[start:]
            return
        yield start, text[start : cut + 1]
        start = cut + 1


def text_sentences(text: str, *, segment_chars: int = SEGMENT_CHARS) -> Iterator[tuple[Token, ...]]:
    """The sentences of a raw text as token tuples, offsets into ``text``, read piece by piece.

    Same result as :func:`kayan.data.arabic.tokenize_sentences`, without tokenizing the whole text at once.

    >>> [[t.text for t in s] for s in text_sentences("جاء زيد.\\nذهب عمرو", segment_chars=4)]
    [['جاء', 'زيد', '.'], ['ذهب', 'عمرو']]
    """
    for base, piece in _segments(text, segment_chars):
        for tokens in tokenize_sentences(piece):
            yield tuple(tokens) if not base else tuple(Token(t.text, t.start + base, t.end + base) for t in tokens)


def _check_text(text: object, index: int) -> str:
    """Refuse anything but a string, with a message that says what to pass."""
    if not isinstance(text, str):
        raise TypeError(
            f"text {index} is a {type(text).__name__}, not a str; pass text (decode bytes first), "
            "or use predict_words for a list of words"
        )
    return text


def _check_words(words: object, index: int) -> list[str]:
    """A copy of one pre-tokenized sentence, refusing a bare string or non-string words."""
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise TypeError(f"sentence {index} must be a list of words (str), not a {type(words).__name__}; use predict() for raw text")
    bad = next((i for i, w in enumerate(words) if not isinstance(w, str)), None)  # an index: a word may be None
    if bad is not None:
        raise TypeError(f"sentence {index} holds a {type(words[bad]).__name__} ({words[bad]!r}) at word {bad}; "
                        "every word must be a str")
    blank = next((i for i, w in enumerate(words) if not w.strip()), None)  # would be tagged, and could be an entity
    if blank is not None:
        raise ValueError(f"sentence {index} holds an empty word ({words[blank]!r}) at word {blank}; words are tokens "
                         "with at least one visible character: drop it, or use predict() for raw text")
    return list(words)


class _Entry(NamedTuple):
    """A sentence of a text waiting to be tagged (``tokens``), or the text's end (``tokens`` is None)."""

    index: int
    text: str
    tokens: tuple[Token, ...] | None
    document: object


def _held_back(entries: Sequence[_Entry], context: int) -> int:
    """Where to cut ``entries`` before tagging: the first sentence still short of ``context`` words of right neighbours.

    Only the last document can go on past the entries, so only its last sentences are held back
    (all of them when it has fewer than ``context`` words so far: nothing of it can be tagged yet).

    >>> e = [_Entry(0, "", (Token("a", 0, 1),) * n, d) for n, d in ((3, 0), (2, 1), (1, 1), (1, 1))]
    >>> _held_back(e, 0), _held_back(e, 2), _held_back(e, 3), _held_back(e, 9)
    (4, 2, 1, 1)
    """
    cut, after = len(entries), 0
    for position in range(len(entries) - 1, -1, -1):
        entry = entries[position]
        if after >= context or entry.document != entries[-1].document:
            break
        if entry.tokens is not None:
            cut, after = position, after + len(entry.tokens)
    return cut


def _neighbours_before(entries: Sequence[_Entry], held: Sequence[_Entry], context: int) -> list[_Entry]:
    """The last sentences of ``entries`` in ``held``'s document, at least ``context`` words of them: its left neighbours."""
    if not held or not context:
        return []
    taken: list[_Entry] = []
    words = 0
    for entry in reversed(entries):
        if words >= context or entry.document != held[0].document:
            break
        if entry.tokens is not None:
            taken.append(entry)
            words += len(entry.tokens)
    return taken[::-1]


class Predictor:
    """Tags text with an opened model; made by :func:`load`.

    Args:
        model: the model (or ensemble) :func:`kayan.model.modelref.open_model` opened.
    """

    def __init__(self, model: OpenModel | Ensemble):
        self.model = model
        self.chunk_words = CHUNK_WORDS
        self.segment_chars = SEGMENT_CHARS

    @property
    def id2label(self) -> dict[int, str]:
        """Label id → tag."""
        return self.model.id2label

    @property
    def meta(self) -> dict:
        """The model's kayan.json as plain data, read and checked (``{}`` for a plain Hugging Face folder)."""
        return settings.to_dict(self.model.stored) if self.model.stored is not None else {}

    @property
    def backend_name(self) -> str:
        """``torch``, ``onnx`` or ``onnx-int8`` (an ensemble: its members', joined by ``+`` when they differ)."""
        return self.model.backend_name

    @property
    def options(self) -> TaggingOptions:
        """How the model reads words: window, stride, normalization, decoding, batch size, context.

        An ensemble's are the options its members share, with its own decoding.

        Raises:
            ValueError: an ensemble whose members read words differently (each one's options are
                ``predictor.model.members[i].options``).
        """
        if not isinstance(self.model, Ensemble):
            return self.model.options
        read = {replace(member.options, decoding=self.model.decoding) for member in self.model.members}
        if len(read) > 1:
            differ = [f.name for f in fields(TaggingOptions) if len({getattr(options, f.name) for options in read}) > 1]
            raise ValueError(f"the ensemble's members read words differently ({', '.join(differ)}): each one's options are "
                             "predictor.model.members[i].options")
        return read.pop()

    @property
    def backend(self):
        """The forward call (:mod:`kayan.model.backends`); an ensemble of one model: its member's.

        Raises:
            ValueError: an ensemble of several models, which has one forward call per member.
        """
        members = self.model.members
        if len(members) > 1:
            raise ValueError(f"an ensemble runs one forward call per member, {len(members)} models: each one's is "
                             "predictor.model.members[i].backend")
        return members[0].backend

    @property
    def labels(self) -> list[str]:
        """The model's tags, in label-id order."""
        return [self.id2label[i] for i in range(len(self.id2label))]

    def _tag(self, sentences: list[list[str]], documents: list[int]) -> tuple[list[list[str]], list[np.ndarray]]:
        return self.model.tag(sentences, documents=documents)

    def _context_words(self) -> int:
        """The most words of document context a member reads on each side of a sentence (0: none).

        A member reads at most ``context`` subwords, and every word is at least one subword.
        """
        return max(member.options.context for member in self.model.members)

    def _stream(self, items: Iterable[tuple[str, object] | None], progress: Callable[[int], object] | None):
        """Yield ``(index, text, TaggedSentence)`` per sentence and ``(index, text, None)`` at each text's end.

        ``items`` are ``(text, document)`` pairs, or ``None``: tag what is pending now. A chunk is cut
        after about :attr:`chunk_words` words, inside a text too; with document context the sentences
        next to the cut are also given to the model as neighbours (and tagged with their own chunk),
        so every sentence sees the neighbours it would see if its whole document were tagged at once.
        """
        context = self._context_words()
        pending: list[_Entry] = []
        before: list[_Entry] = []  # sentences just before ``pending`` in its document: neighbours only
        words, index = 0, -1
        for item in items:
            if item is None:
                yield from self._tag_chunk(before, pending, [], progress)
                pending, before, words = [], [], 0
                continue
            text, document = item
            index += 1
            _check_text(text, index)
            for tokens in text_sentences(text, segment_chars=self.segment_chars):
                pending.append(_Entry(index, text, tokens, document))
                words += len(tokens)
                if words >= self.chunk_words:
                    cut = _held_back(pending, context)
                    if cut:
                        yield from self._tag_chunk(before, pending[:cut], pending[cut:], progress)
                        before = _neighbours_before(before + pending[:cut], pending[cut:], context)
                        pending = pending[cut:]
                        words = sum(len(e.tokens) for e in pending if e.tokens is not None)
            pending.append(_Entry(index, text, None, document))
        yield from self._tag_chunk(before, pending, [], progress)

    def _tag_chunk(self, before: list[_Entry], chunk: list[_Entry], after: list[_Entry], progress):
        """Tag ``chunk``'s sentences, ``before`` and ``after`` given as neighbours only (their tags dropped)."""
        sentences = [e for e in (*before, *chunk, *after) if e.tokens is not None]
        if not sentences:
            yield from ((e.index, e.text, None) for e in chunk)
            return
        tags, confidences = self._tag([[t.text for t in e.tokens] for e in sentences], [e.document for e in sentences])
        results = iter(list(zip(tags, confidences))[len(before) :])
        words = sum(len(e.tokens) for e in chunk if e.tokens is not None)
        if progress is not None and words:
            progress(words)
        for entry in chunk:
            if entry.tokens is None:
                yield entry.index, entry.text, None
            else:
                sentence_tags, confidence = next(results)
                yield entry.index, entry.text, TaggedSentence(entry.tokens, tuple(sentence_tags), tuple(confidence.tolist()))

    def tag_texts(self, texts: Iterable[str], *, progress: Callable[[int], object] | None = None) -> Iterator[Document]:
        """Tag texts lazily, one :class:`Document` per text, in order (sentences of many texts share batches).

        Each text is its own document (a model trained with document context reads neighbours within it).

        Args:
            texts: raw texts (any iterable, read lazily; not modified).
            progress: called with the number of words tagged after each chunk.
        """
        if isinstance(texts, str):
            raise TypeError("tag_texts() takes a list of texts, not one str: wrap it in a list")
        return self.tag_stream(((text, index) for index, text in enumerate(texts)), progress=progress)

    def tag_stream(self, items: Iterable[tuple[str, object] | None], *,
                   progress: Callable[[int], object] | None = None) -> Iterator[Document]:
        """Tag ``(text, document)`` pairs lazily, one :class:`Document` per text, in order.

        Neighbouring texts with equal ``document`` values are one document for a model trained with
        document context (the lines of one file, say); memory stays bounded by :attr:`chunk_words`
        however long a document is. A ``None`` item tags the texts received so far at once instead of
        waiting for a full chunk: a reader sends it when its input is idle, so a live stream is
        answered line by line while a file is still tagged in full batches.

        Args:
            items: ``(text, document)`` pairs or ``None`` (any iterable, read lazily).
            progress: called with the number of words tagged after each chunk.
        """
        sentences: list[TaggedSentence] = []
        for _, text, sentence in self._stream(items, progress):
            if sentence is None:
                yield Document(text, tuple(sentences))
                sentences = []
            else:
                sentences.append(sentence)

    def predict(self, text: str) -> list[Entity]:
        """The entities of a raw text of any length, with character offsets into ``text``.

        Args:
            text: raw text; empty or blank text gives ``[]``.

        Returns:
            The entities, sorted by offset, never overlapping.
        """
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Iterable[str]) -> list[list[Entity]]:
        """The entities of each text, as :meth:`predict` gives them; sentences of all texts share batches.

        Args:
            texts: raw texts (a list or any iterable of str; not modified).
        """
        if isinstance(texts, str):
            raise TypeError("predict_batch() takes a list of texts; use predict() for one text")
        results: list[list[Entity]] = [[]]
        for _, text, sentence in self._stream(((text, index) for index, text in enumerate(texts)), None):
            if sentence is None:
                results.append([])
            else:
                results[-1] += sentence_entities(text, sentence)
        return results[:-1]

    def predict_words(self, words: Sequence[str]) -> list[Entity]:
        """The entities of one pre-tokenized sentence; ``start``/``end`` are word indices (end exclusive).

        Args:
            words: the sentence's words (not modified); the entity text joins words with a space.
        """
        return self.predict_words_batch([words])[0]

    def predict_words_batch(self, sentences: Iterable[Sequence[str]]) -> list[list[Entity]]:
        """:meth:`predict_words` for many sentences, batched together."""
        checked = [_check_words(words, i) for i, words in enumerate(sentences)]
        results: list[list[Entity]] = []
        start = 0
        while start < len(checked):
            end, size = start, 0
            while end < len(checked) and (size < self.chunk_words or end == start):
                size, end = size + len(checked[end]), end + 1
            tags, confidences = self._tag(checked[start:end], list(range(start, end)))  # unrelated sentences
            results += [word_entities(w, t, c) for w, t, c in zip(checked[start:end], tags, confidences)]
            start = end
        return results

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self.model.settings().items())
        return f"Predictor(backend={self.backend_name!r}, labels={len(self.id2label)}, {shown})"


def load(path: str | Path, *, backend: str = "auto", decoding: str | None = None, batch_size: int = 32,
         device: str | None = None, threads: int | None = None, precision: str = "fp32") -> Predictor:
    """Load a packaged model (or any Hugging Face token-classification folder) for inference.

    Args:
        path: a folder written by ``kayan package`` (an ensemble package too), a run folder, or a
            plain model folder (used with default settings and a warning).
        backend: ``auto`` (ONNX when ``onnx/model.onnx`` exists and onnxruntime is installed, else
            PyTorch), ``torch``, ``onnx`` or ``onnx-int8`` (the quantized model).
        decoding: override the stored decoding: ``first`` or ``viterbi``.
        batch_size: windows per forward call; bounds memory.
        device: PyTorch device (default: ``cuda`` when available, else ``cpu``).
        threads: CPU threads of the forward pass (default: one per physical core). For PyTorch,
            ``torch.set_num_threads(threads)`` while each forward pass runs, and PyTorch's count as it
            was after (the count is the process's: do not run models with different counts from two
            threads at once); for ONNX, the session's intra-op pool.
        precision: PyTorch's arithmetic: ``fp32`` (the default, the scores of record), ``bf16``
            (autocast: on a CPU with AVX512-BF16 or AMX about 2.5× faster, tags a little different:
            see the README), or ``auto`` (bf16 where the device has it natively).

    Returns:
        A :class:`Predictor`.

    Raises:
        KayanError: missing or corrupt files, inconsistent settings, an unknown backend or method.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise KayanError(f"kayan.load needs the path of a model folder (a package, a run folder), not {path!r}")
    return Predictor(open_model(path, backend=backend, decoding=decoding, threads=threads, batch_size=batch_size, device=device,
                                precision=precision))
