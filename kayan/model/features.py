"""Words → subword windows, shared by training, evaluation and inference.

The promise this module keeps: every word of every sentence is trained on and predicted exactly
once, however long the sentence. A sentence whose subwords do not fit in one window is split into
overlapping windows (never truncated), and each word is *owned* by exactly one of them.

The window rule, in subwords (``capacity = window - number of special tokens``, 510 for BERT or
XLM-R at ``window=512``):

1. A window holds whole words, as many as fit in ``capacity``, starting at its first word.
2. The next window starts with up to ``stride`` subwords of the previous window's last words (whole
   words only, so the context may be shorter than ``stride``; it is shortened further if the first
   new word would not fit otherwise), then continues with the first word not yet in any window.
3. The words two neighbouring windows share are split at the middle (in subwords): the first half
   is owned by the earlier window, the rest by the later one. So the first window owns from the
   sentence start, the last one to its end, and an interior word has about ``stride / 2`` subwords
   of context on each side. A window that ends up owning nothing is dropped.

Only owned words carry labels and only their scores are read back (:func:`word_scores`); the rest
of a window is context.

Document context (FLERT, Schweter & Akbik 2020), when ``context > 0``: the window that starts a
sentence is preceded by up to ``context`` subwords of the words just before the sentence in its
document, and the window that ends it is followed by up to ``context`` subwords of the words just
after (whole words, nearest first, never across a document boundary, and only in the room the
window leaves: the left side gets at most half of it). Those words carry no label and own nothing,
so the exactly-once promise is untouched; they only let the encoder see the neighbourhood. A word that the tokenizer turns into no subwords at all (an empty string, a
lone control character) gets the unknown token, so it still has a position; a single word longer
than ``capacity`` keeps its first ``capacity`` subwords (its first subword, the one that is
scored, is always kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from kayan.checks import check_window
from kayan.data.schemes import inside_tag
from kayan.data.sentence import Sentence
from kayan.errors import KayanError

IGNORE = -100
"""The label of positions not trained on (PyTorch's ``CrossEntropyLoss`` ignore index)."""


@dataclass(frozen=True)
class Feature:
    """One window of subwords, ready for the model.

    Args:
        input_ids: the subword ids, special tokens included (``[CLS] ... [SEP]``, ``<s> ... </s>``).
        labels: one label id per position; :data:`IGNORE` where nothing is trained on; ``None``
            for unlabelled (inference) input.
        word_index: per position, the index in its sentence of the word this window owns there,
            or -1 for special tokens and for context words owned by another window.
        sentence: the index of the sentence in the list given to :func:`encode`.
    """

    input_ids: list[int]
    labels: list[int] | None
    word_index: list[int]
    sentence: int


class Window(NamedTuple):
    """Which words of a sentence a window holds (``start:end``) and owns (``own_start:own_end``)."""

    start: int
    end: int
    own_start: int
    own_end: int


def plan_windows(lengths: Sequence[int], *, capacity: int, stride: int) -> list[Window]:
    """Split a sentence into overlapping windows of whole words, each word owned exactly once.

    Args:
        lengths: the number of subwords of each word, each between 1 and ``capacity``.
        capacity: the most subwords a window holds (special tokens excluded).
        stride: the most subwords of context a window repeats from the previous one;
            ``0 <= stride < capacity``.

    Returns:
        The windows, in order; their owned ranges partition ``range(len(lengths))``.

    >>> plan_windows([1] * 10, capacity=6, stride=2)  # doctest: +NORMALIZE_WHITESPACE
    [Window(start=0, end=6, own_start=0, own_end=5),
     Window(start=4, end=10, own_start=5, own_end=10)]
    >>> plan_windows([2, 1], capacity=6, stride=2)
    [Window(start=0, end=2, own_start=0, own_end=2)]
    """
    if not 0 <= stride < capacity:
        raise ValueError(f"need 0 <= stride < capacity, got stride={stride}, capacity={capacity}")
    bad = [length for length in lengths if not 1 <= length <= capacity]
    if bad:
        raise ValueError(f"every word needs 1 to {capacity} subwords, got {bad[0]}")
    spans = _spans(lengths, capacity, stride)
    owners = [0]
    for (_, end), (start, _) in zip(spans, spans[1:]):
        owners.append(max(owners[-1], _middle(lengths, start, end)))
    owners.append(len(lengths))
    return [
        Window(start, end, own_start, own_end)
        for (start, end), own_start, own_end in zip(spans, owners, owners[1:])
        if own_end > own_start
    ]


def _spans(lengths: Sequence[int], capacity: int, stride: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` word ranges of the windows: rules 1 and 2 of the module docstring."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(lengths):
        end, used = start, 0
        while end < len(lengths) and used + lengths[end] <= capacity:
            used += lengths[end]
            end += 1
        spans.append((start, end))
        if end == len(lengths):
            break
        room = min(stride, capacity - lengths[end])
        start, used = end, 0
        while start - 1 > spans[-1][0] and used + lengths[start - 1] <= room:
            start -= 1
            used += lengths[start]
    return spans


def _middle(lengths: Sequence[int], start: int, end: int) -> int:
    """The first word of ``start:end`` whose middle is past the range's middle (in subwords)."""
    total = sum(lengths[start:end])
    middle, before = start, 0
    while middle < end and 2 * before + lengths[middle] <= total:
        before += lengths[middle]
        middle += 1
    return middle


def encode(
    sentences: Sequence[Sentence] | Sequence[Sequence[str]],
    tokenizer: Any,
    *,
    label2id: Mapping[str, int] | None = None,
    window: int = 512,
    stride: int = 128,
    label_all_subwords: bool = False,
    context: int = 0,
    documents: Sequence[object] | None = None,
) -> list[Feature]:
    """Turn sentences into model windows; every word is owned by exactly one window.

    Args:
        sentences: :class:`~kayan.data.sentence.Sentence` objects, or plain word lists (inference).
        tokenizer: a fast (tokenizers-backed) transformers tokenizer, BERT- or XLM-R-style.
        label2id: tag → label id; ``None`` for inference (the features' labels are then ``None``).
        window: the most subwords per window, special tokens included (the model's max length).
        stride: the most subwords of context a window repeats from the previous one (whole words);
            see the module docstring for the exact rule.
        label_all_subwords: label every subword of an owned word, not only its first; the
            continuations of a ``B-X`` word get ``I-X``.
        context: the most subwords of the neighbouring sentences on each side of a sentence
            (document context; 0: none). See the module docstring.
        documents: per sentence, the document it belongs to (neighbours in the list with equal
            values are one document); ``None``: the whole list is one document, in order.

    Returns:
        The features, sentence by sentence and window by window; an empty sentence has none.

    Raises:
        KayanError: ``window``/``stride`` leave no room for words, a tag is not in ``label2id``,
            or the tokenizer is not a fast one.

    >>> from kayan.model.tiny import train_wordpiece_tokenizer
    >>> tok = train_wordpiece_tokenizer(["زار", "أحمد", "بيروت"], vocab_size=40)
    >>> [f.word_index for f in encode([["زار", "أحمد", "بيروت"]], tok, window=4, stride=1)]
    [[-1, 0, 1, -1], [-1, -1, 2, -1]]
    >>> [f.word_index for f in encode([["زار"], ["أحمد"], ["بيروت"]], tok, window=6, stride=0, context=1)]
    [[-1, 0, -1, -1], [-1, -1, 0, -1, -1], [-1, -1, 0, -1]]
    """
    if not sentences:
        return []
    if context < 0:
        raise KayanError(f"training.context = {context} must be at least 0 (subwords of neighbouring sentences)")
    if documents is not None and len(documents) != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but {len(documents)} document ids")
    prefix, suffix = _special_ids(tokenizer)
    capacity = check_window(window, stride, specials=len(prefix) + len(suffix), key="training.")
    pieces = _subword_ids(tokenizer, [_words(sentence) for sentence in sentences], capacity)
    features = []
    for index, (sentence, word_pieces) in enumerate(zip(sentences, pieces)):
        labels = _word_labels(sentence, label2id, label_all_subwords) if label2id is not None else None
        for span in plan_windows([len(ids) for ids in word_pieces], capacity=capacity, stride=stride):
            left, right = _context(pieces, documents, index, span, capacity, context)
            features.append(_feature(index, span, word_pieces, labels, prefix + left, right + suffix))
    return features


def _context(pieces: list[list[list[int]]], documents: Sequence[object] | None, sentence: int, span: Window,
             capacity: int, context: int) -> tuple[list[int], list[int]]:
    """The document context's subword ids before and after one window of ``sentence`` (the module docstring's
    rule): before the window that starts the sentence, after the one that ends it, in the room it leaves."""
    if not context:
        return [], []
    lengths = [len(ids) for ids in pieces[sentence]]
    room = capacity - sum(lengths[span.start:span.end])
    left = _neighbours(pieces, documents, sentence, -1, min(context, room // 2)) if span.start == 0 else []
    right = _neighbours(pieces, documents, sentence, 1, min(context, room - len(left))) if span.end == len(lengths) else []
    return left, right


def _neighbours(pieces: list[list[list[int]]], documents: Sequence[object] | None, sentence: int, step: int,
                budget: int) -> list[int]:
    """Subword ids of the whole words next to ``sentence`` (before it for ``step=-1``, after for 1),
    nearest first, within its document and at most ``budget`` subwords, in reading order."""
    def nearest_first():
        other = sentence + step
        while 0 <= other < len(pieces) and (documents is None or documents[other] == documents[sentence]):
            yield from reversed(pieces[other]) if step < 0 else pieces[other]
            other += step

    taken: list[list[int]] = []
    used = 0
    for ids in nearest_first():
        if used + len(ids) > budget:
            break
        taken.append(ids)
        used += len(ids)
    return [i for ids in (reversed(taken) if step < 0 else taken) for i in ids]


def _words(sentence: Sentence | Sequence[str]) -> list[str]:
    """The words of a sentence given as a :class:`Sentence` or as a word list."""
    if isinstance(sentence, Sentence):
        return list(sentence.words)
    if isinstance(sentence, str):
        raise TypeError("encode() takes a list of sentences, each a Sentence or a list of words")
    return list(sentence)


def _special_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special token ids the tokenizer puts before and after one sequence.

    Read from the tokenizer's own post-processor (``[CLS] x [SEP]``, ``<s> x </s>``, ...), so it
    works for any fast tokenizer.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise KayanError(
            f"the tokenizer {type(tokenizer).__name__} is not a fast tokenizer; Kayan needs one "
            "(it maps subwords to words): use a model folder that has a tokenizer.json"
        )
    encoding = tokenizer([["a"]], is_split_into_words=True, add_special_tokens=True)
    ids, word_ids = encoding["input_ids"][0], encoding.word_ids(0)
    inside = [position for position, word in enumerate(word_ids) if word is not None]
    return ids[: inside[0]], ids[inside[-1] + 1 :]


def _subword_ids(tokenizer: Any, words: list[list[str]], capacity: int) -> list[list[list[int]]]:
    """Per sentence, per word, its subword ids: one tokenizer call for the whole batch.

    A word with no subwords gets the unknown token; one with more than ``capacity`` keeps its first
    ``capacity``.
    """
    encoding = tokenizer(
        words,
        is_split_into_words=True,
        add_special_tokens=False,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    filler = next((i for i in (tokenizer.unk_token_id, tokenizer.pad_token_id) if i is not None), 0)
    pieces = []
    for index, sentence in enumerate(words):
        per_word: list[list[int]] = [[] for _ in sentence]
        for token_id, word in zip(encoding["input_ids"][index], encoding.word_ids(index)):
            if word is not None:
                per_word[word].append(token_id)
        pieces.append([ids[:capacity] if ids else [filler] for ids in per_word])
    return pieces


def _word_labels(
    sentence: Sentence | Sequence[str], label2id: Mapping[str, int], all_subwords: bool
) -> list[tuple[int, int]]:
    """Per word, the label id of its first subword and of its other subwords.

    The other subwords get :data:`IGNORE`, or with ``all_subwords`` the word's own label, except
    that the continuations of a ``B-X`` word get ``I-X``.
    """
    if not isinstance(sentence, Sentence) or (sentence.words and not sentence.tags):
        where = f"{sentence.source}:{sentence.line}: " if getattr(sentence, "source", "") else ""
        raise KayanError(f"{where}a sentence has no tags; training and evaluation need tagged data")
    labels = []
    for offset, tag in enumerate(sentence.tags):
        rest = inside_tag(tag)
        for name in (tag, rest) if all_subwords else (tag,):
            if name not in label2id:
                line = sentence.line + offset if sentence.line else 0
                raise KayanError(
                    f"{sentence.source or '<input>'}:{line}: tag {name!r} is not in the label map "
                    f"({', '.join(sorted(label2id))}); add it to the labels or fix the corpus"
                )
        labels.append((label2id[tag], label2id[rest] if all_subwords else IGNORE))
    return labels


def _feature(
    sentence: int,
    span: Window,
    pieces: list[list[int]],
    labels: list[tuple[int, int]] | None,
    prefix: list[int],
    suffix: list[int],
) -> Feature:
    """Lay out one window: special tokens, the words of ``span``, labels on the owned ones."""
    input_ids, word_index = list(prefix), [-1] * len(prefix)
    label_ids = [IGNORE] * len(prefix)
    for word in range(span.start, span.end):
        ids = pieces[word]
        owned = span.own_start <= word < span.own_end
        input_ids += ids
        word_index += [word if owned else -1] * len(ids)
        first, rest = labels[word] if owned and labels is not None else (IGNORE, IGNORE)
        label_ids += [first] + [rest] * (len(ids) - 1)
    input_ids += suffix
    word_index += [-1] * len(suffix)
    label_ids += [IGNORE] * len(suffix)
    return Feature(input_ids, label_ids if labels is not None else None, word_index, sentence)


def to_dict(feature: Feature) -> dict[str, list[int]]:
    """The model inputs of a feature, as transformers' ``DataCollatorForTokenClassification`` takes.

    Args:
        feature: a window from :func:`encode`.

    Returns:
        ``input_ids`` and ``attention_mask``, and ``labels`` when the feature has labels. The
        collator pads them (labels with -100) into a batch.

    >>> to_dict(Feature([2, 7, 3], [-100, 1, -100], [-1, 0, -1], 0))
    {'input_ids': [2, 7, 3], 'attention_mask': [1, 1, 1], 'labels': [-100, 1, -100]}
    """
    inputs = {"input_ids": list(feature.input_ids), "attention_mask": [1] * len(feature.input_ids)}
    if feature.labels is not None:
        inputs["labels"] = list(feature.labels)
    return inputs


def word_scores(
    features: Sequence[Feature],
    logits: Sequence[np.ndarray],
    sentence_lengths: Sequence[int],
    *,
    n_labels: int | None = None,
) -> list[np.ndarray]:
    """Gather each word's scores from the first subword of the word in the window that owns it.

    Args:
        features: the windows from :func:`encode`, in any order.
        logits: per feature, its ``(seq_len, n_labels)`` scores; ``seq_len`` may exceed the
            feature's length (padding), which is ignored.
        sentence_lengths: the number of words of each sentence given to :func:`encode`.
        n_labels: the number of labels, for the shape of the arrays when there are no logits at
            all (only empty sentences); by default read from the logits.

    Returns:
        Per sentence, a ``(n_words, n_labels)`` array.

    Raises:
        RuntimeError: a word got no score or more than one (a bug, never the user's input).

    >>> feature = Feature([2, 7, 8, 3], None, [-1, 0, 0, -1], 0)
    >>> word_scores([feature], [np.arange(8.0).reshape(4, 2)], [1])
    [array([[2., 3.]])]
    """
    if len(features) != len(logits):
        raise RuntimeError(f"{len(features)} features but {len(logits)} logit arrays")
    sample = np.asarray(logits[0]) if len(logits) else np.zeros((0, n_labels or 0), np.float32)
    n_labels, dtype = sample.shape[-1], sample.dtype
    scores = [np.zeros((length, n_labels), dtype) for length in sentence_lengths]
    counts = [np.zeros(length, np.int64) for length in sentence_lengths]
    for feature, rows in zip(features, logits):
        index = np.asarray(feature.word_index, dtype=np.int64)
        rows = np.asarray(rows)
        first = (index >= 0) & np.concatenate(([True], index[1:] != index[:-1]))
        words = index[first]
        if rows.shape[0] < len(index) or np.any(words >= len(counts[feature.sentence])):
            raise RuntimeError(f"a feature of sentence {feature.sentence} does not fit its logits")
        scores[feature.sentence][words] = rows[: len(index)][first]
        np.add.at(counts[feature.sentence], words, 1)
    for sentence, count in enumerate(counts):
        if not np.all(count == 1):
            bad = np.flatnonzero(count != 1)[:5].tolist()
            raise RuntimeError(f"sentence {sentence}: words {bad} got {count[bad].tolist()} scores")
    return scores
