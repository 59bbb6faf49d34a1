"""What a run trains: the model, its training windows and the Trainer around them.

The two steps a variant of training changes, each one function: :func:`build_run_model` (the model a run
starts from) and :func:`build_trainer` (its ``trainer_class``: a
:class:`~kayan.training.word_trainer.WordLevelTrainer` subclass with its own ``compute_loss``).
Distillation (:mod:`kayan.training.distill`) changes both: a student built from its teacher's layers,
and a Trainer whose loss reads the teacher's soft targets.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import transformers

from kayan import console
from kayan.config import Config
from kayan.data.rundata import RunData
from kayan.data.schemes import OUTSIDE, label_list
from kayan.data.sentence import Sentence
from kayan.model.hffeatures import window_dataset
from kayan.model.modeling import build_model
from kayan.model.tagging import TaggingOptions, normalized
from kayan.training import distill, partial_labels
from kayan.training.averaging import WeightAverage
from kayan.training.callbacks import MetricsLog
from kayan.training.embedding_rows import freeze_unused_rows, used_rows_only
from kayan.training.interrupt import StopOnInterrupt
from kayan.training.word_trainer import WordLevelTrainer, documents


def tagging_options(config: Config) -> TaggingOptions:
    """How the run's model reads words, in training as at inference (kayan.json records the same settings)."""
    t = config.training
    return TaggingOptions(window=t.window, stride=t.stride, normalization=tuple(config.data.normalization),
                          decoding=t.decoding, batch_size=t.eval_batch_size, context=t.context)


def build_run_model(config: Config, labels: Sequence[str], train: Sequence[Sentence]):
    """The model and tokenizer a run trains, seeded by ``training.seed`` (its new classifier's weights);
    ``train``: the training sentences as the model reads them (``tiny`` learns its vocabulary from them)."""
    transformers.set_seed(config.training.seed)
    return build_model(config.model, labels=labels, train_words=(w for s in train for w in s.words),
                       window=config.training.window)


def train_windows(config: Config, train: Sequence[Sentence], documents: Sequence[str], tokenizer, labels: Sequence[str],
                  missing: Sequence[tuple[str, ...] | None] = (), set_ids: dict | None = None):
    """The training windows (columns input_ids, attention_mask, labels) through 🤗 datasets: cached by
    fingerprint (a second run of the same data and tokenizer skips tokenizing) and memory-mapped; the same
    windows as :func:`kayan.model.features.encode`.

    ``missing``: per sentence, the types its corpus never tags (or None); its ``O`` words get the id
    ``set_ids`` gives that set (:mod:`kayan.training.partial_labels`)."""
    t = config.training
    windows = window_dataset(train, tokenizer, label2id={tag: i for i, tag in enumerate(labels)}, window=t.window,
                             stride=t.stride, label_all_subwords=t.label_all_subwords, context=t.context,
                             documents=documents)
    if any(missing):
        def mark(rows, sentences):
            return {"labels": partial_labels.set_labels(rows, sentences, missing, set_ids, labels.index(OUTSIDE))}

        marked = hashlib.sha256(repr((windows._fingerprint, sorted(set_ids.items()), list(missing))).encode()).hexdigest()
        with console.quiet_datasets():  # its own fingerprint: hashing the closure would read every sentence
            windows = windows.map(mark, input_columns=["labels", "sentence"], batched=True, new_fingerprint=marked)
    return windows.select_columns(["input_ids", "attention_mask", "labels"])


def _train_only_used_rows(model, tokenizer, windows) -> int:
    """Rows outside the training windows never get a gradient: leave them out of the optimizer; returns the rows trained."""
    used = {i for ids in windows["input_ids"] for i in ids} | set(tokenizer.all_special_ids)
    return len(freeze_unused_rows(model, used).row_ids)


def build_trainer(config: Config, data: RunData, args: transformers.TrainingArguments, metrics_file: Path, *,
                  trainer_class: type[WordLevelTrainer] = WordLevelTrainer, **trainer_kwargs):
    """Labels, model, windows and the Trainer of a run; returns (trainer, its Ctrl-C watcher).

    ``trainer_kwargs`` go to ``trainer_class`` (what a subclass's own loss needs).
    """
    t, options = config.training, tagging_options(config)
    labels = label_list(s.tags for s in data.train.sentences)
    words = normalized([s.words for s in data.train.sentences], options.normalization)  # as the model reads them
    train = [Sentence(tuple(w), s.tags) for s, w in zip(data.train.sentences, words)]
    if config.distill.teacher:  # a student of the teacher's layers; its loss reads the teacher's soft targets
        transformers.set_seed(t.seed)
        model, tokenizer, distiller = distill.build_student(config, labels, lambda: build_run_model(config, labels, train))
        trainer_class, trainer_kwargs = distill.DistillingTrainer, {**trainer_kwargs, "distiller": distiller}
    else:
        model, tokenizer = build_run_model(config, labels, train)
    missing = [data.train.unannotated.get(s.source) for s in data.train.sentences]
    set_ids, allowed = partial_labels.label_sets(labels, [m for m in missing if m])
    windows = train_windows(config, train, documents(data.train.sentences), tokenizer, labels, missing, set_ids)
    if config.distill.teacher:  # unlabelled sentences' windows join, soft targets only
        windows = distill.with_unlabelled(windows, config, data, tokenizer, distiller, options.normalization)
    trained_rows = _train_only_used_rows(model, tokenizer, windows) if used_rows_only(t) else None
    interrupt = StopOnInterrupt()
    average = WeightAverage(t.ema_decay) if t.ema_decay else None  # off by default
    callbacks = [MetricsLog(metrics_file), interrupt, *([average] if average is not None else [])]
    if t.select_best and t.early_stopping_patience > 0:
        callbacks.append(transformers.EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    trainer = trainer_class(
        model=model, args=args, train_dataset=windows, eval_dataset=windows.select([0]),
        data_collator=transformers.DataCollatorForTokenClassification(tokenizer), processing_class=tokenizer,
        callbacks=callbacks, dev=data.dev.sentences, options=options, recompute_above=t.recompute_above,
        warmup_ratio=t.warmup_ratio, layer_lr_decay=t.layer_lr_decay, **trainer_kwargs,
    )
    trainer.embedding_rows_trained = trained_rows
    if set_ids:  # some corpus misses types: the loss reads label sets
        trainer.use_label_sets(allowed)
    trainer.weight_average = average
    return trainer, interrupt
