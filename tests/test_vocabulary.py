"""kayan package --prune-vocab: only the pieces a sample uses, the sample tokenized and tagged exactly as before."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
import transformers

import kayan
from kayan.cli import main
from kayan.data import corpora
from kayan.errors import KayanError
from kayan.files import sha256_of
from kayan.model import settings, vocabulary
from kayan.model.tiny import tiny_bert_config, train_wordpiece_tokenizer

WORDPIECE = {
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "كتاب": 4, "ك": 5, "##تاب": 6, "##ب": 7, "مكتبة": 8}},
    "added_tokens": [{"id": i, "content": t, "special": True} for i, t in enumerate(("[PAD]", "[UNK]", "[CLS]", "[SEP]"))],
    "post_processor": {"type": "TemplateProcessing", "special_tokens": {
        "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
    "padding": {"pad_id": 0, "pad_token": "[PAD]"},
}
LABELS = {0: "O", 1: "B-LOC", 2: "I-LOC"}
UNIGRAM = {
    "model": {"type": "Unigram", "unk_id": 3, "vocab": [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0],
                                                        ["▁كتاب", -2.0], ["▁", -3.0], ["ك", -4.0], ["تاب", -5.0],
                                                        ["▁مكتبة", -6.0], ["كت", -9.0], ["<mask>", 0.0]]},
    "added_tokens": [{"id": i, "content": t} for i, t in ((0, "<s>"), (1, "<pad>"), (2, "</s>"), (3, "<unk>"), (10, "<mask>"))],
    "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]},
}


# ---------------------------------------------------------------- pure functions on tokenizer.json

def test_kept_ids_are_the_used_specials_single_characters_and_the_lowest_unigram_score():
    assert vocabulary.kept_ids(WORDPIECE, [4]) == [0, 1, 2, 3, 4, 5, 7]
    assert vocabulary.kept_ids(UNIGRAM, [4]) == [0, 1, 2, 3, 4, 5, 6, 9, 10]  # "كت" scores lowest


def test_prune_spec_renumbers_vocabulary_specials_post_processor_and_padding():
    pruned = vocabulary.prune_spec(WORDPIECE, [0, 1, 2, 3, 5, 7, 8])
    assert pruned["model"]["vocab"] == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "ك": 4, "##ب": 5, "مكتبة": 6}
    assert pruned["post_processor"]["special_tokens"]["[SEP]"]["ids"] == [3] and pruned["padding"]["pad_id"] == 0
    assert WORDPIECE["model"]["vocab"]["مكتبة"] == 8  # the input is left alone

    pruned = vocabulary.prune_spec(UNIGRAM, [0, 1, 2, 3, 5, 6, 10])
    assert [p for p, _ in pruned["model"]["vocab"]] == ["<s>", "<pad>", "</s>", "<unk>", "▁", "ك", "<mask>"]
    assert pruned["model"]["unk_id"] == 3 and pruned["added_tokens"][-1]["id"] == 6
    assert pruned["post_processor"]["sep"] == ["</s>", 2] and pruned["post_processor"]["cls"] == ["<s>", 0]


def test_a_tokenizer_neither_unigram_nor_wordpiece_is_refused_in_one_line():
    with pytest.raises(KayanError, match="BPE model; --prune-vocab supports Unigram and WordPiece") as error:
        vocabulary.kept_ids({"model": {"type": "BPE", "vocab": {}, "merges": []}}, [])
    assert "\n" not in str(error.value)


def test_a_real_bpe_tokenizer_is_refused_before_anything_changes():
    from tokenizers import Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.BPE(vocab={"<unk>": 0, "ز": 1, "ا": 2, "ر": 3, "زا": 4}, merges=[("ز", "ا")], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    model = transformers.BertForTokenClassification(tiny_bert_config(vocab_size=len(tokenizer), id2label=LABELS))
    with pytest.raises(KayanError, match="BPE"):
        vocabulary.prune(model, tokenizer, vocabulary.word_counts([["زار"]], ()))
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)


# ---------------------------------------------------------------- real tokenizers, tiny models

def _words(ref: str) -> list[str]:
    return [word for sentence in corpora.load_split(ref).sentences for word in sentence.words]


def _unigram_tokenizer():
    """An XLM-R-style (Unigram, Metaspace) tokenizer learned on the sample's train split, as me5-small's is built."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    backend = Tokenizer(models.Unigram())
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.train_from_iterator(_words("sample:train"), trainers.UnigramTrainer(
        vocab_size=1500, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False))
    pieces = [tuple(piece) for piece in json.loads(backend.to_str())["model"]["vocab"]] + [("<mask>", 0.0)]
    return transformers.XLMRobertaTokenizer(vocab=pieces)


@pytest.mark.parametrize("kind", ["unigram", "wordpiece"])
def test_sample_tokenizes_to_the_same_pieces_and_the_model_reads_the_same_rows(kind, tmp_path):
    if kind == "unigram":
        tokenizer = _unigram_tokenizer()
    else:
        tokenizer = train_wordpiece_tokenizer(_words("sample:train"), vocab_size=1500)
    config = tiny_bert_config(vocab_size=len(tokenizer), id2label=LABELS)
    config.pad_token_id = tokenizer.pad_token_id
    model = transformers.BertForTokenClassification(config).eval()
    rows = model.get_input_embeddings().weight.detach().clone()
    sample = vocabulary.word_counts([_words("sample:dev")], ())
    check = vocabulary.word_counts([_words("sample:test")], ())
    pruned, record = vocabulary.prune(model, tokenizer, sample, check)

    assert record["pieces_before"] == len(tokenizer) and record["pieces_after"] == len(pruned) < len(tokenizer) * 0.8
    assert model.config.vocab_size == model.get_input_embeddings().num_embeddings == len(pruned)
    words = list(sample)
    before, after = vocabulary.word_pieces(tokenizer, words), vocabulary.word_pieces(pruned, words)
    assert [tokenizer.convert_ids_to_tokens(ids) for ids in before] == [pruned.convert_ids_to_tokens(ids) for ids in after]
    for old, new in zip(before, after):  # each kept piece keeps its own embedding row
        assert torch.equal(rows[old], model.get_input_embeddings().weight[new])
    for name in ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token"):
        token = getattr(tokenizer, name)
        assert getattr(pruned, name) == token and torch.equal(rows[tokenizer.convert_tokens_to_ids(token)],
                                                              model.get_input_embeddings().weight[pruned.convert_tokens_to_ids(token)])
    assert pruned.pad_token_id == model.config.pad_token_id == model.get_input_embeddings().padding_idx
    text = " ".join(_words("sample:dev")[:40])
    assert pruned.convert_ids_to_tokens(pruned(text)["input_ids"]) == tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
    assert 0 < record["check"]["changed_words"] < record["check"]["words"] / 2  # unseen words: a few split otherwise
    assert pruned("بغداد ﷺ")["input_ids"].count(pruned.unk_token_id) == tokenizer("بغداد ﷺ")["input_ids"].count(tokenizer.unk_token_id)


def test_output_embeddings_are_sliced_and_stay_tied():
    model = transformers.BertForMaskedLM(tiny_bert_config(vocab_size=50, id2label=LABELS))
    old = model.get_input_embeddings().weight.detach().clone()
    vocabulary.prune_embeddings(model, [0, 1, 7, 9])
    assert model.get_output_embeddings().weight.shape[0] == 4 and model.get_output_embeddings().bias.shape == (4,)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert torch.equal(model.get_input_embeddings().weight[2], old[7])
    assert model(input_ids=torch.tensor([[0, 3, 1]])).logits.shape == (1, 3, 4)


# ---------------------------------------------------------------- kayan package --prune-vocab

SMALL_TEXT = "زار الرئيس محمد مدينة بغداد أمس.\nوقال إن القاهرة والرياض شريكتان في منظمة الصحة العالمية.\n"


@pytest.fixture(scope="module")
def pruned(built, tmp_path_factory):
    """The noisy package, recorded as trained on one small text (so that most pieces go), pruned on that text."""
    base = tmp_path_factory.mktemp("vocabulary")
    source, text = base / "noisy", base / "small.txt"
    shutil.copytree(built["noisy"], source)
    text.write_text(SMALL_TEXT, encoding="utf-8")
    stored = settings.read(source)
    data = dataclasses.replace(stored.training_data, train=(f"text:{text}",), dev=())
    settings.write(source, dataclasses.replace(stored, training_data=data))
    assert main(["package", str(source), str(base / "pruned"), "--prune-vocab", f"text:{text}"]) == 0
    return source, base / "pruned", text


def test_pruned_package_tags_the_sample_as_before_and_records_the_pruning(pruned, capsys):
    source, out, _ = pruned
    meta = json.loads((out / "kayan.json").read_text(encoding="utf-8"))
    record = meta["vocabulary"]
    assert record["sample"] == record["training_data"] and record["check_text"] == ["sample:test"]
    assert record["pieces_after"] < record["pieces_before"] == 600 and record["bytes_after"] < record["bytes_before"]
    assert record["check"]["words"] == 693 and record["check"]["changed_words"] > 0
    assert meta["weights_sha256"] == meta["files"]["model.safetensors"] == sha256_of(out / "model.safetensors")
    assert json.loads((out / "config.json").read_text())["vocab_size"] == record["pieces_after"]
    assert "vocabulary pruned to the" in (out / "README.md").read_text(encoding="utf-8")
    before, after = kayan.load(source, backend="torch"), kayan.load(out, backend="torch")
    for line in SMALL_TEXT.splitlines():
        assert after.predict(line) == before.predict(line) and before.predict(line)


def test_pruned_package_loads_in_plain_transformers(pruned):
    _, out, _ = pruned
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
    model = transformers.AutoModelForTokenClassification.from_pretrained(str(out))
    ids = tokenizer("زار الرئيس محمد مدينة بغداد")["input_ids"]
    assert max(ids) < model.config.vocab_size and tokenizer.unk_token_id not in ids
    assert model(input_ids=torch.tensor([ids])).logits.shape[:2] == (1, len(ids))


def test_cli_prints_pieces_megabytes_and_the_changed_share(pruned, tmp_path, capsys):
    source, _, text = pruned
    assert main(["package", str(source), str(tmp_path / "out"), "--prune-vocab", f"text:{text}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("vocabulary pruned: 600 -> ") and " MB" in out[0]
    assert out[1].startswith("words of sample:test split otherwise than before: ") and "split as before" in out[1]


@pytest.mark.parametrize("ref, message", [
    ("nosuch:train", "unknown corpus 'nosuch'"),
    ("sample:nosplit", "has no split 'nosplit'"),
    ("text:/no/such/file.txt", "no such file; give text:PATH"),
])
def test_a_bad_ref_is_one_line_with_status_2_and_writes_nothing(built, tmp_path, capsys, ref, message):
    assert main(["package", str(built["noisy"]), str(tmp_path / "out"), "--prune-vocab", ref]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_an_ensemble_is_not_pruned(built, tmp_path, capsys):
    assert main(["package", str(built["run"]), str(built["run"]), str(tmp_path / "out"), "--prune-vocab", "sample:dev"]) == 2
    assert "--prune-vocab prunes one model" in capsys.readouterr().err
