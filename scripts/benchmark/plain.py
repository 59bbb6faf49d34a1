"""The plain recipe, as a user writes it from the transformers token-classification guide.

``AutoModelForTokenClassification`` + ``Trainer`` + ``DataCollatorForTokenClassification``, the tag
on the first subword of each word (-100 on the others), truncation, no dev set, the last checkpoint,
seqeval's default mode. The pure helpers are tested in tests/test_benchmark.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import transformers
from seqeval.metrics import f1_score

from kayan.atomic import write_text
from kayan.data import corpora
from kayan.evaluation import predictions_text

from . import PLAIN_MAX_LENGTH, TEST_REF

# The plain recipe: pure helpers (tested in tests/test_benchmark.py)

def align_labels(word_ids: Sequence[int | None], tags: Sequence[str], label2id: dict[str, int]) -> list[int]:
    """Subword labels the guide's way: a word's first subword carries its tag, the rest get -100.

    Args:
        word_ids: the tokenizer's ``word_ids()`` for one (possibly truncated) sentence.
        tags: the sentence's word tags.
        label2id: tag → label id.

    >>> align_labels([None, 0, 0, 1, None], ["B-PERS", "O"], {"O": 0, "B-PERS": 1})
    [-100, 1, -100, 0, -100]
    """
    labels, previous = [], None
    for word in word_ids:
        labels.append(-100 if word is None or word == previous else label2id[tags[word]])
        previous = word
    return labels


def word_tags(word_ids: Sequence[int | None], predicted: Sequence[int], n_words: int,
              id2label: dict[int, str]) -> list[str]:
    """One tag per word from one sentence's subword predictions, every word included.

    A word takes its first subword's label; a word the truncation cut off (no subword left) is
    predicted ``O``, so its entities count as missed.

    >>> word_tags([None, 0, 0, 1, None], [0, 1, 2, 0, 0], 3, {0: "O", 1: "B-LOC", 2: "I-LOC"})
    ['B-LOC', 'O', 'O']
    """
    tags, seen = ["O"] * n_words, set()
    for position, word in enumerate(word_ids):
        if word is not None and word not in seen:
            seen.add(word)
            tags[word] = id2label[int(predicted[position])]
    return tags


def cut_words(word_ids: Sequence[int | None], n_words: int) -> int:
    """How many words of a sentence the truncation dropped entirely.

    >>> cut_words([None, 0, 1, 1, None], 5)
    3
    """
    return n_words - len({word for word in word_ids if word is not None})


def plain_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], kept: Sequence[int]) -> dict:
    """seqeval default-mode F1 on every word, and on the kept words only (what the recipe itself reports).

    Args:
        gold: the gold tags of every test sentence.
        predicted: the predicted tags of every word (cut words predicted ``O``).
        kept: the number of words truncation kept in each sentence.

    >>> plain_scores([["B-PERS", "O", "B-LOC"]], [["B-PERS", "O", "O"]], [2])
    {'test_f1': 0.6667, 'test_f1_kept_words_only': 1.0}
    """
    every = f1_score([list(g) for g in gold], [list(p) for p in predicted])
    kept_only = f1_score([list(g[:k]) for g, k in zip(gold, kept)], [list(p[:k]) for p, k in zip(predicted, kept)])
    return {"test_f1": round(float(every), 4), "test_f1_kept_words_only": round(float(kept_only), 4)}


def plain_labels(data_tags: set[str], model_label2id: dict[str, int]) -> list[str]:
    """The label list: the encoder's own label map when it covers the data's tags (the guide
    reconciles them), else the data's tags sorted.

    >>> plain_labels({"O", "B-LOC"}, {"O": 0, "B-LOC": 1, "I-LOC": 2})
    ['O', 'B-LOC', 'I-LOC']
    >>> plain_labels({"O", "B-LOC"}, {"LABEL_0": 0, "LABEL_1": 1})
    ['B-LOC', 'O']
    """
    if data_tags <= set(model_label2id):
        return sorted(model_label2id, key=model_label2id.get)
    return sorted(data_tags)


def tokenize(tokenizer, sentences, label2id: dict[str, int], max_length: int) -> tuple[list[dict], list[list]]:
    """Features (input ids, mask, first-subword labels) and word ids of each sentence, truncated."""
    encoded = tokenizer([list(s.words) for s in sentences], is_split_into_words=True,
                        truncation=True, max_length=max_length)
    features, word_ids = [], []
    for i, sentence in enumerate(sentences):
        ids = encoded.word_ids(i)
        item = {key: encoded[key][i] for key in encoded.keys()}
        item["labels"] = align_labels(ids, sentence.tags, label2id)
        features.append(item)
        word_ids.append(ids)
    return features, word_ids


def plain_arguments(settings: dict, output_dir: Path):
    """The recipe's TrainingArguments: the shared hyperparameters, no evaluation, a save per epoch."""
    return transformers.TrainingArguments(
        output_dir=str(output_dir), learning_rate=settings["learning_rate"], num_train_epochs=settings["epochs"],
        per_device_train_batch_size=settings["batch_size"], per_device_eval_batch_size=settings["eval_batch_size"],
        lr_scheduler_type=settings["scheduler"], warmup_steps=settings["warmup_ratio"],
        weight_decay=settings["weight_decay"], seed=settings["seed"], eval_strategy="no", save_strategy="epoch",
        logging_steps=50, report_to="none", disable_tqdm=True, use_cpu=settings.get("device", "cpu") == "cpu", dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",  # counted as Kayan counts them; changes no step
    )


def padding_fraction(trainer) -> float:
    """Share of padding positions in one epoch of the trainer's batches."""
    real = total = 0
    for batch in trainer.get_train_dataloader():
        real, total = real + int(batch["attention_mask"].sum()), total + batch["attention_mask"].numel()
    return round(1 - real / total, 4) if total else 0.0


def plain_test(trainer, tokenizer, test, label2id: dict[str, int], max_length: int, predictions: Path | None = None) -> dict:
    """Tag the test split with the trained (last) model and score every word; write the tags to
    ``predictions`` (token gold predicted, what ``kayan compare`` reads) when given."""
    features, word_ids = tokenize(tokenizer, test, label2id, max_length)
    logits = trainer.predict(features).predictions
    id2label = {i: tag for tag, i in label2id.items()}
    predicted = [word_tags(ids, row.argmax(-1), len(s.words), id2label) for ids, row, s in zip(word_ids, logits, test)]
    cut = [cut_words(ids, len(s.words)) for ids, s in zip(word_ids, test)]
    scores = plain_scores([s.tags for s in test], predicted, [len(s.words) - c for s, c in zip(test, cut)])
    if predictions is not None:
        write_text(predictions, predictions_text(test, predicted))
    return {**scores, "test_words_cut": sum(cut), "test_sentences_cut": sum(c > 0 for c in cut)}


def train_plain(settings: dict, work: Path) -> dict:
    """The plain recipe end to end: tokenize with truncation, train, keep the last model, score test."""
    started = time.perf_counter()
    train, test = corpora.load_split(settings["train_ref"]).sentences, corpora.load_split(TEST_REF).sentences
    encoder = settings["encoder_folder"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(encoder)
    max_length = min(PLAIN_MAX_LENGTH, tokenizer.model_max_length)
    labels = plain_labels({t for s in train for t in s.tags}, transformers.AutoConfig.from_pretrained(encoder).label2id)
    label2id = {tag: i for i, tag in enumerate(labels)}
    transformers.set_seed(settings["seed"])
    model = transformers.AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id, ignore_mismatched_sizes=True)
    features, word_ids = tokenize(tokenizer, train, label2id, max_length)
    trainer = transformers.Trainer(
        model=model, args=plain_arguments(settings, work / "plain" / "checkpoints"), train_dataset=features,
        data_collator=transformers.DataCollatorForTokenClassification(tokenizer), processing_class=tokenizer)
    result = trainer.train()
    trainer.save_model(str(work / "plain" / "model"))
    seconds, tokens = result.metrics["train_runtime"], trainer.state.num_input_tokens_seen
    return {
        **plain_test(trainer, tokenizer, test, label2id, max_length, work / "plain" / "test_predictions.txt"),
        "max_length": max_length,
        "train_sentences": len(train),
        "train_words_cut": sum(cut_words(ids, len(s.words)) for ids, s in zip(word_ids, train)),
        "train_tokens": tokens, "train_seconds": round(seconds, 2), "train_tokens_per_second": round(tokens / seconds, 1),
        "padding_fraction": padding_fraction(trainer), "inner_seconds": round(time.perf_counter() - started, 2),
    }
