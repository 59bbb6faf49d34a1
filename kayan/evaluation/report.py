"""``report.html``: one self-contained page a person reads to see what a tagger gets right and wrong.

No network: styles and the filter script are inline, there is no web font (the browser's own Arabic
fonts render the text) and no external link. The page holds the overall scores with the bootstrap
interval, the per-type tables (default and strict mode), the error categories, the confusion matrix
as a heatmap, and every sentence right-to-left with its gold entities (upper line) and predicted
entities (lower line) highlighted by type, errors marked (missed, spurious, wrong type, wrong
boundary, both), worst sentences first, filterable by type and by error kind.

Words are whole text nodes separated by spaces, so Arabic letters keep joining; each entity and
each word is a ``<bdi>`` (an entity's words one more, apart from its type label), so Latin names
and digits inside Arabic text keep their own direction and the label stays at the entity's end.
Every entity is a ``<mark>`` with ``data-type``, ``data-side`` (gold or pred) and ``data-text``
(its words joined by spaces), which is what tests and scripts read back.
"""

from __future__ import annotations

import html
from typing import Sequence

from kayan.data.sentence import Sentence
from kayan.evaluation.error_analysis import CATEGORIES, sentence_events
from kayan.evaluation.metrics import MODES

ERROR_NAMES = {"missed": "missed", "spurious": "spurious", "type": "wrong type",
               "boundary": "wrong boundary", "type_boundary": "wrong type and boundary"}
PALETTE = ("#f4a6a6", "#9fc5f8", "#b6d7a8", "#ffd966", "#d5a6bd", "#a2c4c9", "#f9cb9c", "#b4a7d6",
           "#c9daf8", "#d9ead3", "#fce5cd", "#ead1dc")
MAX_SENTENCES = 2000  # more would make a page too slow to open; the rest are counted, not drawn

_CSS = """
body{font-family:system-ui,"Noto Sans","DejaVu Sans",sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.big{font-size:1.3em;font-weight:bold}
.ar{font-family:"Noto Naskh Arabic","Noto Sans Arabic","Amiri","Arial","DejaVu Sans",sans-serif;font-size:1.25em;line-height:2.3}
.sent{border:1px solid #ddd;border-radius:6px;margin:.6em 0;padding:.3em .8em}
.meta{font-size:.8em;color:#666}.line{margin:.1em 0}.side{font-size:.75em;color:#888;display:inline-block;width:3.5em}
mark{border-radius:4px;padding:.05em .25em;margin:0 .05em}mark sub{font-size:.55em;font-family:monospace;margin-inline-start:.25em;color:#333}
mark.err{outline:2px solid #c00;outline-offset:1px}mark.err-missed{outline-style:dashed}mark.err-spurious{outline-style:dotted}
mark.err-boundary,mark.err-type_boundary{text-decoration:underline wavy #c00}
.badge{display:inline-block;font-size:.75em;background:#fde;border:1px solid #c99;border-radius:8px;padding:0 .5em;margin:0 .2em}
.ok{background:#e6f4ea;border-color:#9c9}.controls{position:sticky;top:0;background:#fff;padding:.4em 0;border-bottom:1px solid #ddd}
.hidden{display:none}.sents{max-height:75vh;overflow-y:auto;border:1px solid #eee;padding:0 .4em}.row{display:flex;flex-wrap:wrap;gap:0 3em;align-items:flex-start}h3{font-size:1em;margin:.8em 0 .3em}.interval{display:inline-block;vertical-align:middle}
"""

_SCRIPT = """
function applyFilters(){
  var t=document.getElementById('f-type').value,e=document.getElementById('f-error').value,n=0;
  document.querySelectorAll('.sent').forEach(function(s){
    var okT=!t||(' '+s.dataset.types+' ').indexOf(' '+t+' ')>=0;
    var okE=!e||(e==='none'?s.dataset.errors==='':(e==='any'?s.dataset.errors!=='':(' '+s.dataset.errors+' ').indexOf(' '+e+' ')>=0));
    s.classList.toggle('hidden',!(okT&&okE));if(okT&&okE)n++;});
  document.getElementById('shown').textContent=n;
}
document.addEventListener('DOMContentLoaded',function(){
  document.getElementById('f-type').addEventListener('change',applyFilters);
  document.getElementById('f-error').addEventListener('change',applyFilters);applyFilters();});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _colours(types: Sequence[str]) -> str:
    """One CSS rule per entity type: ``mark.t-PERS{background:...}``."""
    return "".join(f"mark.t-{_e(t)}{{background:{PALETTE[i % len(PALETTE)]}}}" for i, t in enumerate(types))


def _score_table(score: dict, title: str) -> str:
    head = "<tr><th class=l>type</th><th>precision</th><th>recall</th><th>F1</th><th>gold</th><th>predicted</th><th>correct</th></tr>"
    rows = [(kind, row) for kind, row in score["types"].items()] + [(avg, score[avg]) for avg in ("micro", "macro", "weighted")]
    body = "".join(
        f"<tr><td class=l>{_e(kind)}</td><td>{_pct(r['precision'])}</td><td>{_pct(r['recall'])}</td>"
        f"<td><b>{_pct(r['f1'])}</b></td><td>{r['support']}</td><td>{r.get('predicted', '')}</td><td>{r.get('tp', '')}</td></tr>"
        for kind, r in rows)
    return f"<h3>{_e(title)}</h3><table>{head}{body}</table>"


def _errors_table(errors: dict) -> str:
    short = {"exact": "correct", "type": "type", "boundary": "boundary", "type_boundary": "type + boundary"}
    head = "<tr><th class=l>type</th>" + "".join(f"<th>{_e(short.get(c, c))}</th>" for c in CATEGORIES) + "</tr>"
    body = "".join(f"<tr><td class=l>{_e(kind)}</td>" + "".join(f"<td>{row[c]}</td>" for c in CATEGORIES) + "</tr>"
                   for kind, row in errors.items())
    return f"<table>{head}{body}</table>"


def _heatmap(confusion: dict) -> str:
    """The confusion matrix as a table whose cells are shaded by their share of the row."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    head = "<tr><th class=l>gold \\ predicted</th>" + "".join(f"<th>{_e(x)}</th>" for x in labels) + "</tr>"
    rows = []
    for i, (label, row) in enumerate(zip(labels, matrix)):
        total = sum(row) or 1
        cells = []
        for j, count in enumerate(row):
            share = count / total
            hue = 130 if i == j else 0
            style = f"background:hsla({hue},70%,45%,{share:.2f});" + ("color:#fff;" if share > 0.55 else "")
            cells.append(f'<td style="{style}" title="{_e(label)} → {_e(labels[j])}: {count}">{count}</td>')
        rows.append(f"<tr><th class=l>{_e(label)}</th>{''.join(cells)}</tr>")
    return f"<table class=heatmap>{head}{''.join(rows)}</table>"


def _interval(boot: dict | None) -> str:
    if not boot:
        return "<p>No bootstrap interval (run with --bootstrap N).</p>"
    low, high, f1 = (100 * boot[k] for k in ("low", "high", "f1"))
    left, right = max(0.0, low - 5), min(100.0, high + 5)
    scale = lambda x: 10 + 380 * (x - left) / max(right - left, 1e-9)  # noqa: E731
    svg = (f'<svg class=interval width="400" height="34" role="img" aria-label="F1 interval">'
           f'<line x1="10" x2="390" y1="17" y2="17" stroke="#ccc"/>'
           f'<rect x="{scale(low):.1f}" y="9" width="{max(scale(high) - scale(low), 1):.1f}" height="16" fill="#9fc5f8"/>'
           f'<line x1="{scale(f1):.1f}" x2="{scale(f1):.1f}" y1="5" y2="29" stroke="#000" stroke-width="2"/>'
           f'<text x="10" y="32" font-size="9">{left:.1f}</text><text x="372" y="32" font-size="9">{right:.1f}</text></svg>')
    return (f"<p>Micro F1 ({_e(boot['mode'])} mode) <b>{f1:.2f}</b>, {boot['confidence']:.0%} bootstrap interval "
            f"<b>[{low:.2f}, {high:.2f}]</b> ({boot['samples']} resamples of sentences, seed {boot['seed']}). {svg}</p>")


def _entity_line(words: Sequence[str], spans: dict, side: str) -> str:
    """One line of a sentence: the words, entities wrapped in ``<mark>`` with their error class."""
    out, i = [], 0
    starts = {span[1]: (span, error) for span, error in spans.items()}
    while i < len(words):
        if i in starts:
            (kind, start, end), error = starts[i]
            text = " ".join(words[start:end])
            classes = f"ent t-{_e(kind)}" + (f" err err-{error}" if error else "")
            title = f"{kind}" + (f": {ERROR_NAMES[error]}" if error else "")
            out.append(f'<bdi><mark class="{classes}" data-type="{_e(kind)}" data-side="{side}" data-text="{_e(text)}" '
                       f'title="{_e(title)}"><bdi>{_e(text)}</bdi><sub>{_e(kind)}</sub></mark></bdi>')
            i = end
        else:
            out.append(f"<bdi>{_e(words[i])}</bdi>")
            i += 1
    return " ".join(out)


def _sentence(number: int, sentence: Sentence, events: list) -> tuple[str, set[str]]:
    """A sentence's block and its entity types."""
    gold_spans = {g: (None if c == "exact" else c) for c, g, _ in events if g}
    pred_spans = {p: (None if c == "exact" else c) for c, _, p in events if p}
    errors = [c for c, _, _ in events if c != "exact"]
    types = {span[0] for span in [*gold_spans, *pred_spans]}
    badges = "".join(f'<span class=badge>{_e(ERROR_NAMES[c])} ×{errors.count(c)}</span>' for c in CATEGORIES if c in errors) \
        or '<span class="badge ok">correct</span>'
    where = f"{sentence.source}:{sentence.line}" if sentence.line else sentence.source
    block = (f'<div class=sent data-types="{_e(" ".join(sorted(types)))}" data-errors="{_e(" ".join(sorted(set(errors))))}">'
             f'<div class=meta>sentence {number} · {_e(where)} · {len(errors)} error(s) {badges}</div>'
             f'<div class="line ar" dir=rtl lang=ar><span class=side dir=ltr>gold</span> {_entity_line(sentence.words, gold_spans, "gold")}</div>'
             f'<div class="line ar" dir=rtl lang=ar><span class=side dir=ltr>pred</span> {_entity_line(sentence.words, pred_spans, "pred")}</div>'
             "</div>")
    return block, types


def _sentences(gold: Sequence[Sentence], pred_tags: Sequence[Sequence[str]], limit: int) -> tuple[str, list[str], int]:
    """The sentence blocks, worst first (then in corpus order), and the entity types seen."""
    events = sentence_events([list(s.tags) for s in gold], pred_tags)
    ranked = sorted(range(len(gold)), key=lambda i: (-sum(c != "exact" for c, _, _ in events[i]), i))
    blocks, types = [], set()
    for i in ranked[:limit]:
        block, seen = _sentence(i + 1, gold[i], events[i])
        blocks.append(block)
        types |= seen
    return "".join(blocks), sorted(types), max(0, len(gold) - limit)


def _controls(types: Sequence[str], total: int) -> str:
    type_options = "".join(f'<option value="{_e(t)}">{_e(t)}</option>' for t in types)
    error_options = "".join(f'<option value="{c}">{_e(ERROR_NAMES[c])}</option>' for c in CATEGORIES if c != "exact")
    return (f'<div class=controls>Type <select id=f-type><option value="">all</option>{type_options}</select> '
            f'Error <select id=f-error><option value="">all sentences</option><option value=any>with errors</option>'
            f'{error_options}<option value=none>correct</option></select> '
            f'<span id=shown>{total}</span> of {total} sentences shown · upper line gold, lower line predicted; '
            f'outlines mark errors (dashed: missed, dotted: spurious, wavy underline: wrong boundary)</div>')


def render_html(report: dict, gold: Sequence[Sentence], pred_tags: Sequence[Sequence[str]], *,
                title: str = "Kayan evaluation report", limit: int = MAX_SENTENCES) -> str:
    """The whole page for the result of :func:`kayan.evaluation.evaluate`.

    Args:
        report: the evaluation report (scores, errors, confusion, bootstrap).
        gold: the gold sentences that were scored.
        pred_tags: the predicted tags, aligned with ``gold``.
        title: the page title.
        limit: most sentences drawn (worst first).

    >>> from kayan.evaluation.scoring import evaluate
    >>> gold = [Sentence(("في", "عمان"), ("O", "B-LOC"))]
    >>> page = render_html(evaluate(gold, [["O", "B-LOC"]], bootstrap_samples=0), gold, [["O", "B-LOC"]])
    >>> 'data-type="LOC" data-side="pred" data-text="عمان"' in page and "http" not in page
    True
    """
    blocks, types, left_out = _sentences(gold, pred_tags, limit)
    all_types = sorted(set(types) | set(report["default"]["types"]))
    micro = report["default"]["micro"]
    model = report.get("model", {})
    what = " · ".join(_e(x) for x in [report.get("source") or "", model.get("path", ""),
                                       model.get("decoding") and f"decoding {model['decoding']}"] if x)
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}{_colours(all_types)}</style><script>{_SCRIPT}</script></head><body>",
        f"<h1>{_e(title)}</h1><p>{what}</p>",
        f"<p class=big>F1 {_pct(micro['f1'])} · precision {_pct(micro['precision'])} · recall {_pct(micro['recall'])}</p>",
        f"<p>{report['sentences']:,} sentences, {report['words']:,} words scored, {report['dropped']} dropped; "
        f"token accuracy {_pct(report['accuracy'])}%. Scheme {_e(report['scheme'])}; "
        f"{_e(report['modes']['default'])}.</p>",
        _interval(report.get("bootstrap")),
        "<h2>Per type and confusions</h2><div class=row><div>",
        _score_table(report["default"], f"default mode: {report['modes']['default']}"),
        "</div><div><h3>Confusion matrix</h3><p class=meta>rows gold, columns predicted, O: no entity; "
        "shade: share of the gold row</p>", _heatmap(report["confusion"]), "</div></div>",
        "<h2>Sentences, worst first</h2>", _controls(types, min(len(gold), limit)), f"<div class=sents>{blocks}</div>",
        f"<p>{left_out:,} more sentences not drawn (limit {limit:,}).</p>" if left_out else "",
        "<h2>Strict mode and error categories</h2><div class=row><div>",
        *[_score_table(report[m], f"{m} mode: {report['modes'][m]}") for m in MODES if m != "default"],
        "</div><div><h3>Error categories (default mode)</h3>", _errors_table(report["errors"]), "</div></div>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
