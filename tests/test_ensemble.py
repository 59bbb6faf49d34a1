"""Seed ensembles: ``kayan package RUN RUN ... OUT`` averages the members' word probabilities before decoding."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from kayan import evaluation
import kayan
from kayan.cli import main
from kayan.data import corpora
from kayan.inference.packaging import package_ensemble
from kayan.model import settings
from kayan.model.ensemble import average_probabilities
from tests.tiny_package import sample_words

TEXT = "زار الرئيسُ محمد بن سلمان مدينة بغـداد أمس، وقال إن القاهرة والرياض شريكتان. ثم عاد إلى جدة."


def softmax(scores: np.ndarray) -> np.ndarray:
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def seeds_package(seed_runs, tmp_path_factory):
    """The two seed runs as one ensemble package, written through the command line."""
    out = tmp_path_factory.mktemp("ensemble") / "seeds"
    assert main(["package", *map(str, seed_runs), str(out)]) == 0
    return out


def test_average_of_identical_members_is_each_members_probabilities():
    scores = [np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]], dtype=np.float32)]
    averaged = average_probabilities([scores, scores, scores])
    np.testing.assert_allclose(np.exp(averaged[0]), softmax(scores[0].astype(np.float64)), rtol=1e-12)
    assert average_probabilities([[], []]) == []


@pytest.mark.parametrize("decoding", ["first", "viterbi"])
def test_an_ensemble_of_one_gives_the_members_tags_and_scores(built, tmp_path, decoding):
    out = package_ensemble([built["noisy"]], tmp_path / "one")
    member = kayan.load(built["noisy"], backend="torch", decoding=decoding)
    alone = kayan.load(out, backend="torch", decoding=decoding)
    words = sample_words()
    (tags, confidences), (one_tags, one_confidences) = member.model.tag(words), alone.model.tag(words)
    assert one_tags == tags and sum(t != "O" for s in tags for t in s) > 50  # the noisy head tags many entities
    for got, expected in zip(one_confidences, confidences):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert [(e.text, e.type, e.start, e.end) for e in alone.predict(TEXT)] == [(e.text, e.type, e.start, e.end) for e in member.predict(TEXT)]
    assert [e.score for e in alone.predict(TEXT)] == pytest.approx([e.score for e in member.predict(TEXT)], rel=1e-12)


def test_two_seeds_average_their_word_probabilities(seed_runs, seeds_package):
    words = sample_words()
    members = [kayan.load(run, backend="torch").model for run in seed_runs]
    probabilities = [[softmax(s.astype(np.float64)) for s in m.word_scores(words)] for m in members]
    assert max(np.abs(a - b).max() for a, b in zip(*probabilities)) > 1e-3  # the seeds give different models
    by_hand = [(a + b) / 2 for a, b in zip(*probabilities)]
    ensemble = kayan.load(seeds_package, backend="torch")
    for got, expected in zip(ensemble.model.word_scores(words), by_hand):
        np.testing.assert_allclose(np.exp(got), expected, rtol=1e-9, atol=1e-12)
    tags, confidences = ensemble.model.tag(words)  # first-subword decoding, as the runs were trained
    labels = ensemble.labels
    assert tags == [[labels[i] for i in p.argmax(axis=1)] for p in by_hand]
    for got, p in zip(confidences, by_hand):
        np.testing.assert_allclose(got, p.max(axis=1), rtol=1e-9)


def test_options_and_backend_of_an_ensemble_answer_for_it(built, seed_runs, seeds_package, tmp_path):
    """Once raised AttributeError ('Ensemble' has no 'options'): an ensemble answers what it can answer as one."""
    one = kayan.load(package_ensemble([built["noisy"]], tmp_path / "one"), backend="torch", decoding="viterbi")
    member = one.model.members[0]
    assert one.options == dataclasses.replace(member.options, decoding="viterbi") and one.backend is member.backend
    seeds = kayan.load(seeds_package, backend="torch")
    alone = kayan.load(seed_runs[1], backend="torch").options
    assert seeds.options == alone and seeds.options.window == 64  # the seeds read words the same way
    with pytest.raises(ValueError, match=r"2 models: each one's is predictor\.model\.members\[i\]\.backend"):
        seeds.backend
    second = seeds.model.members[1]
    second.options = dataclasses.replace(second.options, window=32, stride=8)
    with pytest.raises(ValueError, match=r"read words differently \(window, stride\)"):
        seeds.options


def test_the_package_records_its_members(seed_runs, seeds_package):
    meta = json.loads((seeds_package / "kayan.json").read_text(encoding="utf-8"))
    members = meta["ensemble"]["members"]
    assert [m["source"] for m in members] == [str(run) for run in seed_runs]
    assert [m["seed"] for m in members] == [12345, 7] and [m["path"] for m in members] == ["members/0", "members/1"]
    dev = [json.loads((run / "summary.json").read_text())["best_dev_f1"] for run in seed_runs]
    assert [m["dev_f1"] for m in members] == dev
    assert meta["labels"] == json.loads((seed_runs[0] / "model" / "kayan.json").read_text())["labels"]
    card = (seeds_package / "README.md").read_text(encoding="utf-8")
    assert "| `members/1` | " in card and "| 7 |" in card
    assert kayan.load(seeds_package / "members" / "1", backend="torch").labels == meta["labels"]  # each member loads alone


def test_members_with_other_labels_are_refused_in_one_line(seed_runs, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(seed_runs[1], other)
    stored = settings.read(other / "model")
    settings.write(other / "model", dataclasses.replace(stored, labels=(*stored.labels, "B-DATE", "I-DATE")))
    out = tmp_path / "ens"
    assert main(["package", str(seed_runs[0]), str(other), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"kayan: error: {other}: labels ") and "must share one label list" in err
    assert not out.exists()


def test_evaluate_and_predict_an_ensemble_package(seeds_package, tmp_path, capsys):
    assert main(["evaluate", str(seeds_package), "--data", "sample:test", "--bootstrap", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["decoding"] == "first" and [m["folder"] for m in report["model"]["members"]] == [
        str(seeds_package / "members" / "0"), str(seeds_package / "members" / "1")]
    predictor = kayan.load(seeds_package)
    assert predictor.backend_name == "torch" and "members=" in repr(predictor)
    gold = corpora.load_split("sample:test").sentences
    expected = evaluation.evaluate(gold, predictor.model.tag([s.words for s in gold])[0], bootstrap_samples=0)
    assert report["default"]["micro"] == expected["default"]["micro"]

    text = tmp_path / "article.txt"
    text.write_text(TEXT, encoding="utf-8")
    assert main(["predict", str(seeds_package), str(text)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [(e["text"], e["start"], e["end"]) for e in record["entities"]] == [(e.text, e.start, e.end) for e in predictor.predict(TEXT)]


def test_serve_an_ensemble_package(seeds_package):
    pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
    from fastapi.testclient import TestClient

    from kayan.serve import prepare

    app, batcher = prepare(seeds_package, backend="torch")
    try:
        client = TestClient(app)
        info = client.get("/info").json()
        assert info["decoding"] == "first" and len(info["members"]) == 2 and "window" in info["members"][0]
        answer = client.post("/", json={"inputs": TEXT}).json()
        expected = kayan.load(seeds_package, backend="torch").predict(TEXT)
        assert [(a["word"], a["start"], a["end"]) for a in answer] == [(e.text, e.start, e.end) for e in expected]
    finally:
        batcher.close(30)


def test_export_of_an_ensemble_names_its_members(seeds_package, capsys):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'kayan[onnx]'")
    assert main(["export", str(seeds_package), "--onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"kayan export {seeds_package / 'members' / '0'} --onnx" in err
