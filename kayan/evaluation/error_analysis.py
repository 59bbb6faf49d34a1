"""What kind of mistakes a tagger makes: error categories, a type confusion matrix, worst sentences.

Within each sentence, gold and predicted entities (read by :func:`kayan.data.schemes.entities`) are paired
one to one, so that **every gold entity and every predicted entity is counted exactly once**. The
pairing runs in stages; an entity paired in an earlier stage is not available to a later one:

1. ``exact``: same type, same first and last word (the true positives of the F1 score).
2. ``type``: same span, other type.
3. ``boundary``: same type, overlapping but different span.
4. ``type_boundary``: other type, overlapping but different span.

Left unpaired after stage 4, a gold entity is ``missed`` and a predicted entity is ``spurious``.
So when several categories could apply, the earlier stage wins. Within a stage, the pairs that
fit are taken greedily by decreasing overlap (on a tie, leftmost gold entity, then leftmost
prediction), skipping any whose gold or predicted entity is already paired. As entities of one
sequence never overlap each other, ``missed`` means no prediction overlaps the gold entity, except
in the rare case where every overlapping prediction was already paired with another gold entity
(a prediction spanning two gold entities pairs with the one it overlaps most; the other is
missed); likewise for ``spurious``.

Per-type counts are keyed by the *gold* type, except ``spurious`` (keyed by the predicted type),
so for each type ``exact + type + boundary + type_boundary + missed`` is its gold count.
"""

from __future__ import annotations

from collections.abc import Sequence

from kayan.data.schemes import entities
from kayan.data.sentence import Sentence
from kayan.evaluation.metrics import check_lengths

CATEGORIES = ("exact", "type", "boundary", "type_boundary", "missed", "spurious")
NONE = "O"  # the confusion-matrix row/column for "no entity"

Span = tuple[str, int, int]


def _overlap(a: Span, b: Span) -> int:
    return max(0, min(a[2], b[2]) - max(a[1], b[1]))


_STAGES = (
    ("exact", lambda g, p: g == p),
    ("type", lambda g, p: g[1:] == p[1:]),
    ("boundary", lambda g, p: g[0] == p[0] and _overlap(g, p) > 0),
    ("type_boundary", lambda g, p: g[0] != p[0] and _overlap(g, p) > 0),
)


def match_entities(gold: Sequence[Span], pred: Sequence[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """Pair one sentence's gold and predicted entities into categorised events.

    Args:
        gold: gold ``(type, start, end)`` entities of one sentence.
        pred: predicted entities of the same sentence.

    Returns:
        ``(category, gold_entity or None, predicted_entity or None)`` in order of position;
        each input entity appears in exactly one event.

    >>> match_entities([("PERS", 0, 2), ("LOC", 3, 4)], [("PERS", 0, 1), ("ORG", 5, 6)])
    [('boundary', ('PERS', 0, 2), ('PERS', 0, 1)), ('missed', ('LOC', 3, 4), None), ('spurious', None, ('ORG', 5, 6))]
    """
    gold_left, pred_left = set(gold), set(pred)
    events = []
    for category, fits in _STAGES:
        pairs = [(g, p) for g in gold_left for p in pred_left if fits(g, p)]
        for g, p in sorted(pairs, key=lambda pair: (-_overlap(*pair), pair[0][1], pair[1][1])):
            if g in gold_left and p in pred_left:
                events.append((category, g, p))
                gold_left.remove(g)
                pred_left.remove(p)
    events += [("missed", g, None) for g in gold_left]
    events += [("spurious", None, p) for p in pred_left]
    return sorted(events, key=lambda e: (min(x[1:] for x in e[1:] if x), CATEGORIES.index(e[0])))


def sentence_events(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, mode: str = "default"
) -> list[list[tuple[str, Span | None, Span | None]]]:
    """:func:`match_entities` for every sentence.

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags, aligned with ``gold``.
        mode: how entities are read (see :func:`kayan.data.schemes.entities`).

    Returns:
        One list of events per sentence.

    >>> sentence_events([["B-LOC", "O"]], [["B-ORG", "O"]])
    [[('type', ('LOC', 0, 1), ('ORG', 0, 1))]]
    """
    check_lengths(gold, pred)
    return [match_entities(entities(g, mode=mode), entities(p, mode=mode)) for g, p in zip(gold, pred)]


def error_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, mode: str = "default") -> dict:
    """Count each category per entity type (see the module docstring for the rules).

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags, aligned with ``gold``.
        mode: how entities are read (see :func:`kayan.data.schemes.entities`).

    Returns:
        ``{TYPE: {category: count}}`` for every type in gold or predictions, sorted by type.

    >>> error_counts([["B-LOC", "I-LOC", "O"]], [["B-LOC", "O", "B-PERS"]])["LOC"]
    {'exact': 0, 'type': 0, 'boundary': 1, 'type_boundary': 0, 'missed': 0, 'spurious': 0}
    """
    events = [e for sent in sentence_events(gold, pred, mode=mode) for e in sent]
    kinds = sorted({x[0] for _, g, p in events for x in (g, p) if x is not None})
    counts = {kind: dict.fromkeys(CATEGORIES, 0) for kind in kinds}
    for category, g, p in events:
        counts[(g or p)[0]][category] += 1
    return counts


def confusion_matrix(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, mode: str = "default") -> dict:
    """A gold-type by predicted-type matrix over the paired events.

    ``exact`` and ``boundary`` events fall on the diagonal, ``type`` and ``type_boundary`` off it,
    ``missed`` in the ``O`` column and ``spurious`` in the ``O`` row (the ``O``/``O`` cell is 0).
    Row sums are gold counts, column sums predicted counts.

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags, aligned with ``gold``.
        mode: how entities are read (see :func:`kayan.data.schemes.entities`).

    Returns:
        ``{"labels": [types..., "O"], "matrix": rows (gold) of columns (predicted)}``.

    >>> confusion_matrix([["B-LOC", "O", "B-ORG"]], [["B-ORG", "B-PERS", "O"]])["matrix"]
    [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]]
    """
    events = [e for sent in sentence_events(gold, pred, mode=mode) for e in sent]
    types = sorted({x[0] for _, g, p in events for x in (g, p) if x is not None})
    labels = types + [NONE]
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for _, g, p in events:
        matrix[index[g[0] if g else NONE]][index[p[0] if p else NONE]] += 1
    return {"labels": labels, "matrix": matrix}


def worst_sentences(
    gold_sents: Sequence[Sentence], pred_tags: Sequence[Sequence[str]], *, k: int = 10, mode: str = "default"
) -> list[dict]:
    """The ``k`` sentences with the most errors (non-``exact`` events), gold and prediction side by side.

    Args:
        gold_sents: gold sentences (words and tags).
        pred_tags: predicted tags, aligned with ``gold_sents``.
        k: how many sentences to return; sentences without errors are never returned.
        mode: how entities are read (see :func:`kayan.data.schemes.entities`).

    Returns:
        Dicts with ``sentence`` (1-based), ``source``, ``line``, ``errors``, ``words``, ``gold`` and
        ``pred`` (spans as ``{"type", "start", "end", "text"}``), and ``gold_text``/``pred_text``
        (the sentence with ``[TYPE words]`` brackets), most errors first, then in corpus order.

    >>> s = Sentence(("زار", "محمد", "عمان"), ("O", "B-PERS", "B-LOC"))
    >>> worst_sentences([s], [["O", "B-PERS", "I-PERS"]])[0]["pred_text"]
    'زار [PERS محمد عمان]'
    """
    gold = [list(s.tags) for s in gold_sents]
    ranked = []
    for i, events in enumerate(sentence_events(gold, pred_tags, mode=mode)):
        errors = sum(category != "exact" for category, _, _ in events)
        if errors:
            ranked.append((-errors, i))
    worst = []
    for minus_errors, i in sorted(ranked)[: max(k, 0)]:
        sent = gold_sents[i]
        gold_spans = entities(sent.tags, mode=mode)
        pred_spans = entities(pred_tags[i], mode=mode)
        worst.append({
            "sentence": i + 1, "source": sent.source, "line": sent.line, "errors": -minus_errors,
            "words": list(sent.words),
            "gold": _span_dicts(sent.words, gold_spans), "pred": _span_dicts(sent.words, pred_spans),
            "gold_text": bracketed(sent.words, gold_spans), "pred_text": bracketed(sent.words, pred_spans),
        })
    return worst


def bracketed(words: Sequence[str], spans: Sequence[Span]) -> str:
    """Render a sentence with its entities as ``[TYPE words]``.

    Args:
        words: the words of the sentence.
        spans: non-overlapping ``(type, start, end)`` entities.

    Returns:
        The words joined by spaces, entities bracketed.

    >>> bracketed(["in", "New", "York", "now"], [("LOC", 1, 3)])
    'in [LOC New York] now'
    """
    out, i = [], 0
    for kind, start, end in sorted(spans, key=lambda e: e[1]):
        out += words[i:start]
        out.append(f"[{kind} " + " ".join(words[start:end]) + "]")
        i = end
    return " ".join(out + list(words[i:]))


def _span_dicts(words: Sequence[str], spans: Sequence[Span]) -> list[dict]:
    return [{"type": k, "start": s, "end": e, "text": " ".join(words[s:e])} for k, s, e in spans]
