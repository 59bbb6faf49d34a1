"""The tiny offline tokenizer and BERT config: deterministic, keeps Arabic, saves and loads."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import transformers

from kayan.model.tiny import SPECIAL_TOKENS, tiny_bert_config, train_wordpiece_tokenizer

WORDS = (
    "ذهب مُحَمَّد إلى القاهرة يوم الأحد ، وقال إن الرئيس سيزور بيروت ودمشق في الأسبوع المقبل ؛ "
    "هل يلتقي الوزير بوفد من الأمم المتحدة ؟ كتـــاب جميـــل عام ١٤٤٥ و 2024 . أعلنت شركة "
    "أرامكو السعودية عن أرباحها وقالت وكالة رويترز إن Barack Obama زار الرياض والكويت وعمّان "
    "مستشفى مدرسة بالقاهرة وللرئيس فلسطين"
).split()

ID2LABEL = {0: "O", 1: "B-PERS", 2: "I-PERS", 3: "B-LOC", 4: "I-LOC"}


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece_tokenizer(WORDS * 3, vocab_size=400)


def _pieces(tokenizer, word: str) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(word, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("vocab_size", [120, 400])
def test_training_is_deterministic_and_order_free(vocab_size):
    # tokenizers' WordPiece trainer alone is not (tokenizers issue #1794): repeat to catch it
    first = train_wordpiece_tokenizer(WORDS * 2, vocab_size=vocab_size).get_vocab()
    for seed in range(5):
        shuffled = list(WORDS * 2)
        random.Random(seed).shuffle(shuffled)
        assert train_wordpiece_tokenizer(shuffled, vocab_size=vocab_size).get_vocab() == first
        assert train_wordpiece_tokenizer(WORDS * 2, vocab_size=vocab_size).get_vocab() == first


def test_special_tokens_come_first(tokenizer):
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id) == (0, 1)
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id) == (2, 3, 4)
    assert tokenizer.is_fast
    assert tokenizer.model_max_length == 512


@pytest.mark.parametrize(
    "word",
    [
        "مُحَمَّد",  # diacritics (harakat, shadda)
        "كتـــاب",  # tatweel
        "١٤٤٥",  # Arabic-Indic digits
        "عمّان",  # shadda alone
        "أرامكو",  # hamza on alef
        "مستشفى",  # alef maqsura
        "مدرسة",  # ta marbuta
        "بالقاهرة",  # attached clitic
        "بالرياض",  # unseen word, seen letters: subwords, never [UNK]
    ],
)
def test_arabic_letters_and_diacritics_are_kept(tokenizer, word):
    pieces = _pieces(tokenizer, word)
    assert "[UNK]" not in pieces
    assert "".join(piece.removeprefix("##") for piece in pieces) == word


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("القاهرة،", ["القاهرة", "،"]),
        ("فلسطين؟", ["فلسطين", "؟"]),
        ("بيروت؛ ودمشق", ["بيروت", "؛", "ودمشق"]),
    ],
)
def test_arabic_punctuation_is_split_off(tokenizer, text, expected):
    assert _pieces(tokenizer, text) == expected


def test_lowercase_keeps_diacritics():
    tokenizer = train_wordpiece_tokenizer(WORDS, vocab_size=300, lowercase=True)
    assert "".join(p.removeprefix("##") for p in _pieces(tokenizer, "Obama")) == "obama"
    assert "".join(p.removeprefix("##") for p in _pieces(tokenizer, "مُحَمَّد")) == "مُحَمَّد"


def test_cased_by_default(tokenizer):
    assert "".join(p.removeprefix("##") for p in _pieces(tokenizer, "Obama")) == "Obama"


def test_tiny_bert_config_sets_the_label_map():
    config = tiny_bert_config(vocab_size=123, id2label=ID2LABEL, max_position_embeddings=64)
    assert config.id2label == ID2LABEL
    assert config.label2id == {tag: i for i, tag in ID2LABEL.items()}
    assert (config.num_labels, config.vocab_size, config.max_position_embeddings) == (5, 123, 64)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (64, 2, 2)


def test_model_forward_save_and_reload(tokenizer, tmp_path):
    torch.manual_seed(0)
    config = tiny_bert_config(vocab_size=len(tokenizer), id2label=ID2LABEL)
    model = transformers.AutoModelForTokenClassification.from_config(config).eval()
    sentences = [
        ["ذهب", "مُحَمَّد", "إلى", "القاهرة"],
        ["زار", "Barack", "Obama", "الرياض", "،", "أمس"],
    ]
    batch = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    assert batch.word_ids(0)[:3] == [None, 0, 1]
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch["input_ids"].shape[1], len(ID2LABEL))

    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path)
    reloaded = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path).eval()

    assert reloaded_tokenizer.is_fast
    assert reloaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert reloaded.config.id2label == ID2LABEL
    again = reloaded_tokenizer(
        sentences, is_split_into_words=True, padding=True, return_tensors="pt"
    )
    assert again["input_ids"].tolist() == batch["input_ids"].tolist()
    assert [again.word_ids(i) for i in range(2)] == [batch.word_ids(i) for i in range(2)]
    with torch.no_grad():
        np.testing.assert_allclose(reloaded(**again).logits.numpy(), logits.numpy(), atol=1e-6)


def test_reloaded_tokenizer_keeps_diacritics_and_case(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = transformers.AutoTokenizer.from_pretrained(tmp_path)
    for word in ("مُحَمَّد", "كتـــاب", "Obama"):
        assert _pieces(reloaded, word) == _pieces(tokenizer, word)
