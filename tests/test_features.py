"""Words → subword windows: every word is owned, labelled and scored exactly once."""

from __future__ import annotations

import random

import numpy as np
import pytest
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.model.features import IGNORE, Feature, encode, plan_windows, to_dict, word_scores
from kayan.model.tiny import train_wordpiece_tokenizer

WORDS = (
    "ذهب مُحَمَّد إلى القاهرة يوم الأحد ، وقال إن الرئيس سيزور بيروت ودمشق في الأسبوع المقبل ؛ "
    "هل يلتقي الوزير بوفد من الأمم المتحدة ؟ كتـــاب عام ١٤٤٥ و 2024 . أعلنت شركة أرامكو "
    "السعودية وقالت وكالة رويترز إن Barack Obama زار الرياض والكويت وعمّان بالقاهرة"
).split()
TAGS = ("O", "B-PERS", "I-PERS", "B-LOC", "I-LOC")
LABEL2ID = {tag: i for i, tag in enumerate(TAGS)}


@pytest.fixture(scope="module")
def tokenizer():
    # a small vocabulary, so that many words split into several subwords
    return train_wordpiece_tokenizer(WORDS, vocab_size=120)


@pytest.fixture(scope="module")
def xlmr_tokenizer():
    """An XLM-R-style tokenizer: ``<s> ... </s>``, ``<pad>`` = 1, ``<unk>`` = 3, ▁ word marks."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(vocab_size=150, special_tokens=specials, show_progress=False)
    backend.train_from_iterator(WORDS, trainer=trainer)
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    )


def _sentence(n_words: int, seed: int = 0) -> Sentence:
    rng = random.Random(seed)
    words = tuple(rng.choice(WORDS) for _ in range(n_words))
    tags, previous = [], "O"
    for _ in words:
        tag = rng.choice(TAGS)
        if tag.startswith("I-") and previous == "O":
            tag = "B" + tag[1:]
        tags.append(tag)
        previous = tag
    return Sentence(words, tuple(tags), source="fixture.txt", line=1)


def _owned_first_positions(feature: Feature) -> list[tuple[int, int]]:
    """``(position, word)`` of the first subword of each word the feature owns."""
    index = feature.word_index
    return [
        (position, word)
        for position, word in enumerate(index)
        if word >= 0 and (position == 0 or index[position - 1] != word)
    ]


def _check_partition(features, lengths, window):
    owned = [[0] * length for length in lengths]
    for feature in features:
        assert len(feature.input_ids) <= window
        assert len(feature.input_ids) == len(feature.word_index)
        assert feature.labels is None or len(feature.labels) == len(feature.input_ids)
        for _, word in _owned_first_positions(feature):
            owned[feature.sentence][word] += 1
    assert owned == [[1] * length for length in lengths]


def _one_hot_logits(features, n_labels, pad=0):
    logits = []
    for feature in features:
        rows = np.zeros((len(feature.input_ids) + pad, n_labels), np.float32)
        for position, word in enumerate(feature.word_index):
            if word >= 0:
                rows[position, word] = 1.0
        logits.append(rows)
    return logits


@pytest.mark.parametrize(
    ("n_words", "window", "stride"),
    [
        (700, 32, 8),
        (700, 32, 0),
        (300, 16, 13),
        (120, 3, 0),
        (50, 512, 128),
        (1, 4, 1),
    ],
)
def test_every_word_is_owned_labelled_and_scored_once(tokenizer, n_words, window, stride):
    sentence = _sentence(n_words)
    features = encode([sentence], tokenizer, label2id=LABEL2ID, window=window, stride=stride)
    _check_partition(features, [n_words], window)
    labelled = [label for f in features for label in f.labels if label != IGNORE]
    assert labelled == [LABEL2ID[tag] for tag in sentence.tags]
    for feature in features:
        assert feature.input_ids[0] == tokenizer.cls_token_id
        assert feature.input_ids[-1] == tokenizer.sep_token_id
    (scores,) = word_scores(features, _one_hot_logits(features, n_words, pad=3), [n_words])
    np.testing.assert_array_equal(scores, np.eye(n_words, dtype=np.float32))


def test_owned_subwords_are_the_sentence_tokenization(tokenizer):
    sentence = _sentence(400, seed=3)
    features = encode([sentence], tokenizer, window=24, stride=6)
    owned = [i for f in features for i, w in zip(f.input_ids, f.word_index) if w >= 0]
    expected = tokenizer(list(sentence.words), is_split_into_words=True, add_special_tokens=False)
    assert owned == expected["input_ids"]
    assert len(features) > 1


def test_windows_overlap_by_at_most_stride(tokenizer):
    sentence = _sentence(300, seed=5)
    features = encode([sentence], tokenizer, window=30, stride=10)
    assert len(features) > 2
    for feature in features[1:]:
        first_owned = next(p for p, w in enumerate(feature.word_index) if w >= 0)
        assert first_owned - 1 <= 10  # the context before the owned words, [CLS] excluded


def test_short_sentences_get_one_window_each(tokenizer):
    sentences = [_sentence(n, seed=n) for n in (1, 5, 12)]
    features = encode(sentences, tokenizer, label2id=LABEL2ID)
    assert [f.sentence for f in features] == [0, 1, 2]
    for feature, sentence in zip(features, sentences):
        expected = tokenizer(list(sentence.words), is_split_into_words=True)
        assert feature.input_ids == expected["input_ids"]
        assert feature.word_index == [-1 if w is None else w for w in expected.word_ids()]


def test_plain_word_lists_give_unlabelled_features(tokenizer):
    features = encode([["زار", "أوباما", "الرياض"], []], tokenizer)
    assert len(features) == 1 and features[0].labels is None
    scores = word_scores(features, _one_hot_logits(features, 4), [3, 0])
    assert [s.shape for s in scores] == [(3, 4), (0, 4)]


@pytest.mark.parametrize(
    ("all_subwords", "expected"),
    [
        (False, {"B-LOC": ("B-LOC", None), "I-LOC": ("I-LOC", None), "O": ("O", None)}),
        (True, {"B-LOC": ("B-LOC", "I-LOC"), "I-LOC": ("I-LOC", "I-LOC"), "O": ("O", "O")}),
    ],
)
def test_label_all_subwords_turns_b_into_i(tokenizer, all_subwords, expected):
    words = ("السعودية", "والكويت", "بالقاهرة")
    tags = ("B-LOC", "I-LOC", "O")
    pieces = [tokenizer(word, add_special_tokens=False)["input_ids"] for word in words]
    assert all(len(ids) > 1 for ids in pieces), pieces  # the vocabulary is small on purpose
    (feature,) = encode(
        [Sentence(words, tags)], tokenizer, label2id=LABEL2ID, label_all_subwords=all_subwords
    )
    for word, tag in enumerate(tags):
        labels = [lab for lab, w in zip(feature.labels, feature.word_index) if w == word]
        first, rest = expected[tag]
        assert labels[0] == LABEL2ID[first]
        assert labels[1:] == [IGNORE if rest is None else LABEL2ID[rest]] * (len(labels) - 1)


def test_a_word_without_subwords_gets_the_unknown_token(tokenizer):
    words = ["زار", "", "\x00", "\u200b", "بيروت"]
    assert [len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words[1:3]] == [0, 0]
    (feature,) = encode([words], tokenizer)
    positions = dict((w, p) for p, w in reversed(_owned_first_positions(feature)))
    assert feature.input_ids[positions[1]] == tokenizer.unk_token_id
    assert feature.input_ids[positions[2]] == tokenizer.unk_token_id
    _check_partition([feature], [len(words)], 512)


def test_a_word_longer_than_the_window_keeps_its_first_subwords(tokenizer):
    long_word = "القاهرة" * 12
    pieces = tokenizer(long_word, add_special_tokens=False)["input_ids"]
    assert len(pieces) > 14
    features = encode([["زار", long_word, "بيروت"]], tokenizer, window=16, stride=4)
    _check_partition(features, [3], 16)
    (owner,) = [f for f in features if 1 in f.word_index]
    assert [i for i, w in zip(owner.input_ids, owner.word_index) if w == 1] == pieces[:14]


@pytest.mark.parametrize(
    ("window", "stride", "key"),
    [
        (2, 0, "training.window"),
        (0, 0, "training.window"),
        (32, 30, "training.stride"),
        (32, 31, "training.stride"),
        (32, -1, "training.stride"),
    ],
)
def test_window_and_stride_errors_name_the_key_and_the_fix(tokenizer, window, stride, key):
    with pytest.raises(KayanError, match=key) as error:
        encode([["زار"]], tokenizer, window=window, stride=stride)
    assert "set training.window" in str(error.value) or "lower training.stride" in str(error.value)


def test_unknown_tag_names_the_file_line_and_tag(tokenizer):
    sentence = Sentence(("زار", "بيروت"), ("O", "B-GPE"), source="train.txt", line=10)
    with pytest.raises(KayanError, match=r"train\.txt:11: tag 'B-GPE' is not in the label map"):
        encode([sentence], tokenizer, label2id=LABEL2ID)


def test_labels_need_tagged_sentences(tokenizer):
    with pytest.raises(KayanError, match="no tags"):
        encode([["زار", "بيروت"]], tokenizer, label2id=LABEL2ID)


def test_a_string_is_not_a_sentence(tokenizer):
    with pytest.raises(TypeError):
        encode(["زار بيروت"], tokenizer)


def test_no_sentences_no_features(tokenizer):
    assert encode([], tokenizer) == []
    assert word_scores([], [], []) == []
    features = encode([[], []], tokenizer)
    assert features == []
    assert [s.shape for s in word_scores(features, [], [0, 0], n_labels=5)] == [(0, 5), (0, 5)]


def test_xlmr_style_special_tokens(xlmr_tokenizer):
    sentence = _sentence(200, seed=9)
    features = encode([sentence], xlmr_tokenizer, label2id=LABEL2ID, window=20, stride=6)
    assert len(features) > 1
    for feature in features:
        assert (feature.input_ids[0], feature.input_ids[-1]) == (0, 2)  # <s> ... </s>
        assert feature.labels[0] == feature.labels[-1] == IGNORE
    _check_partition(features, [200], 20)
    (scores,) = word_scores(features, _one_hot_logits(features, 200), [200])
    np.testing.assert_array_equal(scores, np.eye(200, dtype=np.float32))
    (empty,) = encode([["زار", "", "بيروت"]], xlmr_tokenizer)
    assert empty.input_ids[2] == xlmr_tokenizer.unk_token_id == 3


def test_features_go_through_the_token_classification_collator(tokenizer):
    features = encode([_sentence(3), _sentence(9, seed=1)], tokenizer, label2id=LABEL2ID)
    collator = transformers.DataCollatorForTokenClassification(tokenizer, return_tensors="np")
    batch = collator([to_dict(f) for f in features])
    width = max(len(f.input_ids) for f in features)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, width)
    short = len(features[0].input_ids)
    assert batch["input_ids"][0, short:].tolist() == [tokenizer.pad_token_id] * (width - short)
    assert batch["labels"][0, short:].tolist() == [IGNORE] * (width - short)
    assert batch["attention_mask"][0].tolist() == [1] * short + [0] * (width - short)
    assert "labels" not in to_dict(encode([["زار"]], tokenizer)[0])


def test_word_scores_catches_a_word_scored_twice():
    feature = Feature([2, 7, 3], None, [-1, 0, -1], 0)
    with pytest.raises(RuntimeError, match="scores"):
        word_scores([feature, feature], [np.zeros((3, 2)), np.zeros((3, 2))], [1])
    with pytest.raises(RuntimeError, match="scores"):
        word_scores([feature], [np.zeros((3, 2))], [2])


def test_context_is_split_at_the_middle():
    windows = plan_windows([1] * 200, capacity=30, stride=8)
    for previous, window in zip(windows, windows[1:]):
        assert previous.own_end == window.own_start
        assert window.own_start - window.start == 4  # left context of the first owned word
        assert previous.end - previous.own_end == 4  # right context of the last owned word


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), max_size=80),
    capacity=st.integers(12, 40),
    data=st.data(),
)
def test_ownership_is_a_partition(lengths, capacity, data):
    stride = data.draw(st.integers(0, capacity - 1))
    windows = plan_windows(lengths, capacity=capacity, stride=stride)
    owned = [word for w in windows for word in range(w.own_start, w.own_end)]
    assert owned == list(range(len(lengths)))
    for w in windows:
        assert w.start <= w.own_start < w.own_end <= w.end
        assert sum(lengths[w.start : w.end]) <= capacity
    for previous, window in zip(windows, windows[1:]):
        assert window.start > previous.start
        assert sum(lengths[window.start : previous.end]) <= stride


@settings(max_examples=40, deadline=None)
@given(
    n_words=st.lists(st.integers(0, 150), min_size=1, max_size=3),
    window=st.integers(3, 48),
    data=st.data(),
)
def test_encode_ownership_is_a_partition(tokenizer, n_words, window, data):
    stride = data.draw(st.integers(0, window - 3))
    sentences = [_sentence(n, seed=n) for n in n_words]
    features = encode(sentences, tokenizer, label2id=LABEL2ID, window=window, stride=stride)
    _check_partition(features, n_words, window)
    n_labels = max(n_words) + 1
    scores = word_scores(features, _one_hot_logits(features, n_labels), n_words, n_labels=n_labels)
    for n, array in zip(n_words, scores):
        np.testing.assert_array_equal(array, np.eye(n, max(n_words) + 1, dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# Document context: neighbouring sentences' subwords around a sentence, never labelled or scored

def _pieces(tokenizer, words):
    return [tokenizer(w, add_special_tokens=False)["input_ids"] or [tokenizer.unk_token_id] for w in words]


@settings(max_examples=40, deadline=None)
@given(
    n_words=st.lists(st.integers(0, 60), min_size=1, max_size=5),
    window=st.integers(3, 64),
    context=st.integers(0, 40),
    documents=st.lists(st.integers(0, 1), min_size=5, max_size=5),
    data=st.data(),
)
def test_context_keeps_every_word_owned_labelled_and_scored_once(tokenizer, n_words, window, context, documents, data):
    stride = data.draw(st.integers(0, window - 3))
    sentences = [_sentence(n, seed=i + n) for i, n in enumerate(n_words)]
    documents = sorted(documents[: len(sentences)])  # documents are runs of neighbours
    with_context = encode(sentences, tokenizer, label2id=LABEL2ID, window=window, stride=stride, context=context,
                          documents=documents)
    without = encode(sentences, tokenizer, label2id=LABEL2ID, window=window, stride=stride)
    _check_partition(with_context, n_words, window)
    n_labels = max(n_words) + 1
    scores = word_scores(with_context, _one_hot_logits(with_context, n_labels), n_words, n_labels=n_labels)
    for n, array in zip(n_words, scores):
        np.testing.assert_array_equal(array, np.eye(n, n_labels, dtype=np.float32))
    # the same windows, each with at most `context` extra unlabelled, unowned subwords per side
    assert len(with_context) == len(without)
    for a, b in zip(with_context, without):
        extra = len(a.input_ids) - len(b.input_ids)
        assert 0 <= extra <= 2 * context
        owned_a = [(w, l) for w, l in zip(a.word_index, a.labels) if w >= 0]
        owned_b = [(w, l) for w, l in zip(b.word_index, b.labels) if w >= 0]
        assert owned_a == owned_b
        assert sum(l != IGNORE for l in a.labels) == sum(l != IGNORE for l in b.labels)


def test_context_is_the_nearest_whole_words_of_the_same_document(tokenizer):
    first, second, third = ["ذهب", "مُحَمَّد", "إلى"], ["القاهرة", "يوم"], ["الأحد", "بيروت"]
    p1, p2, p3 = _pieces(tokenizer, first), _pieces(tokenizer, second), _pieces(tokenizer, third)
    budget = len(p1[-1]) + len(p1[-2])  # the last two words of the first sentence fit, the third does not
    features = encode([first, second, third], tokenizer, window=64, stride=0, context=budget,
                      documents=["a", "a", "b"])
    cls, sep = features[1].input_ids[0], features[1].input_ids[-1]
    middle = features[1]
    own = [i for ids in p2 for i in ids]
    right = [i for ids in p3 for i in ids]
    assert middle.input_ids == [cls] + p1[-2] + p1[-1] + own + [sep]  # "b" is another document: no right context
    following, used = [], 0  # the first sentence's right context: whole words of the second, nearest first
    for ids in p2:
        if used + len(ids) > budget:
            break
        following, used = following + ids, used + len(ids)
    assert features[0].input_ids == [cls] + [i for ids in p1 for i in ids] + following + [sep]
    assert features[2].input_ids == [cls] + right + [sep]  # the first of its document: nothing before it


def test_context_only_fills_the_room_a_window_leaves(tokenizer):
    sentences = [["ذهب", "مُحَمَّد", "إلى", "القاهرة"]] * 3
    full = sum(map(len, _pieces(tokenizer, sentences[0])))
    features = encode(sentences, tokenizer, window=full + 2, stride=0, context=50)
    assert [len(f.input_ids) for f in features] == [full + 2] * 3  # no room: no context
    features = encode(sentences, tokenizer, window=full + 6, stride=0, context=50)
    assert all(len(f.input_ids) <= full + 6 for f in features)


def test_negative_context_names_the_key(tokenizer):
    with pytest.raises(KayanError, match="training.context"):
        encode([["ذهب"]], tokenizer, context=-1)
