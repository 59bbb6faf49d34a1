"""The Markdown of evaluate's report (``report.md``) and of compare's result (``compare.md``).

Percentages with 2 decimals, as ``conlleval`` prints them; a ``|`` inside a cell is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from kayan.evaluation import error_analysis, metrics


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
    """Render the report of :func:`kayan.evaluation.scoring.evaluate` as Markdown tables.

    Args:
        report: the result of :func:`kayan.evaluation.scoring.evaluate`.

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


def compare_markdown(result: dict) -> str:
    """Render :func:`kayan.evaluation.comparison.compare`'s result as Markdown.

    Args:
        result: the result of :func:`kayan.evaluation.comparison.compare`.

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
