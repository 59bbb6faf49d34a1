"""Distillation on tiny models (kayan.training.distill, kayan.model.student): the student keeps the layers
asked for and is an ordinary package; the loss is zero where student and teacher agree; unlabelled
words feed the soft loss only; unlabelled sentences repeating the run's are dropped and counted; a
bad teacher is one line and status 2."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from kayan.cli import main
from kayan.config import load_config
from kayan.data import corpora, overlap
from kayan.data.rundata import load_run_data
from kayan.model.features import IGNORE
from kayan.model.student import layer_subset
from kayan.training import distill
from kayan.training.distill import UNLABELLED, Distiller, distill_loss
from tests.conftest import FAST, REPO, fast_config, needs_shared

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
NO_AUTOCAST = SimpleNamespace(bf16=False, fp16=False)


def _sets(*overrides: str) -> list[str]:
    return [argument for override in overrides for argument in ("--set", override)]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A 2-layer tiny teacher, packaged."""
    from kayan.inference.packaging import package
    from kayan.training import train

    out = tmp_path_factory.mktemp("teacher")
    run = Path(train(fast_config(out, "model.tiny.num_hidden_layers=2", "training.epochs=2"))["run_dir"])
    return package(run, out / "models" / "teacher")


@pytest.fixture(scope="module")
def unlabelled_file(tmp_path_factory):
    """Seven sentences: two of sample:test (one tokenized and spelled differently), one retelling a third inside
    a longer sentence, three new, one new repeated."""
    test = corpora.load_split("sample:test").sentences
    respelled = [w.replace("أ", "ا") for w in test[1].words]
    sentences = [list(test[0].words), respelled[:2] + ["".join(respelled[2:4])] + respelled[4:],
                 ["ذهب", "سامي", "إلى", "حلب", "."], ["وصل", "الوفد", "إلى", "تونس"], ["قال", "المدير", "اليوم"],
                 ["ذهب", "سامي", "إلى", "حلب", "."],
                 ["وقال", "مراسلنا", "إن", *test[2].words, "حسب", "المصادر"]]
    path = tmp_path_factory.mktemp("unlabelled") / "text.txt"
    path.write_text("\n\n".join("\n".join(f"{w} O" for w in words) for words in sentences) + "\n", encoding="utf-8")
    return path


def _window_batch(teacher, sentences):
    """A batch of windows of ``sentences`` with the first subword of each word labelled, as training makes them."""
    encoded = teacher.tokenizer([list(s.words) for s in sentences], is_split_into_words=True, padding=True,
                                truncation=True, max_length=64, return_tensors="pt")
    labels = torch.full(encoded["input_ids"].shape, IGNORE)
    for row in range(len(sentences)):
        previous = None
        for position, word in enumerate(encoded.word_ids(row)):
            if word is not None and word != previous:
                labels[row, position] = 0
            previous = word
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": labels}


def test_student_keeps_the_layers_asked_for_and_is_an_ordinary_package(teacher, unlabelled_file, tmp_path, capsys):
    from kayan.inference.packaging import package
    from kayan.inference.predict import load

    status = main(["distill", str(teacher), QUICKSTART, "--quiet",
                   *_sets(*FAST, "training.epochs=1", f"output.dir={tmp_path}", "distill.layers=1",
                          f"distill.unlabelled=[{unlabelled_file}]")])
    assert status == 0, capsys.readouterr().err
    run = tmp_path / "quickstart"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["distill"]["kept_layers"] == [1] and summary["distill"]["teacher_layers"] == 2
    assert summary["distill"]["unlabelled"] == {"refs": [str(unlabelled_file)], "read": 7, "duplicates_of_run_sentences": 2,
                                                "retell_dev_or_test": 1, "repeated": 1, "kept": 3}
    assert json.loads((run / "model" / "config.json").read_text())["num_hidden_layers"] == 1
    from safetensors import safe_open

    def weights(path):
        with safe_open(str(path), framework="pt") as handle:
            return set(handle.keys())
    student_weights = weights(run / "model" / "model.safetensors")
    assert not any(".layer.1." in key for key in student_weights)
    checkpoints = list((run / "checkpoints").glob("checkpoint-*/model.safetensors"))
    assert checkpoints and all(weights(path) == student_weights for path in checkpoints)  # the teacher is never saved
    assert "teacher" in (run / "config.yaml").read_text()  # the distill section is recorded with the run
    built = package(run, tmp_path / "models" / "student")
    entities = load(built).predict("ذهب سامي إلى حلب.")  # the ordinary predictor takes it
    assert isinstance(entities, list)
    teacher_weights = json.loads((teacher / "config.json").read_text())
    assert teacher_weights["id2label"] == json.loads((built / "config.json").read_text())["id2label"]


def test_the_student_starts_from_the_teachers_kept_layers(teacher):
    opened = distill.open_teacher(str(teacher))
    model = opened.models[0]
    student = layer_subset(model, 1)
    assert student.config.num_hidden_layers == 1 and model.config.num_hidden_layers == 2
    kept, dropped = model.bert.encoder.layer[1], model.bert.encoder.layer[0]
    layer = student.bert.encoder.layer[0]
    assert torch.equal(layer.output.dense.weight, kept.output.dense.weight)
    assert not torch.equal(layer.output.dense.weight, dropped.output.dense.weight)
    assert torch.equal(student.classifier.weight, model.classifier.weight)
    assert layer.output.dense.weight.data_ptr() != kept.output.dense.weight.data_ptr()  # a copy: training it leaves the teacher


def test_a_full_copy_of_the_teacher_has_zero_soft_loss(teacher):
    # soft_weight 1 and the student = the teacher with all its layers: the KL is ~0 (in eval mode: dropout aside,
    # which makes a training step's student differ from the eval-mode teacher)
    opened = distill.open_teacher(str(teacher))
    student = layer_subset(opened.models[0], None).eval()
    batch = _window_batch(opened, corpora.load_split("sample:dev").sentences[:8])
    with torch.no_grad():
        loss = Distiller(opened, temperature=2.0, soft_weight=1.0).loss(student, batch, NO_AUTOCAST)
        shuffled = Distiller(opened, temperature=2.0, soft_weight=1.0).loss(
            layer_subset(opened.models[0], 1).eval(), batch, NO_AUTOCAST)
    assert abs(float(loss)) < 1e-6 and float(shuffled) > 1e-4


def test_the_hidden_term_matches_each_student_layer_to_the_teacher_layer_it_was_copied_from(teacher):
    opened = distill.open_teacher(str(teacher))
    batch = _window_batch(opened, corpora.load_split("sample:dev").sentences[:8])
    features = {key: batch[key] for key in ("input_ids", "attention_mask")}
    copy, student = layer_subset(opened.models[0], None).eval(), layer_subset(opened.models[0], 1).eval()
    with torch.no_grad():
        full = Distiller(opened, 2.0, 1.0, hidden_weight=5.0, kept_layers=[0, 1]).loss(copy, batch, NO_AUTOCAST)
        plain = Distiller(opened, 2.0, 1.0).loss(student, batch, NO_AUTOCAST)
        hidden = Distiller(opened, 2.0, 1.0, hidden_weight=5.0, kept_layers=[1]).loss(student, batch, NO_AUTOCAST)
        # by hand: the student's one layer (the teacher's layer 1, fed the embeddings) against the teacher's layer 1 output
        mine = student(**features, output_hidden_states=True).hidden_states[1]
        theirs = opened.models[0](**features, output_hidden_states=True).hidden_states[2]
        real = features["attention_mask"].bool()
        expected = ((mine - theirs) ** 2)[real].mean()
    assert abs(float(full)) < 1e-6  # a full copy: every layer equals its teacher layer
    assert float(expected) > 1e-4 and abs(float(hidden - plain) - 5.0 * float(expected)) < 1e-4


def test_a_student_trains_with_the_hidden_term_and_records_it(teacher, tmp_path, capsys):
    status = main(["distill", str(teacher), QUICKSTART, "--quiet",
                   *_sets(*FAST, "training.max_steps=2", "training.eval_steps=2", f"output.dir={tmp_path}",
                          "distill.layers=1", "distill.hidden_weight=0.5")])
    assert status == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "quickstart" / "summary.json").read_text())
    assert summary["distill"]["hidden_weight"] == 0.5 and summary["distill"]["kept_layers"] == [1]
    assert main(["distill", str(teacher), QUICKSTART, "--quiet", *_sets(*FAST, "distill.hidden_weight=-1")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "distill.hidden_weight" in err, err


@pytest.fixture(scope="module")
def ensemble(teacher, tmp_path_factory):
    """The teacher and a copy with a random head (same tokenizer), packaged as one ensemble."""
    from kayan.inference.packaging import package_ensemble
    from tests.tiny_package import _noisy

    out = tmp_path_factory.mktemp("ensemble")
    return package_ensemble([teacher, _noisy(teacher, out / "noisy")], out / "ensemble")


def test_an_ensemble_teaches_with_its_members_mean_probabilities(ensemble, tmp_path, capsys):
    opened = distill.open_teacher(str(ensemble))
    batch = _window_batch(opened, corpora.load_split("sample:dev").sentences[:4])
    features = {key: batch[key] for key in ("input_ids", "attention_mask")}
    with torch.no_grad():
        each = [torch.softmax(model(**features).logits / 2.0, -1) for model in opened.models]
    assert len(opened.models) == 2 and not torch.allclose(each[0], each[1])
    assert torch.allclose(distill.teacher_targets(opened.models, features, 2.0).probabilities, (each[0] + each[1]) / 2)
    status = main(["distill", str(ensemble), QUICKSTART, "--quiet",
                   *_sets(*FAST, "training.max_steps=2", "training.eval_steps=2", f"output.dir={tmp_path}")])
    assert status == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "quickstart" / "summary.json").read_text())
    assert summary["distill"]["members"] == 2 and summary["distill"]["kept_layers"] == [0, 1]  # layers: null keeps all


def test_unlabelled_words_feed_the_soft_loss_but_not_the_cross_entropy():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 4, 3, generator=generator, requires_grad=True)
    teacher = torch.softmax(torch.randn(1, 4, 3, generator=generator), -1)
    unlabelled = torch.tensor([[IGNORE, UNLABELLED, UNLABELLED, IGNORE]])
    loss = distill_loss(logits, teacher, unlabelled, temperature=2.0, soft_weight=0.5)
    assert float(loss.hard.detach()) == 0.0 and float(loss.soft.detach()) > 0
    assert float(loss.total.detach()) == pytest.approx(0.5 * 4 * float(loss.soft.detach()))
    hard_only = distill_loss(logits, teacher, unlabelled, temperature=2.0, soft_weight=0.0).total
    hard_only.backward()
    assert torch.count_nonzero(logits.grad) == 0  # no gradient from the CE at unlabelled words
    labelled = distill_loss(logits, teacher, torch.tensor([[IGNORE, 1, UNLABELLED, IGNORE]]), temperature=2.0, soft_weight=0.0)
    expected = torch.nn.functional.cross_entropy(logits[0, 1:2], torch.tensor([1]))
    assert float(labelled.hard.detach()) == pytest.approx(float(expected.detach()))


def test_unlabelled_sentences_repeating_the_runs_are_dropped_and_counted(unlabelled_file, tmp_path):
    config = fast_config(tmp_path, f"distill.unlabelled=[{unlabelled_file}]", "distill.max_unlabelled_sentences=2")
    sentences, counts = distill.unlabelled_sentences(config, load_run_data(config.data))
    assert counts == {"refs": [str(unlabelled_file)], "read": 7, "duplicates_of_run_sentences": 2,
                      "retell_dev_or_test": 1, "repeated": 1, "kept": 2}
    assert all(s.tags == () for s in sentences) and len(sentences) == 2


def test_no_unlabelled_sentences_wanted_reads_no_corpus(tmp_path):
    config = fast_config(tmp_path, f"distill.unlabelled=[{tmp_path / 'missing.txt'}]", "distill.max_unlabelled_sentences=0")
    sentences, counts = distill.unlabelled_sentences(config, load_run_data(config.data))  # the missing file is never opened
    assert sentences == [] and counts["read"] == 0 and counts["kept"] == 0


@needs_shared
def test_newsfane_sentences_repeating_anercorp_are_dropped(tmp_path):
    config = load_config(None, ["data.train=[anercorp:train]", "distill.unlabelled=[newsfane:train]",
                                "distill.max_unlabelled_sentences=100000"])
    data = load_run_data(config.data)
    kept, counts = distill.unlabelled_sentences(config, data)
    assert counts["read"] == 4760 and counts["duplicates_of_run_sentences"] > 2500  # NewsFANE repeats ANERcorp's news
    assert counts["retell_dev_or_test"] > 800  # ... and retells its dev and test text in other sentences
    assert counts["kept"] == (counts["read"] - counts["duplicates_of_run_sentences"] - counts["retell_dev_or_test"]
                              - counts["repeated"])
    held_out = [s.words for s in data.dev.sentences + data.test.sentences]
    assert not any(overlap.repeats([s.words for s in kept], held_out))  # no dev or test text reaches the student


@pytest.mark.parametrize("teacher_path, overrides, message", [
    ("no/such/teacher", [], "config key distill.teacher: no/such/teacher: no such run or model folder"),
    (None, ["data.label_map={MISC: O}"], "config key distill.teacher: the teacher"),
    (None, ["distill.layers=3"], "config key distill.layers is 3; the teacher has 2 encoder layers"),
    (None, ["data.normalization=[unify_alef]"], "config key data.normalization is ['unify_alef']"),
    (None, ["model.name=tinier"], "config key model.name is 'tinier'"),
])
def test_a_bad_teacher_is_one_line_and_status_2(teacher, tmp_path, capsys, teacher_path, overrides, message):
    status = main(["distill", teacher_path or str(teacher), QUICKSTART, "--quiet",
                   *_sets(*FAST, f"output.dir={tmp_path}", *overrides)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "quickstart").exists()  # the failed run left no folder


def test_a_config_without_a_teacher_saves_no_distill_section():
    assert "distill" not in load_config(QUICKSTART).to_dict()
    assert load_config(QUICKSTART, ["distill.teacher=models/x"]).to_dict()["distill"]["teacher"] == "models/x"


def test_a_run_never_overwrites_the_teacher_it_reads(teacher, tmp_path, capsys):
    import shutil

    shutil.copytree(teacher.parent.parent / "quickstart", tmp_path / "quickstart")  # the teacher's run folder
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    status = main(["distill", str(tmp_path / "quickstart"), QUICKSTART, "--quiet", "--overwrite",
                   *_sets(*FAST, f"output.dir={tmp_path}")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "is the command's own input" in err, err  # refused before any move
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_student_can_start_from_the_base_model_rather_than_the_teacher(teacher, tmp_path, capsys):
    from kayan.training.build import build_run_model

    config = fast_config(tmp_path, "model.tiny.num_hidden_layers=2", "distill.start=base", f"distill.teacher={teacher}")
    labels = distill.open_teacher(str(teacher)).labels
    data = load_run_data(config.data)
    base, tokenizer = build_run_model(config, labels, data.train.sentences)
    student, _, distiller = distill.build_student(config, labels, lambda: (base, tokenizer))
    first_member = distill.open_teacher(str(teacher)).models[0]
    assert torch.equal(student.classifier.weight, base.classifier.weight)  # the base model's new head, not the teacher's
    assert not torch.equal(student.classifier.weight, first_member.classifier.weight)
    assert distiller.report["start"] == "base"
    status = main(["distill", str(teacher), QUICKSTART, "--quiet",
                   *_sets(*FAST, "model.tiny.num_hidden_layers=2", "training.max_steps=2", "training.eval_steps=2",
                          f"output.dir={tmp_path}", "distill.start=base")])
    assert status == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "quickstart" / "summary.json").read_text())["distill"]["start"] == "base"


@pytest.mark.parametrize("overrides, message", [
    (["model.tiny.num_hidden_layers=2", "model.tiny.vocab_size=300"], "config key distill.start is 'base' but tiny's tokenizer"),
    ([], "config key distill.start is 'base' but tiny has 1 encoder layers and the teacher 2"),
    (["distill.start=pupil"], "config key distill.start: 'pupil' is not one of teacher, base"),
])
def test_a_base_start_that_cannot_be_the_teachers_is_one_line_and_status_2(teacher, tmp_path, capsys, overrides, message):
    status = main(["distill", str(teacher), QUICKSTART, "--quiet",
                   *_sets(*FAST, f"output.dir={tmp_path}", "distill.start=base", *overrides)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "quickstart").exists()
