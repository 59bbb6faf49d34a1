"""Document context (training.context) end to end: recorded with the model, read the same way in
training, evaluation and prediction, and never changing which words are scored."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

import kayan
from kayan.config import load_config
from kayan.evaluation import evaluate_model
from kayan.model import settings
from tests.conftest import FAST

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def context_run(tmp_path_factory):
    from kayan.training import train

    base = tmp_path_factory.mktemp("context")
    config = load_config(REPO / "configs" / "quickstart.yaml",
                         [*FAST, "training.epochs=1", "training.context=24", f"output.dir={base}"])
    return Path(train(config)["run_dir"])


def _predicted_tags(path: Path) -> list[list[str]]:
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    return [[line.split()[-1] for line in block.splitlines()] for block in blocks]


def test_the_model_records_its_context(context_run):
    meta = json.loads((context_run / "model" / "kayan.json").read_text(encoding="utf-8"))
    assert meta["context"] == 24
    assert kayan.load(context_run / "model", backend="torch").options.context == 24


def test_evaluation_reads_windows_as_training_did(context_run):
    report, _, predicted = evaluate_model(context_run / "model", "sample:test", bootstrap_samples=0)
    assert predicted == _predicted_tags(context_run / "test_predictions.txt")
    written = json.loads((context_run / "test_metrics.json").read_text(encoding="utf-8"))
    assert report["default"]["micro"] == written["default"]["micro"]


@pytest.fixture(scope="module")
def noisy_with_context(built, tmp_path_factory):
    """The noisy package (random head: many entities) told to read 32 subwords of context."""
    target = tmp_path_factory.mktemp("noisy-context") / "model"
    shutil.copytree(built["noisy"], target)
    settings.write(target, dataclasses.replace(settings.read(target), context=32))
    return target


def _spans(entities):
    """What a prediction says, without the confidences (padding in a batch moves them in the last digits)."""
    return [(e.text, e.type, e.start, e.end) for e in entities]


def _text():
    from tests.tiny_package import sample_words

    return "\n".join(" ".join(words) + " ." for words in sample_words()[:40])


def test_context_changes_what_the_model_sees(built, noisy_with_context):
    text = _text()
    plain = kayan.load(built["noisy"], backend="torch").predict(text)
    with_context = kayan.load(noisy_with_context, backend="torch").predict(text)
    assert _spans(plain) != _spans(with_context)


def test_a_texts_tags_do_not_depend_on_chunking(noisy_with_context):
    predictor = kayan.load(noisy_with_context, backend="torch")
    text = _text()
    expected = _spans(predictor.predict(text))
    predictor.chunk_words = 20  # far fewer words than the text: chunks cut inside it, neighbours given across each cut
    assert _spans(predictor.predict(text)) == expected
    # texts are separate documents: tagging two together equals tagging each alone
    other = "زار الوزير بيروت ."
    both = predictor.predict_batch([text, other])
    assert _spans(both[0]) == expected
    assert _spans(both[1]) == _spans(predictor.predict(other))
    predictor._context_words = lambda: 0  # no neighbours across the cuts: sentences at a cut lose context
    assert _spans(predictor.predict(text)) != expected


def test_pre_tokenized_sentences_are_independent(noisy_with_context):
    from tests.tiny_package import sample_words

    predictor = kayan.load(noisy_with_context, backend="torch")
    sentences = sample_words()[:6]
    together = predictor.predict_words_batch(sentences)
    alone = [predictor.predict_words(words) for words in sentences]
    assert [_spans(s) for s in together] == [_spans(s) for s in alone]


def test_negative_context_is_a_config_error(tmp_path):
    from kayan.cli import main

    code = main(["train", str(REPO / "configs" / "quickstart.yaml"), "--set", "training.context=-4",
                 "--set", f"output.dir={tmp_path}"])
    assert code == 2


def test_a_files_lines_are_one_document_for_kayan_predict(noisy_with_context, tmp_path):
    """kayan predict writes a record per line, but a context model still reads the file as one text."""
    import io

    from kayan.inference.predict_io import read_pieces, write_predictions

    predictor = kayan.load(noisy_with_context, backend="torch")
    text = _text()
    expected = _spans(predictor.predict(text))
    path = tmp_path / "article.txt"
    path.write_text(text, encoding="utf-8")
    predictor.chunk_words = 50  # chunks cut across lines: the neighbours still come along
    out = io.StringIO()
    assert write_predictions(predictor, read_pieces([str(path)], io.BytesIO()), out) == 40
    starts = [0]
    for line in text.split("\n")[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    found = [(e["text"], e["type"], e["start"] + starts[n], e["end"] + starts[n])
             for n, record in enumerate(map(json.loads, out.getvalue().splitlines())) for e in record["entities"]]
    assert found == expected
