"""report.html: every entity of a small prediction file appears with the right class and text;
the page is self-contained; `kayan evaluate --html` writes it; curves.png and compare's chart."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kayan import evaluation
from kayan.cli import main
from kayan.data.schemes import entities
from kayan.evaluation.report import render_html

REPO = Path(__file__).resolve().parent.parent
# token gold predicted: Arabic with a clitic and diacritics, Latin and digits inside Arabic text,
# and each error kind: missed, spurious, wrong type, wrong boundary, wrong type and boundary.
PREDICTIONS = """\
قال O O
الأمين B-PERS B-ORG
العام I-PERS O
لـ O O
الأمم B-ORG B-ORG
المتحدة I-ORG I-ORG

وصل O O
مُحمّد B-PERS B-PERS
بن I-PERS I-PERS
سلمان I-PERS O
إلى O O
بغداد B-LOC B-ORG
عام O O
٢٠٢٤ O O
. O O

شركة B-ORG B-ORG
Google I-ORG I-ORG
تفتح O O
مكتبا O O
في O O
دبي B-LOC O
و O B-PERS
القاهرة B-LOC B-LOC

"""


class Marks(HTMLParser):
    """Collects every ``<mark>``: its attributes and its own text (without the ``<sub>`` type label)."""

    def __init__(self):
        super().__init__()
        self.marks, self._open, self._in_sub, self.external = [], None, False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key):
                self.external.append(attrs[key])
        if tag == "link":
            self.external.append(str(attrs))
        if tag == "mark":
            self._open = {**attrs, "own_text": ""}
        elif tag == "sub":
            self._in_sub = True

    def handle_endtag(self, tag):
        if tag == "mark":
            self.marks.append(self._open)
            self._open = None
        elif tag == "sub":
            self._in_sub = False

    def handle_data(self, data):
        if self._open is not None and not self._in_sub:
            self._open["own_text"] += data


@pytest.fixture()
def scored(tmp_path):
    path = tmp_path / "predictions.txt"
    path.write_text(PREDICTIONS, encoding="utf-8")
    gold, predicted = evaluation.read_predictions(path)
    return gold, predicted, evaluation.evaluate(gold, predicted, bootstrap_samples=100, source=str(path)), path


def test_every_entity_appears_with_its_class_and_text(scored):
    gold, predicted, report, _ = scored
    parser = Marks()
    parser.feed(render_html(report, gold, predicted))
    found = sorted((m["data-side"], m["data-type"], m["own_text"]) for m in parser.marks)
    expected = sorted(
        [("gold", kind, " ".join(s.words[a:b])) for s in gold for kind, a, b in entities(s.tags)]
        + [("pred", kind, " ".join(s.words[a:b])) for s, p in zip(gold, predicted) for kind, a, b in entities(p)])
    assert found == expected
    for mark in parser.marks:
        assert f"t-{mark['data-type']}" in mark["class"].split() and mark["data-text"] == mark["own_text"]
    errors = {(m["data-side"], m["own_text"]): m["class"] for m in parser.marks if "err" in m["class"].split()}
    assert "err-missed" in errors[("gold", "دبي")] and "err-spurious" in errors[("pred", "و")]
    assert "err-type" in errors[("pred", "بغداد")] and "err-boundary" in errors[("pred", "مُحمّد بن")]
    assert "err-type_boundary" in errors[("pred", "الأمين")]
    assert ("pred", "الأمم المتحدة") not in errors and ("gold", "شركة Google") not in errors


def test_page_is_self_contained_rtl_and_worst_first(scored):
    gold, predicted, report, _ = scored
    page = render_html(report, gold, predicted)
    parser = Marks()
    parser.feed(page)
    assert parser.external == [] and "http://" not in page and "https://" not in page and "@import" not in page
    assert 'dir=rtl lang=ar' in page and "<bdi>Google</bdi>" not in page  # Google sits inside its entity's bdi
    # worst first: sentences 2 and 3 have two errors each (corpus order between them), sentence 1 one
    assert page.index("sentence 2 ·") < page.index("sentence 3 ·") < page.index("sentence 1 ·")
    assert "bootstrap interval" in page and "class=heatmap" in page and 'id=f-type' in page and 'id=f-error' in page


def test_cli_evaluate_html(scored, tmp_path, capsys):
    _, _, _, path = scored
    out = tmp_path / "eval"
    assert main(["evaluate", "--predictions", str(path), "--out", str(out), "--html"]) == 0
    assert "report.html" in capsys.readouterr().out
    assert 'data-side="gold"' in (out / "report.html").read_text(encoding="utf-8")
    assert main(["evaluate", "--predictions", str(path), "--html"]) == 2


def test_screenshot_in_chromium(scored, tmp_path):
    """The page renders in headless Chromium (skips where no Chromium is installed or installable)."""
    gold, predicted, report, _ = scored
    page = tmp_path / "report.html"
    page.write_text(render_html(report, gold, predicted), encoding="utf-8")
    script = REPO / "scripts" / "screenshot_report.py"
    result = subprocess.run([sys.executable, str(script), str(page), str(tmp_path / "shot.png"), "--no-install"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode == 3:
        pytest.skip(result.stderr.strip() or "no chromium")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "shot.png").stat().st_size > 5000


def test_curves_png_marks_the_selected_checkpoint(tmp_path):
    from kayan.evaluation.curves import selected_step, write_curves

    assert write_curves(tmp_path) is None  # no evaluation yet: nothing drawn
    rows = [{"step": 10 * i, "epoch": i, "train_loss": 2.0 / i, "dev_f1": f} for i, f in enumerate([0.1, 0.5, 0.4], start=1)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4', encoding="utf-8")
    assert selected_step(tmp_path, rows) == 20
    (tmp_path / "summary.json").write_text(json.dumps({"best_checkpoint": str(tmp_path / "checkpoints" / "checkpoint-30")}))
    assert selected_step(tmp_path, rows) == 30  # the Trainer's choice wins (e.g. select_best: false)
    png = write_curves(tmp_path)
    assert png == tmp_path / "curves.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_chart(scored, tmp_path):
    from kayan.evaluation.curves import write_compare_chart
    from kayan.evaluation.significance import type_intervals

    gold, predicted, _, _ = scored
    tags = [list(s.tags) for s in gold]
    result = evaluation.compare(gold, predicted, tags, samples=50, names=("a", "gold"))  # the chart's intervals included
    assert result["type_intervals"]["a"] == type_intervals(tags, predicted, samples=50)
    assert result["type_intervals"]["gold"]["micro"] == [1.0, 1.0]
    low, high = result["type_intervals"]["a"]["micro"]
    assert low <= result["scores"]["a"]["micro"]["f1"] <= high
    png = write_compare_chart(result, tmp_path / "compare.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
