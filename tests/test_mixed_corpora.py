"""Training on several corpora with different tag sets: per-corpus label maps, held-out text left out of the
extra corpora, a corpus's dev block held out when data.dev names it, and partial labels for types a corpus
never tags (issue 20, lever 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kayan.cli import main
from kayan.config import load_config
from kayan.data import corpora
from kayan.data.overlap import sentence_key
from kayan.data.rundata import load_run_data
from kayan.data.schemes import label_types
from kayan.training import partial_labels, train
from tests.conftest import REPO, SAMPLE_DIR, fast_config, needs_shared


def _without_misc(tmp_path: Path) -> Path:
    """The sample's train split with PERS written PER and every MISC tag erased: a corpus that never tags MISC."""
    out = []
    for line in (SAMPLE_DIR / "train.txt").read_text(encoding="utf-8").splitlines():
        word, _, tag = line.partition(" ")
        tag = "O" if tag.endswith("MISC") else tag.replace("PERS", "PER")
        out.append(f"{word} {tag}" if line else "")
    path = tmp_path / "no-misc.txt"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _mixed(tmp_path: Path, *extra: str):
    extra_corpus = _without_misc(tmp_path)
    return fast_config(tmp_path, f"data.train=[sample:train, {extra_corpus}]", "data.dev=[sample:dev]",
                       "data.test=[sample:test]", f"data.label_maps={{{extra_corpus}: {{PER: PERS}}}}", *extra), extra_corpus


def test_a_corpus_that_never_tags_a_type_gets_label_sets_not_o(tmp_path):
    config, extra_corpus = _mixed(tmp_path)
    data = load_run_data(config.data)
    assert set(data.train.unannotated.values()) == {("MISC",)}
    assert set(data.train.unannotated) == {str(extra_corpus)}
    assert any("never tags MISC" in note for note in data.train.notes)
    assert label_types(t for s in data.train.sentences for t in s.tags) == ["LOC", "MISC", "ORG", "PERS"]  # PER mapped

    config.data.partial_labels = False
    assert load_run_data(config.data).train.unannotated == {}


def test_training_with_label_sets_uses_them_and_the_model_keeps_its_own_labels(tmp_path, monkeypatch):
    config, _ = _mixed(tmp_path, "training.max_steps=4", "training.eval_steps=4")
    seen = []
    real = partial_labels.partial_cross_entropy

    def recording(logits, labels, allowed):
        seen.append((int(labels.max()), allowed.shape))
        return real(logits, labels, allowed)

    monkeypatch.setattr(partial_labels, "partial_cross_entropy", recording)
    summary = train(config, test=False)
    assert len(seen) == 4
    assert max(top for top, _ in seen) == 9  # the set id after the 9 real labels: O words of the MISC-less corpus
    assert {shape for _, shape in seen} == {(10, 9)}
    labels = json.loads((Path(summary["run_dir"]) / "model" / "config.json").read_text())["id2label"]
    assert sorted(labels.values()) == sorted(["O", *(f"{p}-{t}" for t in ("LOC", "MISC", "ORG", "PERS") for p in "BI")])


def test_a_label_set_does_not_push_the_missing_type_down():
    logits = torch.tensor([[1.0, 0.0, 0.0, 0.5, 0.2]], requires_grad=True)  # O, B-LOC, I-LOC, B-MISC, I-MISC
    _, allowed = partial_labels.label_sets(["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC"], [("MISC",)])
    partial_labels.partial_cross_entropy(logits, torch.tensor([5]), allowed).backward()
    as_set = logits.grad[0].clone()
    logits.grad = None
    torch.nn.functional.cross_entropy(logits, torch.tensor([0])).backward()
    as_o = logits.grad[0]
    assert as_o[3] > 0 and as_set[3] < 0  # taught as O, B-MISC goes down; as "O or MISC", it may rise
    assert as_set[1] > 0 and as_set[2] > 0  # LOC, outside the set, still goes down


@needs_shared
def test_maps_in_a_list_apply_in_turn_and_a_corpus_left_without_misc_gets_label_sets(tmp_path):
    config = load_config(REPO / "configs" / "anercorp-me5-small-mixed.yaml",
                         ["model.name=tiny", "data.label_maps={aqmar: [anercorp, {MISC: O}], newsfane: [anercorp, {MISC: O}]}"])
    data = load_run_data(config.data)
    for source in {s.source for s in data.train.sentences}:
        if "ANERCorp" in source:
            assert source not in data.train.unannotated
        else:  # AQMAR's articles and NewsFANE: PERS/LOC/ORG kept, every MISC dropped, and MISC not taught as O
            assert data.train.unannotated[source] == ("MISC",)
    aqmar = [s for s in data.train.sentences if "AQMAR" in s.source]
    assert label_types(t for s in aqmar for t in s.tags) == ["LOC", "ORG", "PERS"]


def test_a_named_dev_block_is_held_out_of_its_training_corpus(tmp_path):
    corpus = SAMPLE_DIR / "train.txt"
    config = fast_config(tmp_path, f"data.train=[{corpus}]", f"data.dev=['{corpus}:dev']", "data.test=[sample:test]")
    data = load_run_data(config.data)
    dev = {s.words for s in data.dev.sentences}
    assert dev and not dev & {s.words for s in data.train.sentences}
    assert not data.dev.warnings


@pytest.mark.parametrize("maps, shown", [
    ("{sample: {PER: B-PERS}}", "config key data.label_maps.sample maps 'PER' to 'B-PERS', a tag"),
    ("{sample: anercorp}", "config key data.label_maps.sample names the map 'anercorp', which sample does not have (it has: none)"),
    ("{sample: [{PER: PERS}, {X: I-Y}]}", "config key data.label_maps.sample maps 'X' to 'I-Y', a tag"),
    ("{aqmar: anercorp}", "config key data.label_maps.aqmar names no corpus of data.train, data.dev or data.test"),
])
def test_a_bad_label_map_is_one_line_naming_the_key(tmp_path, capsys, maps, shown):
    config = tmp_path / "c.yaml"
    config.write_text((REPO / "configs" / "quickstart.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    code = main(["train", str(config), "--set", f"data.label_maps={maps}", "--set", f"output.dir={tmp_path / 'runs'}"])
    err = capsys.readouterr().err
    assert code == 2 and shown in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@needs_shared
def test_the_fane_map_covers_every_type_of_both_fane_corpora():
    for name in ("newsfane", "wikifane"):
        split = corpora.load_split(f"{name}:train")
        kinds = set(label_types(t for s in split.sentences for t in s.tags))
        mapping = corpora.get(name).label_maps["anercorp"]
        assert kinds <= set(mapping), (name, kinds - set(mapping))
    assert set(corpora.FANE_TO_ANERCORP.values()) == {"PERS", "LOC", "ORG", "MISC", "O"}


@needs_shared
def test_newsfane_sentences_that_retell_anercorp_dev_or_test_are_left_out_and_counted():
    config = load_config(REPO / "configs" / "anercorp-me5-small-mixed.yaml", ["model.name=tiny"])
    data = load_run_data(config.data)
    assert "newsfane:train: left out 1161 of its 4760 sentences that repeat the text of data.dev or data.test (anercorp)" \
        in data.train.notes
    held = {sentence_key(s.words) for s in data.dev.sentences + data.test.sentences}
    newsfane = [s for s in data.train.sentences if "NewsFANE" in s.source]
    assert len(newsfane) == 4760 - 1161
    assert not held & {sentence_key(s.words) for s in newsfane} - {""}  # no repeat left but of punctuation alone
    anercorp = [s for s in data.train.sentences if "ANERCorp" in s.source]
    assert len(anercorp) == 3576  # ANERcorp's own train, its dev block held out, nothing else removed
    assert label_types(t for s in data.train.sentences for t in s.tags) == ["LOC", "MISC", "ORG", "PERS"]
    assert data.train.unannotated == {}  # each mapped corpus tags all four types


def test_a_corpus_is_never_filtered_against_its_own_dev_or_test(tmp_path):
    """A file whose train repeats a sentence of its carved dev block (a headline, say) keeps it: only other
    corpora are compared with dev and test, as the corpus's own split decides what its parts share."""
    blocks = (SAMPLE_DIR / "train.txt").read_text(encoding="utf-8").strip().split("\n\n")
    path = tmp_path / "mine.txt"
    path.write_text("\n\n".join([blocks[-1], *blocks]) + "\n", encoding="utf-8")
    for dev in ([], [f"{path}:dev"]):
        config = fast_config(tmp_path, f"data.train=[{path}]", f"data.dev={dev}", "data.test=[sample:test]")
        data = load_run_data(config.data)
        assert not any("left out" in note for note in data.train.notes)
        assert data.train.sentences[0].words == data.dev.sentences[-1].words
