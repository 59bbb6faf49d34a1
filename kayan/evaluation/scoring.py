"""Score predicted tags against gold sentences, write the report, compare two systems.

The model-free half of evaluation (a model tagging a split is :mod:`kayan.evaluation.model_scoring`):
predictions come in as word tags (from a model, or from a ``conlleval``-format file read by
:func:`read_predictions`), and out go ``metrics.json``, ``report.md`` and ``predictions.txt`` (which
``conlleval.pl`` scores to the same numbers). Scores are seqeval's, in both modes (see
:mod:`kayan.evaluation.metrics`); error analysis, the bootstrap interval and the significance tests
are computed in the default (conlleval) mode.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from kayan.checks import check_number
from kayan.data.conll import FIELD_SEPARATOR, TOKEN_BREAK
from kayan.data.schemes import label_types, split_tag
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.evaluation import error_analysis, metrics, significance
from kayan.evaluation.report import render_html
from kayan.files import read_utf8
from kayan.outputs import EVALUATION, folder

CONFIDENCE = 0.95
OUT_FIX = "choose a new or empty --out folder"  # the fix when --out is not a folder evaluate or compare may write
_ALIGN_FIX = "the predictions must list the gold sentences' words, in order, one per line"


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
        stripped = line.strip(" \t\r")
        fields = FIELD_SEPARATOR.split(stripped) if stripped else []
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
                f"({_where(g)}) has {len(g)}; {_ALIGN_FIX}"
            )
        for j, (gold_word, pred_word) in enumerate(zip(g.words, p.words)):
            if gold_word != pred_word:
                raise KayanError(
                    f"{pred_path}:{p.line + j}: sentence {i}, word {j + 1} is {pred_word!r} but the gold "
                    f"word is {gold_word!r} ({_where(g, j)}); {_ALIGN_FIX}"
                )
    if len(gold) > len(predicted):
        raise KayanError(
            f"{pred_path}: {len(predicted)} sentences but the gold data has {len(gold)}: sentence "
            f"{len(predicted) + 1} ({_where(gold[len(predicted)])}) and later ones are missing; {_ALIGN_FIX}"
        )
    if len(gold) < len(predicted):
        extra = predicted[len(gold)]
        raise KayanError(
            f"{pred_path}:{extra.line}: {len(predicted)} sentences but the gold data has {len(gold)}: "
            f"sentence {len(gold) + 1} and later ones are extra; {_ALIGN_FIX}"
        )


def _where(sentence: Sentence, word: int = 0) -> str:
    if not sentence.source:
        return "the gold data"
    return f"{sentence.source}:{sentence.line + word}" if sentence.line else sentence.source


def gold_tags(gold: Sequence[Sentence], *, source: str = "") -> list[list[str]]:
    """The gold tags of labelled sentences, refusing an empty or unlabelled set.

    Args:
        gold: the gold sentences.
        source: where they come from (file or split), for the message when there are none.

    Returns:
        One list of tags per sentence.

    Raises:
        KayanError: no sentences, or a sentence with words but no tags.

    >>> gold_tags([], source="test.txt")
    Traceback (most recent call last):
    ...
    kayan.errors.KayanError: no sentences to score in test.txt; check the split name/file
    """
    if not gold:
        raise KayanError(f"no sentences to score in {source or 'the gold data'}; check the split name/file")
    for i, sentence in enumerate(gold, start=1):
        if len(sentence) and not sentence.tags:
            raise KayanError(f"{_where(sentence)}: sentence {i} has no gold tags; evaluate on a labelled file")
    return [list(sentence.tags) for sentence in gold]


def evaluate(
    gold: Sequence[Sentence],
    pred_tags: Sequence[Sequence[str]],
    *,
    bootstrap_samples: int = 1000,
    seed: int = 12345,
    worst: int = 10,
    source: str = "",
) -> dict:
    """Score predicted tags against gold sentences: the full report, ready for JSON.

    Args:
        gold: the gold sentences.
        pred_tags: one predicted tag per gold word.
        bootstrap_samples: resamples for the micro-F1 confidence interval (0: no interval).
        seed: seed of the bootstrap.
        worst: how many of the worst sentences to list.
        source: where the gold comes from, for messages.

    Returns:
        ``scheme``, ``modes`` (names), ``sentences``, ``words``, ``dropped`` (always 0: every word is
        scored), ``accuracy``, ``default`` and ``strict`` (:func:`kayan.evaluation.metrics.score`), ``errors``,
        ``confusion``, ``worst_sentences`` and ``bootstrap`` (default mode).

    Raises:
        KayanError: no gold sentences, or unlabelled ones.
        ValueError: ``pred_tags`` not shaped like the gold, or a tag that is not IOB2.

    >>> r = evaluate([Sentence(("في", "عمان"), ("O", "B-LOC"))], [["O", "B-LOC"]], bootstrap_samples=10)
    >>> r["default"]["micro"]["f1"], r["bootstrap"]["low"], r["dropped"]
    (1.0, 1.0, 0)
    """
    check_number("bootstrap_samples", bootstrap_samples, 0, whole=True)
    tags = gold_tags(gold, source=source)
    metrics.check_lengths(tags, pred_tags)
    default = metrics.score(tags, pred_tags, mode="default")
    return {
        "scheme": metrics.SCHEME,
        "modes": dict(metrics.MODE_NAMES),
        "source": source or gold[0].source,
        "sentences": len(gold),
        "words": default["words"],
        "dropped": 0,
        "accuracy": default["accuracy"],
        "default": default,
        "strict": metrics.score(tags, pred_tags, mode="strict"),
        "errors": error_analysis.error_counts(tags, pred_tags),
        "confusion": error_analysis.confusion_matrix(tags, pred_tags),
        "worst_sentences": error_analysis.worst_sentences(gold, pred_tags, k=worst),
        "bootstrap": _bootstrap(tags, pred_tags, default, samples=bootstrap_samples, seed=seed),
    }


def _bootstrap(
    tags: list[list[str]], pred_tags: Sequence[Sequence[str]], default: dict, *, samples: int, seed: int
) -> dict | None:
    if not samples:
        return None
    counts = metrics.sentence_counts(tags, pred_tags)
    low, high = significance.bootstrap_f1(counts, samples=samples, seed=seed, confidence=CONFIDENCE)
    return {
        "mode": "default", "metric": "micro f1", "f1": default["micro"]["f1"],
        "low": low, "high": high, "confidence": CONFIDENCE, "samples": samples, "seed": seed,
    }


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
                raise ValueError(f"word {word!r} ({_where(sentence)}) is empty or holds a space, tab or line end")
            lines.append(f"{word} {tag} {guess}\n")
        lines.append("\n")
    return "".join(lines)


def write_outputs(
    report: dict, gold: Sequence[Sentence], pred_tags: Sequence[Sequence[str]], out_dir: str | os.PathLike,
    *, html: bool = False, inputs: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write ``predictions.txt``, ``metrics.json`` and ``report.md`` into ``out_dir``, atomically.

    Args:
        report: the result of :func:`evaluate`.
        gold: the gold sentences that were scored.
        pred_tags: the predicted tags that were scored.
        out_dir: the folder to create; an evaluation folder already there is replaced as a whole, anything
            else that is not empty is refused (:func:`kayan.outputs.check_replaceable`).
        html: also write ``report.html`` (:mod:`kayan.evaluation.report`: sentences with entities and errors marked).
        inputs: what the scores were read from (model, data, predictions file), which ``out_dir`` may not hold.

    Returns:
        The folder's path. If anything fails, ``out_dir`` keeps its previous content (or stays absent).
    """
    with folder(out_dir, EVALUATION, inputs=inputs, overwrite=True, fix=OUT_FIX) as tmp:
        (tmp / "predictions.txt").write_text(predictions_text(gold, pred_tags), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(report_markdown(report), encoding="utf-8")
        if html:
            (tmp / "report.html").write_text(render_html(report, gold, pred_tags), encoding="utf-8")
    return Path(out_dir)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


_SCORE_HEADER = ("precision", "recall", "F1", "gold", "predicted", "correct")


def _score_cells(row: dict) -> list[object]:
    return [_pct(row["precision"]), _pct(row["recall"]), _pct(row["f1"]),
            row["support"], row.get("predicted", ""), row.get("tp", "")]


def _type_table(score: dict) -> list[str]:
    rows = [[kind, *_score_cells(row)] for kind, row in score["types"].items()]
    rows += [[f"*{avg}*", *_score_cells(score[avg])] for avg in ("micro", "macro", "weighted")]
    return _table(("type", *_SCORE_HEADER), rows)


def report_markdown(report: dict) -> str:
    """Render the report of :func:`evaluate` as Markdown tables (percentages, 2 decimals as conlleval).

    Args:
        report: the result of :func:`evaluate`.

    Returns:
        The text of ``report.md``.
    """
    out = ["# Evaluation report", "",
           f"Source: {report['source'] or '-'}. Scheme: {report['scheme']}. Sentences: {report['sentences']}; "
           f"words: {report['words']}; dropped: {report['dropped']}. Token accuracy: {_pct(report['accuracy'])}%.",
           "", "## Overall (micro average)", ""]
    out += _table(("mode", *_SCORE_HEADER),
                  [[f"{m}: {report['modes'][m]}", *_score_cells(report[m]["micro"])] for m in metrics.MODES])
    boot = report["bootstrap"]
    if boot:
        out += ["", f"Micro F1 ({boot['mode']} mode) {boot['confidence']:.0%} bootstrap interval: "
                f"[{_pct(boot['low'])}, {_pct(boot['high'])}] "
                f"({boot['samples']} resamples of sentences, seed {boot['seed']})."]
    for mode in metrics.MODES:
        out += ["", f"## Per type ({mode} mode)", ""] + _type_table(report[mode])
    out += ["", "## Error categories (default mode; see kayan.evaluation.error_analysis)", ""]
    out += _table(("type", *error_analysis.CATEGORIES),
                  [[kind, *row.values()] for kind, row in report["errors"].items()])
    confusion = report["confusion"]
    out += ["", "## Confusion matrix (rows: gold, columns: predicted, O: no entity)", ""]
    out += _table(("gold \\ predicted", *confusion["labels"]),
                  [[label, *row] for label, row in zip(confusion["labels"], confusion["matrix"])])
    out += ["", "## Worst sentences", ""]
    out += _table(("sentence", "line", "errors", "gold", "predicted"),
                  [[w["sentence"], w["line"], w["errors"], w["gold_text"], w["pred_text"]]
                   for w in report["worst_sentences"]])
    return "\n".join(out) + "\n"


def compare(
    gold: Sequence[Sentence],
    pred_a: Sequence[Sequence[str]],
    pred_b: Sequence[Sequence[str]],
    *,
    samples: int = 1000,
    seed: int = 12345,
    names: tuple[str, str] = ("A", "B"),
) -> dict:
    """Compare two systems on the same gold sentences (default mode, micro F1).

    Args:
        gold: the gold sentences.
        pred_a: the tags of system A.
        pred_b: the tags of system B.
        samples: resamples / shuffles of each significance test.
        seed: seed of both tests.
        names: display names of A and B.

    Returns:
        ``names``, ``scores`` (name → :func:`kayan.evaluation.metrics.score`), ``delta`` (F1 A − F1 B),
        ``paired_bootstrap`` and ``approximate_randomization`` (see :mod:`kayan.evaluation.significance`).

    >>> g = [Sentence(("في", "عمان"), ("O", "B-LOC"))]
    >>> compare(g, [["O", "B-LOC"]], [["O", "O"]], samples=20)["delta"]
    1.0
    """
    if len(set(names)) != 2:
        raise ValueError(f"names must be two different names, not {names}")
    check_number("samples", samples, 1, whole=True)
    tags = gold_tags(gold)
    types = metrics.entity_types(tags, pred_a, pred_b)
    counts_a = metrics.sentence_counts(tags, pred_a, types=types)
    counts_b = metrics.sentence_counts(tags, pred_b, types=types)
    tests = {"samples": samples, "seed": seed}
    return {
        "names": list(names), "mode": "default", "scheme": metrics.SCHEME, "sentences": len(gold),
        "scores": {names[0]: metrics.score(tags, pred_a), names[1]: metrics.score(tags, pred_b)},
        "delta": significance.micro_f1(counts_a.sum(axis=(0, 1))) - significance.micro_f1(counts_b.sum(axis=(0, 1))),
        "paired_bootstrap": significance.paired_bootstrap(counts_a, counts_b, **tests),
        "approximate_randomization": significance.approximate_randomization(counts_a, counts_b, **tests),
    }


def check_two_systems(a: str | os.PathLike, b: str | os.PathLike) -> None:
    """Refuse a comparison of a system with itself (the same file, or the same model by another path).

    Checked on the paths, before anything is read or tagged: a run folder and its ``model/`` are one model.

    >>> check_two_systems("x.txt", "./x.txt")
    Traceback (most recent call last):
    kayan.errors.KayanError: x.txt and ./x.txt are the same system; compare two different predictions files or models
    """
    def identity(path: str | os.PathLike) -> Path:
        resolved = Path(path).expanduser().resolve()
        return resolved / "model" if (resolved / "model" / "config.json").is_file() else resolved

    if identity(a) == identity(b):
        raise KayanError(f"{a} and {b} are the same system; compare two different predictions files or models")


def check_same_gold(a: Sequence[Sentence], b: Sequence[Sentence], name_a: str, name_b: str) -> None:
    """Two systems compared must have tagged the same words (:func:`check_alignment`) with the same gold tags."""
    check_alignment(a, b, pred_path=name_b)
    for index, (x, y) in enumerate(zip(a, b)):
        if x.tags != y.tags:
            raise KayanError(f"{name_b}: sentence {index + 1} ({_where(y)}) differs from {name_a}'s ({_where(x)}) in its "
                             "gold tags; compare predictions of the same data")


def compare_markdown(result: dict) -> str:
    """Render :func:`compare`'s result as Markdown.

    Args:
        result: the result of :func:`compare`.

    Returns:
        Overall and per-type tables and the two tests' p-values.
    """
    a, b = result["names"]
    scores = result["scores"]
    boot, rand = result["paired_bootstrap"], result["approximate_randomization"]
    out = [f"# {a} vs {b}", "", f"{result['sentences']} sentences, {result['mode']} mode, micro average.", ""]
    out += _table(("system", *_SCORE_HEADER), [[name, *_score_cells(scores[name]["micro"])] for name in (a, b)])
    types = sorted(set(scores[a]["types"]) | set(scores[b]["types"]))
    out += ["", "## F1 per type", ""]
    out += _table(("type", a, b, "delta"), [[t, *_type_f1s(scores, t, a, b)] for t in types])
    out += ["", f"Delta F1 ({a} − {b}): {_pct(result['delta'])} points.", "",
            f"- paired bootstrap ({boot['samples']} resamples, seed {boot['seed']}): p = {boot['p_value']:.4f} "
            f"(two-sided), {boot['p_value_one_sided']:.4f} (one-sided, Berg-Kirkpatrick et al. 2012)",
            f"- approximate randomization ({rand['samples']} shuffles, seed {rand['seed']}): p = {rand['p_value']:.4f}"]
    return "\n".join(out) + "\n"


def _type_f1s(scores: dict, kind: str, a: str, b: str) -> list[str]:
    f1 = [scores[n]["types"].get(kind, {"f1": 0.0})["f1"] for n in (a, b)]
    return [_pct(f1[0]), _pct(f1[1]), _pct(f1[0] - f1[1])]


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
