"""The Trainer Kayan trains with: transformers' Trainer, scoring dev on words instead of subwords.

:class:`WordLevelTrainer` overrides three of the Trainer's internals (the train sampler, the scheduler's
warmup, the training step) and its evaluation. Its loss is the Trainer's own :meth:`compute_loss`
(cross-entropy on the labelled subwords): a subclass that overrides it (a distillation loss, say) is
built by :func:`kayan.training.build.build_trainer` through its ``trainer_class`` argument.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Sequence

import transformers

from kayan.data.sentence import Sentence
from kayan.evaluation.metrics import score
from kayan.model.tagging import TaggingOptions, tag_words
from kayan.training import layer_rates, partial_labels
from kayan.training.averaging import UNAVERAGED
from kayan.training.recompute import recompute_activations
from kayan.training.sampling import EpochSampler


DEV_SCORES = ("f1", "precision", "recall", "f1_strict")  # each dev evaluation's scores, in the order logged


def warmup_steps(ratio: float, total_steps: int) -> int:
    """The optimizer steps of the learning-rate warmup: ``training.warmup_ratio`` of the run's steps, rounded up.

    >>> warmup_steps(1.0, 40), warmup_steps(0.1, 45), warmup_steps(0.0, 40)
    (40, 5, 0)
    """
    return math.ceil(ratio * total_steps)


def documents(sentences: Sequence[Sentence]) -> list[str]:
    """Which sentences are neighbours for document context: those read from the same file, in file order."""
    return [s.source for s in sentences]


class WordLevelTrainer(transformers.Trainer):
    """A Trainer whose evaluation scores dev entities on words (windows reassembled), not subwords,
    whose training order depends on the seed and epoch only (:class:`~kayan.training.sampling.EpochSampler`),
    and whose batches padded past ``recompute_above`` subwords recompute their activations
    (:func:`~kayan.training.recompute.recompute_activations`).

    Args (beyond the Trainer's):
        dev: the dev sentences, scored on words at each evaluation.
        options: how the model reads words (window, stride, normalization, decoding), as kayan.json records it.
        recompute_above: batches longer than this many subwords recompute their activations.
        warmup_ratio: ``training.warmup_ratio``, turned into steps once the run's length is known.
        layer_lr_decay: ``training.layer_lr_decay``: below 1, lower layers learn slower
            (:mod:`~kayan.training.layer_rates`); 1, one rate for all.
    """

    def __init__(self, *args, dev: Sequence[Sentence], options: TaggingOptions, recompute_above: int,
                 warmup_ratio: float, layer_lr_decay: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.dev, self.options = dev, options
        self.recompute_above, self.warmup_ratio = recompute_above, warmup_ratio
        self.layer_lr_decay = layer_lr_decay
        self.eval_seconds = 0.0
        self.embedding_rows_trained: int | None = None  # set by build_trainer; None: the whole word embedding
        self.weight_average = None  # set by build_trainer with training.ema_decay (kayan.training.averaging)
        self.allowed = None  # set by use_label_sets where a training corpus misses types

    def use_label_sets(self, allowed) -> None:
        """Train with label sets (:mod:`kayan.training.partial_labels`): ``allowed[id]`` holds the labels id allows."""
        self.allowed = allowed
        self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it over accumulated batches

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.allowed is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        features = {key: value for key, value in inputs.items() if key != "labels"}
        outputs = model(**features)
        loss = partial_labels.partial_cross_entropy(outputs.logits, inputs["labels"], self.allowed)
        return (loss, outputs) if return_outputs else loss

    def summary_notes(self) -> dict:
        """What a variant of training adds to summary.json (a subclass's own keys; none here)."""
        return {}

    def tag(self, sentences: Sequence[Sentence]) -> list[list[str]]:
        """The model's tags for every word of ``sentences``: the inference path (:func:`kayan.model.tagging.tag_words`)."""
        predicted, _ = tag_words(self.model, self.processing_class, [s.words for s in sentences], self.options,
                                 documents=documents(sentences))
        return predicted

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        lengths = [len(ids) for ids in dataset["input_ids"]]  # one column read, not a decode of every row
        return EpochSampler(lengths, batch, self.args.seed, self.args.train_sampling_strategy == "group_by_length")

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        # transformers 5 reads a warmup_steps below 1 as a ratio but 1.0 as one step: give it the steps
        if self.lr_scheduler is None:
            self.args.warmup_steps = warmup_steps(self.warmup_ratio, num_training_steps)
        return super().create_scheduler(num_training_steps, optimizer)

    def create_optimizer(self, model=None):
        created = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if created and self.layer_lr_decay < 1:  # the Trainer's groups (weight decay on/off), split by layer depth
            model = self.model if model is None else model
            groups = layer_rates.split_groups(optimizer.param_groups, layer_rates.named_ids(model.named_parameters()),
                                              model.config.num_hidden_layers, self.layer_lr_decay, self.args.learning_rate)
            optimizer.param_groups.clear()
            for group in groups:
                optimizer.add_param_group(group)
        return optimizer

    def training_step(self, model, inputs, num_items_in_batch=None):
        recompute_activations(self.model, inputs["input_ids"].shape[-1] > self.recompute_above)
        return super().training_step(model, inputs, num_items_in_batch)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        started = time.perf_counter()
        average, gold = self.weight_average, [list(s.tags) for s in self.dev]
        with average.swapped_in(self.model) if average is not None else contextlib.nullcontext():  # selection scores the average
            predicted = self.tag(self.dev)
        default, strict = score(gold, predicted), score(gold, predicted, mode="strict")
        scores = {"f1": default["micro"]["f1"], "precision": default["micro"]["precision"],
                  "recall": default["micro"]["recall"], "f1_strict": strict["micro"]["f1"]}
        metrics = {f"{metric_key_prefix}_{name}": scores[name] for name in DEV_SCORES}
        if average is not None:  # the weights themselves, for comparison only
            metrics[f"{metric_key_prefix}_{UNAVERAGED}"] = score(gold, self.tag(self.dev))["micro"]["f1"]
        self.eval_seconds += time.perf_counter() - started
        self.log(metrics)  # into log_history, which metrics.jsonl is written from (kayan.training.callbacks)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
