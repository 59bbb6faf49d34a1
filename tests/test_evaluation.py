"""kayan.evaluation: reading predictions, alignment errors, the report, atomic outputs, comparison."""

from __future__ import annotations

import json
import subprocess

import pytest

from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.evaluation import output_folders
from kayan.evaluation.alignment import check_alignment
from kayan.evaluation.comparison import compare
from kayan.evaluation.markdown import compare_markdown
from kayan.evaluation.metrics import score
from kayan.evaluation.output_folders import write_evaluation
from kayan.evaluation.predictions_file import predictions_text, read_predictions
from kayan.evaluation.scoring import evaluate
from tests.conftest import ANERCORP_TEST, CONLLEVAL, corrupt, needs_perl, needs_shared, read_two_columns

GOLD = [
    Sentence(("ذهب", "محمد", "بن", "علي", "إلى", "عمان"), ("O", "B-PERS", "I-PERS", "I-PERS", "O", "B-LOC"),
             source="gold.txt", line=1),
    Sentence(("قالت", "الأمم", "المتحدة", "،"), ("O", "B-ORG", "I-ORG", "O"), source="gold.txt", line=8),
    Sentence(("٣", "أيام", "في", "New", "York"), ("O", "O", "O", "B-LOC", "I-LOC"), source="gold.txt", line=13),
]
PRED = [
    ["O", "B-PERS", "I-PERS", "O", "O", "B-LOC"],
    ["I-ORG", "I-ORG", "I-ORG", "O"],
    ["O", "O", "O", "B-LOC", "I-LOC"],
]


def _write(tmp_path, text, name="pred.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_round_trip(tmp_path):
    path = _write(tmp_path, predictions_text(GOLD, PRED))
    sentences, predicted = read_predictions(path)
    assert [s.words for s in sentences] == [s.words for s in GOLD]
    assert [s.tags for s in sentences] == [s.tags for s in GOLD]
    assert predicted == PRED
    assert [s.line for s in sentences] == [1, 8, 13]
    assert sentences[0].source == str(path)
    check_alignment(GOLD, sentences, pred_path=path)


@pytest.mark.parametrize(
    "text",
    [
        "\ufeffa O O\r\nb B-LOC I-LOC\r\n\r\nc O O\r\n",  # BOM, CRLF
        "a O O\nb B-LOC I-LOC\n\n\n\nc O O",  # several blank lines, no final newline
        "a\tNN\tO\tO\nb  NNP  B-LOC\tI-LOC\n \t\nc x y O O\n\n",  # tabs, extra columns, blank with spaces
    ],
)
def test_tolerated_layouts(tmp_path, text):
    sentences, predicted = read_predictions(_write(tmp_path, text))
    assert [s.words for s in sentences] == [("a", "b"), ("c",)]
    assert [s.tags for s in sentences] == [("O", "B-LOC"), ("O",)]
    assert predicted == [["O", "I-LOC"], ["O"]]


def test_no_break_space_is_part_of_a_token(tmp_path):
    sentences, _ = read_predictions(_write(tmp_path, "عبد\u00a0الله B-PERS B-PERS\n"))
    assert sentences[0].words == ("عبد\u00a0الله",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a O O\nb O\n", r"pred\.txt:2: expected 'token \.\.\. gold predicted' \(at least 3 fields.*found 2: 'b O'"),
        ("a O O\n\nb\n", r"pred\.txt:3: expected .* found 1"),
        ("a O O\nb E-LOC O\n", r"pred\.txt:2: tag 'E-LOC' is not IOB2.*convert the file to IOB2"),
        ("a O B_LOC\n", r"pred\.txt:1: tag 'B_LOC' is not IOB2"),
    ],
)
def test_bad_lines(tmp_path, text, message):
    with pytest.raises(KayanError, match=message):
        read_predictions(_write(tmp_path, text))


def test_unreadable_files(tmp_path):
    with pytest.raises(KayanError, match=r"missing\.txt: cannot read the predictions file"):
        read_predictions(tmp_path / "missing.txt")
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 O O\n".encode("latin-1"))
    with pytest.raises(KayanError, match=r"latin1\.txt: not UTF-8 text.*save it as UTF-8"):
        read_predictions(path)


def _predicted(tmp_path, sentences, tags):
    path = _write(tmp_path, predictions_text(sentences, tags))
    return read_predictions(path)[0], path


def test_length_mismatch_names_both_places(tmp_path):
    short = [GOLD[0], Sentence(GOLD[1].words[:3], GOLD[1].tags[:3]), GOLD[2]]
    predicted, path = _predicted(tmp_path, short, [PRED[0], PRED[1][:3], PRED[2]])
    message = rf"{path}:8: sentence 2 has 3 words but the gold sentence \(gold\.txt:8\) has 4"
    with pytest.raises(KayanError, match=message):
        check_alignment(GOLD, predicted, pred_path=path)


def test_token_mismatch_names_the_line_and_both_words(tmp_path):
    changed = [GOLD[0], Sentence(("قالت", "الامم", "المتحدة", "،"), GOLD[1].tags), GOLD[2]]
    predicted, path = _predicted(tmp_path, changed, PRED)
    message = rf"{path}:9: sentence 2, word 2 is 'الامم' but the gold word is 'الأمم' \(gold\.txt:9\)"
    with pytest.raises(KayanError, match=message):
        check_alignment(GOLD, predicted, pred_path=path)


def test_sentence_count_mismatch(tmp_path):
    predicted, path = _predicted(tmp_path, GOLD[:2], PRED[:2])
    with pytest.raises(KayanError, match=rf"{path}: 2 sentences but the gold data has 3: sentence 3 \(gold\.txt:13\)"):
        check_alignment(GOLD, predicted, pred_path=path)
    predicted, path = _predicted(tmp_path, GOLD + GOLD[:1], PRED + PRED[:1])
    message = rf"{path}:19: 4 sentences but the gold data has 3: sentence 4 and later ones are extra"
    with pytest.raises(KayanError, match=message):
        check_alignment(GOLD, predicted, pred_path=path)


def test_empty_or_unlabelled_gold():
    with pytest.raises(KayanError, match="no sentences to score in ANERcorp/test; check the split name/file"):
        evaluate([], [], source="ANERcorp/test")
    with pytest.raises(KayanError, match=r"x\.txt:4: sentence 1 has no gold tags"):
        evaluate([Sentence(("a",), source="x.txt", line=4)], [["O"]])


def test_report_content():
    report = evaluate(GOLD, PRED, bootstrap_samples=200, seed=3)
    assert report["scheme"] == "IOB2" and set(report["modes"]) == {"default", "strict"}
    assert (report["sentences"], report["words"], report["dropped"]) == (3, 15, 0)
    assert report["default"]["micro"]["f1"] == score([list(s.tags) for s in GOLD], PRED)["micro"]["f1"]
    assert report["default"]["micro"]["tp"] == 2 and report["strict"]["micro"]["tp"] == 2
    assert report["default"]["micro"]["predicted"] == 4 and report["strict"]["micro"]["predicted"] == 3
    assert report["errors"]["PERS"]["boundary"] == 1 and report["errors"]["ORG"]["boundary"] == 1
    assert [w["sentence"] for w in report["worst_sentences"]] == [1, 2]
    boot = report["bootstrap"]
    assert boot["low"] <= boot["f1"] <= boot["high"] and boot["samples"] == 200 and boot["seed"] == 3
    assert json.loads(json.dumps(report)) == report
    assert evaluate(GOLD, PRED, bootstrap_samples=0)["bootstrap"] is None


def test_write_evaluation(tmp_path):
    report = evaluate(GOLD, PRED, bootstrap_samples=100)
    out = write_evaluation(report, GOLD, PRED, tmp_path / "eval")
    assert sorted(p.name for p in out.iterdir()) == [".kayan-output", "metrics.json", "predictions.txt", "report.md"]
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8")) == report
    sentences, predicted = read_predictions(out / "predictions.txt")
    assert predicted == PRED and [s.words for s in sentences] == [s.words for s in GOLD]
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("## Overall", "## Per type (default mode)", "## Per type (strict mode)",
                    "## Error categories", "## Confusion matrix", "## Worst sentences"):
        assert heading in markdown
    assert "[PERS محمد بن] علي" in markdown and "[PERS محمد بن علي]" in markdown


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def fail(report):
        raise RuntimeError("disk full")

    monkeypatch.setattr(output_folders, "report_markdown", fail)
    report = evaluate(GOLD, PRED, bootstrap_samples=0)
    with pytest.raises(RuntimeError, match="disk full"):
        write_evaluation(report, GOLD, PRED, tmp_path / "eval")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old").mkdir()
    for name in ("metrics.json", "predictions.txt", "report.md"):  # an earlier evaluation folder, which it may replace
        (tmp_path / "old" / name).write_text("{}")
    with pytest.raises(RuntimeError):
        write_evaluation(report, GOLD, PRED, tmp_path / "old")
    assert [p.name for p in tmp_path.iterdir()] == ["old"]
    assert (tmp_path / "old" / "metrics.json").read_text() == "{}"


def test_words_with_spaces_cannot_be_written():
    with pytest.raises(ValueError, match="holds a space"):
        predictions_text([Sentence(("New York",), ("B-LOC",))], [["B-LOC"]])


def test_compare():
    result = compare(GOLD * 20, PRED * 20, [list(s.tags) for s in GOLD] * 20, samples=200, names=("base", "gold"))
    assert result["delta"] < 0
    assert result["scores"]["gold"]["micro"]["f1"] == 1.0
    assert result["paired_bootstrap"]["p_value"] < 0.05 and result["approximate_randomization"]["p_value"] < 0.05
    markdown = compare_markdown(result)
    assert "# base vs gold" in markdown and "approximate randomization" in markdown
    same = compare(GOLD, PRED, PRED, samples=50)
    assert same["delta"] == 0 and same["paired_bootstrap"]["p_value"] == 1.0
    with pytest.raises(ValueError, match="two different names"):
        compare(GOLD, PRED, PRED, names=("A", "A"))


@needs_shared
@needs_perl
def test_anercorp_end_to_end_agrees_with_conlleval(tmp_path):
    gold = [Sentence(tuple(w), tuple(t), source=str(ANERCORP_TEST)) for w, t in read_two_columns(ANERCORP_TEST)]
    pred = corrupt([list(s.tags) for s in gold], seed=11)
    report = evaluate(gold, pred, bootstrap_samples=200)
    out = write_evaluation(report, gold, pred, tmp_path / "eval")
    with (out / "predictions.txt").open("rb") as handle:
        text = subprocess.run(["perl", str(CONLLEVAL)], stdin=handle, capture_output=True, check=True, text=True).stdout
    assert f"FB1: {100 * report['default']['micro']['f1']:6.2f}" in text
    assert f"accuracy: {100 * report['accuracy']:6.2f}%" in text
    sentences, predicted = read_predictions(out / "predictions.txt")
    check_alignment(gold, sentences, pred_path=out / "predictions.txt")
    assert predicted == pred
