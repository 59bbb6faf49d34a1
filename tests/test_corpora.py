"""The corpus registry and loader, on the real corpora in ../shared/data."""

from __future__ import annotations

import shutil

import pytest

from kayan.data import corpora
from kayan.data.dataset import carve_dev, dev_indices
from kayan.data.sentence import Sentence
from kayan.data.stats import corpus_stats
from kayan.errors import KayanError
from kayan.files import sha256_of
from tests.conftest import ANERCORP_DIR, SHARED_DATA, needs_shared


@needs_shared
@pytest.mark.parametrize(
    "ref, sentences, tokens, entities, strict",
    [("anercorp:train", 3973, 125102, 9000, 8961), ("anercorp:test", 925, 25008, 2285, 2211)],
)
def test_anercorp_counts_match_its_source_card(ref, sentences, tokens, entities, strict):
    stats = corpus_stats(corpora.load_split(ref))
    assert (stats["sentences"], stats["tokens"]) == (sentences, tokens)
    assert stats["entities"]["conlleval_total"] == entities
    assert stats["entities"]["strict_iob2_total"] == strict


@needs_shared
def test_anercorp_train_per_type_and_lengths():
    stats = corpus_stats(corpora.load_split("anercorp:train"))
    assert stats["entities"]["conlleval"] == {"LOC": 3779, "MISC": 900, "ORG": 1586, "PERS": 2735}
    assert (stats["sentence_length"]["min"], stats["sentence_length"]["max"]) == (2, 530)
    assert stats["tags"]["O"] == 111921


@needs_shared
def test_dev_is_carved_from_the_end_of_train_and_never_from_test():
    train = corpora.load_split("anercorp:train").sentences
    dev = corpora.load_split("anercorp:dev").sentences
    held = corpora.load_split("anercorp:train", hold_out_dev=True).sentences
    assert len(dev) == round(0.1 * len(train)) and dev == train[-len(dev):]
    assert held + dev == train
    assert len(corpora.load_split("anercorp:dev", dev_fraction=0.2).sentences) == round(0.2 * len(train))


@needs_shared
@pytest.mark.parametrize(
    "ref, sentences, note",
    [
        ("aqmar", 2683, "mapped tag OO -> O (1x)"),
        ("newsfane", 4760, "152,599 direction marks"),
        ("wikiann-ar:dev", 10000, None),
        ("wojood-sample:test", 357, "dropped token '$#$'"),
        ("wojood-sample:dev", 158, None),  # the corpus's own "val" serves as dev
    ],
)
def test_other_corpora_load_with_their_quirks_reported(ref, sentences, note):
    dataset = corpora.load_split(ref)
    assert len(dataset.sentences) == sentences
    if note:
        assert any(note in line for line in dataset.report.notes())
    assert all(tag == "O" or tag[:2] in ("B-", "I-") for s in dataset.sentences for tag in s.tags)


@needs_shared
def test_changed_file_is_reported_with_both_digests(tmp_path):
    copy = tmp_path / "ANERcorp-CamelLabSplits"
    shutil.copytree(ANERCORP_DIR, copy)
    test_file = copy / "ANERCorp_CamelLab_test.txt"
    test_file.write_bytes(test_file.read_bytes().replace(b"B-PERS", b"B-LOC", 1))
    with pytest.raises(KayanError) as caught:
        corpora.load_split("anercorp:test", root=tmp_path)
    message = str(caught.value)
    assert "0eac2e38f4e8e3059cb58b9691b92d7720499a595b10919326b6a512d297ffe9" in message
    assert sha256_of(test_file) in message and "--no-verify" in message
    assert len(corpora.load_split("anercorp:test", root=tmp_path, verify=False).sentences) == 925


def test_unknown_corpus_lists_the_known_ones():
    with pytest.raises(KayanError, match="unknown corpus 'anercorpp'; known: sample, anercorp"):
        corpora.load_split("anercorpp:train")


@needs_shared
def test_unknown_split_lists_the_choices():
    with pytest.raises(KayanError, match=r"no split 'validation'; choose one of: train, test, dev \(carved from train\)"):
        corpora.load_split("anercorp:validation")


def test_directory_missing_a_split(tmp_path):
    (tmp_path / "Wojood-sample").mkdir()
    (tmp_path / "Wojood-sample" / "train.txt").write_text("a O\n", encoding="utf-8")
    with pytest.raises(KayanError, match=r"split 'val' file .*val.txt is missing; point KAYAN_DATA_DIR"):
        corpora.load_split("wojood-sample:val", root=tmp_path)


def test_missing_data_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("KAYAN_DATA_DIR")
    with pytest.raises(KayanError, match="no data directory: set KAYAN_DATA_DIR"):
        corpora.load_split("anercorp:test")
    with pytest.raises(KayanError, match="does not exist"):
        corpora.load_split("anercorp:test", root=tmp_path / "nowhere")


def test_a_file_path_loads_and_repairs(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("محمد I-PERS\nعلي I-PERS\nفي O\nبغداد B-LOC\n", encoding="utf-8")
    dataset = corpora.load_split(str(path))
    assert dataset.sentences[0].tags == ("B-PERS", "I-PERS", "O", "B-LOC")
    assert dataset.raw_tags[0][0] == "I-PERS"
    assert dataset.report.repairs == {"I-PERS -> B-PERS": 1}


@pytest.mark.parametrize("fraction", [0, 1, 1.5])
def test_bad_dev_fraction(fraction):
    with pytest.raises(KayanError, match="data.dev_fraction"):
        carve_dev([], fraction)


def test_registry_knows_every_corpus_of_the_design():
    assert set(corpora.REGISTRY) == {"anercorp", "newsfane", "wikifane", "aqmar", "wikiann-ar", "wojood-sample", "sample"}
    for corpus in corpora.REGISTRY.values():
        files = {f for split in corpus.splits.values() for f in split}
        assert files == set(corpus.sha256), f"{corpus.name}: every file needs its sha256"


@needs_shared
def test_registry_digests_match_the_shared_files():
    for corpus in corpora.REGISTRY.values():
        if corpus.name == "sample":
            continue
        for name, digest in corpus.sha256.items():
            assert sha256_of(SHARED_DATA / corpus.folder / name) == digest


@pytest.mark.parametrize("n,fraction", [(10, 0.1), (37, 0.1), (3973, 0.1), (200, 0.25), (11, 0.5)])
def test_a_spread_dev_split_is_the_same_size_as_the_end_block_and_covers_the_file(n, fraction):
    end, spread = dev_indices(n, fraction, "end"), dev_indices(n, fraction, "spread")
    assert len(spread) == len(end) and spread == sorted(set(spread)) and 0 <= spread[0] and spread[-1] < n
    if n >= 100:  # every tenth of the file gives dev sentences
        assert {i * 10 // n for i in spread} == set(range(10))


def test_spread_dev_train_and_dev_partition_the_file():
    sentences = [Sentence((str(i),), ("O",)) for i in range(120)]
    train, dev = carve_dev(sentences, 0.1, "spread")
    assert sorted(train + dev, key=lambda s: int(s.words[0])) == sentences and len(dev) == 12


def test_unknown_dev_split_names_the_key():
    with pytest.raises(KayanError, match="data.dev_split"):
        dev_indices(10, 0.1, "random")
