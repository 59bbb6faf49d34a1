"""Corpora from 🤗 datasets (hf:, parquet:, json:, save_to_disk folders) and `kayan data export`.

Every dataset is built here (offline); one is written from ../shared's WikiANN-ar.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")

from kayan.cli import main  # noqa: E402
from kayan.config import load_config  # noqa: E402
from kayan.data import corpora, hfdata  # noqa: E402
from kayan.data.hfexport import check_round_trip, export  # noqa: E402
from kayan.data.rundata import load_run_data  # noqa: E402
from kayan.errors import KayanError  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402

NAMES = ["O", "B-PERS", "I-PERS", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
ROWS = {  # Arabic with a clitic, Latin inside Arabic, Arabic-Indic digits, a stray I- opener, an empty row
    "tokens": [["وصل", "محمد", "بن", "سلمان", "إلى", "بغداد", "،"], ["شركة", "Google", "في", "٢٠٢٤"],
               [], ["I-opener", "x"]],
    "ner_tags": [[0, 1, 2, 2, 0, 3, 0], [5, 6, 0, 0], [], [2, 0]],
}
EXPECTED = [
    (("وصل", "محمد", "بن", "سلمان", "إلى", "بغداد", "،"), ("O", "B-PERS", "I-PERS", "I-PERS", "O", "B-LOC", "O")),
    (("شركة", "Google", "في", "٢٠٢٤"), ("B-ORG", "I-ORG", "O", "O")),
    (("I-opener", "x"), ("B-PERS", "O")),
]


def _features(names=NAMES):
    return datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                              "ner_tags": datasets.List(datasets.ClassLabel(names=names))})


def _dataset(rows=ROWS, features=None):
    return datasets.Dataset.from_dict(rows, features=features or _features())


def _words_tags(dataset):
    return [(s.words, s.tags) for s in dataset.sentences]


def _as_strings(rows=ROWS, tags="ner_tags"):
    return {"tokens": rows["tokens"], tags: [[NAMES[i] for i in r] for r in rows["ner_tags"]]}


def _write(kind, tmp_path):
    """Each on-disk form of the same rows; returns the reference to read."""
    if kind == "parquet":
        _dataset().to_parquet(str(tmp_path / "d.parquet"))
        return f"parquet:{tmp_path / 'd.parquet'}"
    if kind == "json":
        path = tmp_path / "d.jsonl"
        path.write_text("".join(json.dumps(dict(zip(_as_strings(), r)), ensure_ascii=False) + "\n"
                                for r in zip(*_as_strings().values())), encoding="utf-8")
        return f"json:{path}"
    if kind == "disk":
        datasets.DatasetDict({"train": _dataset(), "validation": _dataset()}).save_to_disk(str(tmp_path / "saved"))
        return f"{tmp_path / 'saved'}:train"
    _dataset().to_parquet(str(tmp_path / "hub" / "data" / "train-00000-of-00001.parquet"))
    return f"hf:{tmp_path / 'hub'}:train"  # load_dataset on a local folder laid out like a Hub repo


@pytest.mark.parametrize("kind", ["parquet", "json", "disk", "hf"])
def test_every_form_reads_the_same_sentences(kind, tmp_path):
    dataset = corpora.load_split(_write(kind, tmp_path))
    assert _words_tags(dataset) == EXPECTED
    notes = dataset.report.notes()
    assert "repaired I-PERS -> B-PERS (1x)" in notes and "skipped 1 empty row(s)" in notes
    assert dataset.files and all(len(digest) == 64 for digest in dataset.files.values())


def test_other_column_names_via_data_columns(tmp_path):
    rows = _as_strings(tags="labels")
    datasets.Dataset.from_dict({"words_x": rows["tokens"], "labels": rows["labels"]}).to_parquet(str(tmp_path / "d.parquet"))
    ref = f"parquet:{tmp_path / 'd.parquet'}"
    with pytest.raises(KayanError, match=r"no tokens column .*data\.columns"):
        corpora.load_split(ref)
    assert _words_tags(corpora.load_split(ref, columns={"tokens": "words_x"})) == EXPECTED
    with pytest.raises(KayanError, match="data.columns: unknown key"):
        corpora.load_split(ref, columns={"token": "words_x"})
    with pytest.raises(KayanError, match="lacks"):
        corpora.load_split(ref, columns={"tokens": "nope"})


def test_bioes_and_direction_marks(tmp_path):
    rows = {"tokens": [["\u200fمحمد", "علي", "\u200e"], ["بغداد"]], "ner_tags": [["B-PER", "E-PER", "O"], ["S-LOC"]]}
    dataset = hfdata.load_split(_save(rows, tmp_path))
    assert dataset.scheme == "BIOES"
    assert _words_tags(dataset) == [(("محمد", "علي"), ("B-PER", "I-PER")), (("بغداد",), ("B-LOC",))]
    assert dataset.report.direction_marks_removed == 2 and dataset.report.dropped_tokens


def _save(rows, tmp_path, features=None):
    path = tmp_path / "bad.parquet"
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))
    return f"parquet:{path}"


@pytest.mark.parametrize("rows, message", [
    ({"tokens": [["a"], ["b", "c"]], "ner_tags": [["O"], ["O"]]}, r"row 1: 2 tokens but 1 tags"),
    ({"tokens": [["a", "b"]], "ner_tags": [["O", "X-LOC"]]}, r"row 0, token 1 \('b'\): tag 'X-LOC'"),
    ({"tokens": [["a", "b"]], "ner_tags": [["O", "LOC"]]}, r"row 0, token 1 .*'LOC'"),
    ({"tokens": [["a"]], "ner_tags": [[3]]}, r"row 0: tag 3 has no name; store tags as a ClassLabel"),
    ({"tokens": [["a", " "]], "ner_tags": [["O", "B-LOC"]]}, r"row 0, token 1: an empty token is tagged 'B-LOC'"),
    ({"tokens": [[]], "ner_tags": [[]]}, r"no sentences"),
    ({"tokens": [["New York"]], "ner_tags": [["B-LOC"]]}, r"row 0, token 0 \('New York'\): a token holds a space"),
])
def test_errors_name_the_dataset_and_row(rows, message, tmp_path):
    with pytest.raises(KayanError, match=message) as caught:
        corpora.load_split(_save(rows, tmp_path))
    assert "bad.parquet" in str(caught.value)


def test_splits_dev_carving_and_missing_split(tmp_path):
    both = tmp_path / "both"
    datasets.DatasetDict({"train": _dataset(), "validation": _dataset(), "test": _dataset()}).save_to_disk(str(both))
    assert corpora.load_split(f"{both}:dev").name == f"{both}:dev" and len(corpora.load_split(f"{both}:dev").sentences) == 3
    assert hfdata.role_ref(f"{both}:train", "test") == f"{both}:test"
    ref = _write("parquet", tmp_path)
    assert hfdata.role_ref(ref, "test") is None
    dev = corpora.load_split(f"{ref}:dev", dev_fraction=0.34)
    assert len(dev.sentences) == 1 and "carved" not in dev.name and "dev = last 1 of 3" in dev.note
    held = corpora.load_split(f"{ref}:train", dev_fraction=0.34, hold_out_dev=True)
    assert len(held.sentences) == 2
    with pytest.raises(KayanError, match=r"no split 'tset'; choose one of: train, dev \(carved from train\)"):
        corpora.load_split(f"{ref}:tset")


def test_hub_reference_keeps_the_real_loader(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(KayanError, match=r"hf:nobody/nothing:ar:train: could not load .*local copy"):
        corpora.load_split("hf:nobody/nothing:ar:train")
    parsed = hfdata.parse("hf:a/b:ar:validation")
    assert (parsed.target, parsed.config, parsed.split) == ("a/b", "ar", "validation")
    with pytest.raises(KayanError, match="hf:OWNER/NAME"):
        hfdata.parse("hf:a:b:c:d")


def test_export_round_trips_and_the_ecosystem_reads_it(tmp_path):
    out = tmp_path / "sample-hf"
    result = export("sample", out)
    assert list(result["splits"]) == ["train", "validation", "test"] and result["splits"]["train"] == 262
    assert check_round_trip("sample", out) == []
    loaded = datasets.load_dataset("parquet", data_dir=str(out))
    assert set(loaded) == {"train", "validation", "test"}
    feature = loaded["train"].features["ner_tags"].feature
    assert isinstance(feature, datasets.ClassLabel) and feature.names == result["labels"] and feature.names[0] == "O"
    first = corpora.load_split("sample:train").sentences[0]
    assert loaded["train"][0]["tokens"] == list(first.words)
    assert [feature.names[i] for i in loaded["train"][0]["ner_tags"]] == list(first.tags)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert corpora.SAMPLE_SHA256["train.txt"] in card and "| train | 262 |" in card and "class_label" in card
    assert set(datasets.load_dataset(str(out))) == {"train", "validation", "test"}  # the card's configs
    with pytest.raises(KayanError, match="--overwrite"):
        export("sample", out)


def test_cli_export(tmp_path, capsys):
    assert main(["data", "export", "sample:test", "--to", str(tmp_path / "x")]) == 0
    assert "round trip" in capsys.readouterr().out
    assert main(["data", "export", "sample:test", "--to", str(tmp_path / "x")]) == 2


def test_run_data_from_an_export_equals_the_conll_corpus(tmp_path):
    export("sample", tmp_path / "hf")
    conll = load_run_data(load_config(None, ["data.train=[sample:train]"]).data)
    for ref in (f"parquet:{tmp_path / 'hf'}:train", f"hf:{tmp_path / 'hf'}:train"):
        hf = load_run_data(load_config(None, [f"data.train=[{ref!r}]"]).data)
        for role in ("train", "dev", "test"):
            assert _words_tags(getattr(hf, role)) == _words_tags(getattr(conll, role)), (ref, role)


@pytest.mark.skipif(not (SHARED_DATA / "WikiANN-ar" / "dev-ar.tsv").exists(),
                    reason=f"WikiANN-ar not found under {SHARED_DATA} (set KAYAN_SHARED_DIR)")
def test_wikiann_written_as_the_hub_stores_it(tmp_path):
    """WikiANN-ar dev from ../shared, stored as the Hub's `wikiann` does (ClassLabel PER/ORG/LOC)."""
    conll = corpora.load_split("wikiann-ar:dev")
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]  # the Hub dataset's order
    rows = {"tokens": [list(s.words) for s in conll.sentences],
            "ner_tags": [[names.index(t) for t in s.tags] for s in conll.sentences]}
    datasets.DatasetDict({"validation": _dataset(rows, _features(names))}).save_to_disk(str(tmp_path / "wikiann"))
    back = corpora.load_split(f"{tmp_path / 'wikiann'}:dev")
    assert _words_tags(back) == _words_tags(conll) and len(back.sentences) > 1000


def test_training_on_an_export_gives_the_conll_scores(tmp_path):
    """The issue's check on the tiny model: sample via CoNLL and via its parquet export, same scores."""
    from kayan.training import train
    from tests.conftest import FAST

    export("sample", tmp_path / "hf")
    scores = []
    for name, ref in (("conll", "sample:train"), ("parquet", f"parquet:{tmp_path / 'hf'}:train")):
        config = load_config(Path(__file__).parent.parent / "configs" / "quickstart.yaml",
                             [*FAST, "training.epochs=1", "training.max_steps=6", "training.eval_steps=3", f"data.train=[{ref!r}]", f"output.dir={tmp_path}",
                              f"output.run_name={name}"])
        summary = train(config)
        lines = (Path(summary["run_dir"]) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        scores.append((summary["best_dev_f1"], summary["test_f1"],
                       [{k: v for k, v in json.loads(line).items() if "time" not in k and "per_second" not in k}
                        for line in lines]))
    assert scores[0] == scores[1]


def test_windows_through_datasets_are_cached_and_memory_mapped(tmp_path):
    from kayan.model.features import encode
    from kayan.model.hffeatures import window_dataset
    from kayan.model.tiny import train_wordpiece_tokenizer

    sentences = corpora.load_split("sample:dev").sentences
    tokenizer = train_wordpiece_tokenizer([w for s in sentences for w in s.words], vocab_size=300)
    label2id = {t: i for i, t in enumerate(sorted({t for s in sentences for t in s.tags}))}
    options = {"window": 24, "stride": 8, "label2id": label2id}
    first = window_dataset(sentences, tokenizer, cache_dir=tmp_path, **options)
    plain = encode(sentences, tokenizer, **options)
    assert len(plain) > len(sentences)  # some sentences need several windows
    assert first["input_ids"] == [f.input_ids for f in plain] and first["labels"] == [f.labels for f in plain]
    assert first["word_index"] == [f.word_index for f in plain] and first["sentence"] == [f.sentence for f in plain]
    assert first.info.description.startswith("built") and first.cache_files  # an Arrow file on disk, memory-mapped
    again = window_dataset(sentences, tokenizer, cache_dir=tmp_path, **options)
    assert again.info.description.startswith("cached") and again["input_ids"] == first["input_ids"]
    other = window_dataset(sentences, tokenizer, cache_dir=tmp_path, **{**options, "stride": 4})
    assert other.info.description.startswith("built") and len(list(tmp_path.glob("windows-*.arrow"))) == 2
