"""Fine-tuning on transformers' Trainer: one config in, one run folder out.

The Trainer (not a home-made loop) means ``accelerate launch`` and ``torchrun`` run the same code
on several GPUs or nodes. Kayan adds what the plain recipe lacks: windows instead of truncation,
dev-F1 model selection with early stopping on words (not subwords), a metrics.jsonl log, resume,
and test scoring of every word at the end.

It writes the run folder ``output.dir/output.run_name`` (its layout: :mod:`kayan.run`) as a
transaction (:mod:`kayan.training.runfolder`): config.yaml, metrics.jsonl, checkpoints/, model/, test
scores of every word (seqeval default and strict IOB2) and summary.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import platform
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import transformers

from kayan import __version__, atomic, console
from kayan.config import Config, check_run_name, save_config
from kayan.data.arabic import check_normalization
from kayan.data.rundata import RunData, Split, load_run_data
from kayan.data.schemes import label_list
from kayan.data.sentence import Sentence
from kayan.evaluation.curves import write_curves
from kayan.evaluation.metrics import score
from kayan.evaluation.predictions_file import predictions_text
from kayan.evaluation.scoring import evaluate
from kayan.files import sha256_of
from kayan.model.backends import resolve_precision
from kayan.model.hffeatures import window_dataset
from kayan.model import settings
from kayan.model.modeling import build_model
from kayan.model.settings import ModelSettings
from kayan.model.tagging import TaggingOptions, normalized, tag_words
from kayan.run import RunFolder
from kayan.training import progress
from kayan.training.embedding_rows import restore_full_embedding, train_used_rows
from kayan.training.runfolder import RunTransaction


def length_grouped_order(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[int]:
    """A shuffled order in which neighbouring batches hold windows of similar length.

    Shuffle, cut into mega-batches of 50 batches, sort each by length (longest first): batches pad
    little, yet their order and content still change every epoch.

    >>> order = length_grouped_order([1, 9, 2, 8], 2, torch.Generator().manual_seed(0))
    >>> sorted(order)
    [0, 1, 2, 3]
    """
    shuffled = torch.randperm(len(lengths), generator=generator).tolist()
    size = 50 * batch_size
    mega = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
    return [index for chunk in mega for index in sorted(chunk, key=lambda i: -lengths[i])]


class _EpochSampler(torch.utils.data.Sampler):
    """Training order drawn from (seed, epoch) alone, never from the global RNG.

    So a run resumed in the middle of an epoch replays exactly the batches the interrupted run
    would have seen (the Trainer skips the ones already done), and the final scores match.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool):
        self.lengths, self.batch_size, self.seed, self.group = list(lengths), batch_size, seed, group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        if self.group:
            return iter(length_grouped_order(self.lengths, self.batch_size, generator))
        return iter(torch.randperm(len(self.lengths), generator=generator).tolist())


def recompute_activations(model, on: bool) -> None:
    """Make the model's layers recompute their activations in the backward pass (``on``) or hold them.

    Recomputing gives the same gradients to the bit: the replay runs the same kernels on the same
    inputs and draws dropout's random numbers again from the saved generator state. Only each
    layer's input is held, not its attention scores, which grow with the square of the length
    (multilingual-e5-small, 16 windows of 256 subwords: 3.1 GB of activations held, most of the
    peak memory). A model that cannot recompute keeps its activations.
    """
    if not getattr(model, "supports_gradient_checkpointing", False) or on == model.is_activation_checkpointing:
        return
    if on:
        model.activation_checkpointing_enable({"use_reentrant": False})
        model.disable_input_require_grads()  # its hook serves frozen embeddings (adapters); Kayan's are trained
    else:
        model.activation_checkpointing_disable()


def warmup_steps(ratio: float, total_steps: int) -> int:
    """The optimizer steps of the learning-rate warmup: ``training.warmup_ratio`` of the run's steps, rounded up.

    >>> warmup_steps(1.0, 40), warmup_steps(0.1, 45), warmup_steps(0.0, 40)
    (40, 5, 0)
    """
    return math.ceil(ratio * total_steps)


class _WordLevelTrainer(transformers.Trainer):
    """A Trainer whose evaluation scores dev entities on words (windows reassembled), not subwords,
    whose training order depends on the seed and epoch only (see :class:`_EpochSampler`), and whose
    batches padded past ``recompute_above`` subwords recompute their activations (:func:`recompute_activations`)."""

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        lengths = [len(ids) for ids in dataset["input_ids"]]  # one column read, not a decode of every row
        return _EpochSampler(lengths, batch, self.args.seed,
                             self.args.train_sampling_strategy == "group_by_length")

    def __init__(self, *args, dev_words, dev_gold, dev_documents, options: TaggingOptions, recompute_above: int,
                 warmup_ratio: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.dev_words, self.dev_gold, self.dev_documents, self.options = dev_words, dev_gold, dev_documents, options
        self.recompute_above, self.warmup_ratio = recompute_above, warmup_ratio
        self.eval_seconds = 0.0

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        # transformers 5 reads a warmup_steps below 1 as a ratio but 1.0 as one step: give it the steps
        if self.lr_scheduler is None:
            self.args.warmup_steps = warmup_steps(self.warmup_ratio, num_training_steps)
        return super().create_scheduler(num_training_steps, optimizer)

    def training_step(self, model, inputs, num_items_in_batch=None):
        recompute_activations(self.model, inputs["input_ids"].shape[-1] > self.recompute_above)
        return super().training_step(model, inputs, num_items_in_batch)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        started = time.perf_counter()
        predicted, _ = tag_words(self.model, self.processing_class, self.dev_words, self.options,
                                 documents=self.dev_documents)
        default, strict = score(self.dev_gold, predicted), score(self.dev_gold, predicted, mode="strict")
        metrics = {
            f"{metric_key_prefix}_f1": default["micro"]["f1"],
            f"{metric_key_prefix}_precision": default["micro"]["precision"],
            f"{metric_key_prefix}_recall": default["micro"]["recall"],
            f"{metric_key_prefix}_f1_strict": strict["micro"]["f1"],
        }
        self.eval_seconds += time.perf_counter() - started
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


class _MetricsLog(transformers.TrainerCallback):
    """Append one JSON line per evaluation to metrics.jsonl (main process only)."""

    def __init__(self, path: Path):
        self.path = path
        self.last_loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        # On resume the Trainer restores log_history from the checkpoint: take the loss logged last.
        self.last_loss = next((entry["loss"] for entry in reversed(state.log_history) if "loss" in entry), None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_loss = logs["loss"]

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero:
            return
        line = {"step": state.global_step, "epoch": round(state.epoch or 0, 4), "train_loss": self.last_loss}
        line.update({k.replace("eval_", "dev_"): v for k, v in (metrics or {}).items()})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


class _OnEvaluate(transformers.TrainerCallback):
    """Hand each dev evaluation (step, epoch, dev_f1, ...) to a caller's hook; a true answer stops training
    as early stopping does (kayan.training.tuning prunes lagging trials this way: the run folder still ends complete)."""

    def __init__(self, hook: Callable[[dict], bool]):
        self.hook = hook

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        line = {"step": state.global_step, "epoch": state.epoch or 0.0}
        line.update({k.replace("eval_", "dev_"): v for k, v in (metrics or {}).items()})
        if self.hook(line):
            control.should_training_stop = True


class _StopOnInterrupt(transformers.TrainerCallback):
    """Ctrl-C (SIGINT) ends training at the next logging step, with a checkpoint to resume from.

    The next logging step, not the next step: the Trainer averages the loss it logs over the steps
    since the last log and starts that average afresh on resume, so a stop between two logs would
    change the resumed run's logged loss (metrics.jsonl). A second Ctrl-C stops at once, as Python
    normally does.
    """

    def __init__(self):
        self.requested = self.stopped = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        print("\nkayan: stopping at the next logging step and saving a checkpoint (Ctrl-C again to quit now)", file=sys.stderr)

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested and (state.global_step % args.logging_steps == 0 or state.global_step >= state.max_steps):
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
            control.should_evaluate = False  # an unscheduled evaluation would change metrics.jsonl

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.stopped:  # the epoch was cut short: its end-of-epoch evaluation never happens
            control.should_evaluate = control.should_save = False

    def on_train_end(self, args, state, control, **kwargs):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _stop_if_interrupted(interrupt: _StopOnInterrupt, trainer, checkpoints: Path) -> None:
    """After a Ctrl-C stop: say where the checkpoint is and how to go on, then end the command (status 130)."""
    if interrupt.requested:
        print(f"kayan: interrupted at step {trainer.state.global_step}; checkpoint saved in {checkpoints}; "
              "continue with --resume", file=sys.stderr)
        raise KeyboardInterrupt


def _trim_log(path: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint we continue from."""
    if path.exists():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line)["step"] <= step]
        atomic.write_text(path, "".join(line + "\n" for line in kept))


def trains_used_rows(training) -> bool:
    """Whether to train only the used embedding rows: ``auto`` does so where it is exact (no weight decay)."""
    return training.embedding_rows == "used" or (training.embedding_rows == "auto" and training.weight_decay == 0)


def _arguments(config: Config, checkpoints: Path, use_cpu: bool, *, evaluate: bool = True) -> transformers.TrainingArguments:
    """TrainingArguments from the config's training section (``evaluate=False``: no dev evaluation, a checkpoint per epoch)."""
    t = config.training
    strategy = "steps" if t.eval_steps else "epoch"
    precision = "fp16" if t.precision == "fp16" else resolve_precision(t.precision, "cpu" if use_cpu else "cuda")
    return transformers.TrainingArguments(
        output_dir=str(checkpoints),
        learning_rate=t.learning_rate, lr_scheduler_type=t.scheduler,  # warmup: _WordLevelTrainer.create_scheduler
        weight_decay=t.weight_decay, num_train_epochs=t.epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        eval_strategy=strategy if evaluate else "no", save_strategy=strategy, eval_steps=t.eval_steps or None, save_steps=t.eval_steps or None,
        load_best_model_at_end=t.select_best and evaluate, metric_for_best_model="f1" if evaluate else None, greater_is_better=True,
        save_total_limit=t.save_total_limit, logging_steps=t.logging_steps, seed=t.seed, data_seed=t.seed,
        fp16=precision == "fp16", bf16=precision == "bf16", use_cpu=use_cpu,
        report_to="none", include_num_input_tokens_seen="non_padding", dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        # The frozen embedding rows are a 100M-float buffer, equal on every rank: never broadcast it.
        ddp_broadcast_buffers=False if trains_used_rows(t) else None,
    )


def _padding_fraction(trainer: transformers.Trainer) -> float:
    """Share of padding positions in one epoch of training batches as the sampler makes them."""
    real = total = 0
    for batch in trainer.get_train_dataloader():
        mask = batch["attention_mask"]
        real, total = real + int(mask.sum()), total + mask.numel()
    return 1 - real / total if total else 0.0


def _peak_memory_mb() -> float:
    """Peak resident memory of this process (and the GPU's peak allocation, when there is one)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if torch.cuda.is_available():
        peak += torch.cuda.max_memory_allocated() / 2**20
    return round(peak, 1)


def documents(sentences: Sequence[Sentence]) -> list[str]:
    """Which sentences are neighbours for document context: those read from the same file, in file order."""
    return [s.source for s in sentences]


def _model_settings(config: Config, data: RunData, labels: Sequence[str]) -> ModelSettings:
    """What kayan.json records beside the weights: enough to apply the model exactly as trained (the
    fields the run config fills come from it, :func:`kayan.model.settings.from_config`)."""
    return settings.from_config(
        config.to_dict(), kayan_version=__version__, labels=list(labels), scheme=settings.SCHEME,
        training_data={"train": data.train.refs, "dev": data.dev.refs, "test": data.test.refs if data.test else [],
                       "files": {**data.train.files, **data.dev.files, **(data.test.files if data.test else {})}},
        versions={"python": platform.python_version(), "torch": str(torch.__version__),
                  "transformers": transformers.__version__},
    )


def _write_test(run: RunFolder, trainer, data: RunData, options: TaggingOptions, words_of, *,
                dev_selected: bool = False) -> dict | None:
    """Score every word of the test split into the run's test_metrics and test_predictions files."""
    if data.test is None:
        return None
    gold = data.test.sentences
    predicted, _ = tag_words(trainer.model, trainer.processing_class, words_of(gold), options, documents=documents(gold))
    report = evaluate(gold, predicted)
    report["data"] = {"refs": data.test.refs, "files": data.test.files}
    atomic.write_text(run.test_metrics_file(dev_selected=dev_selected), json.dumps(report, ensure_ascii=False, indent=2))
    atomic.write_text(run.test_predictions_file(dev_selected=dev_selected), predictions_text(gold, predicted))
    return report


def _build_trainer(config: Config, data: RunData, args, run: RunFolder):
    """Labels, model, windows and the Trainer of a run; returns (trainer, interrupt watcher, options, words_of)."""
    t = config.training
    labels = label_list(s.tags for s in data.train.sentences)
    transformers.set_seed(t.seed)
    steps = tuple(config.data.normalization)
    words_of = lambda sentences: normalized([s.words for s in sentences], steps)  # noqa: E731
    train_words = words_of(data.train.sentences)
    model, tokenizer = build_model(config.model, labels=labels, train_words=(w for s in train_words for w in s), window=t.window)
    # Windows through 🤗 datasets: cached by fingerprint (a second run of the same data and tokenizer skips
    # tokenizing) and memory-mapped; the same windows as kayan.model.features.encode.
    windows = window_dataset([Sentence(tuple(w), s.tags) for s, w in zip(data.train.sentences, train_words)], tokenizer,
                             label2id={tag: i for i, tag in enumerate(labels)}, window=t.window, stride=t.stride,
                             label_all_subwords=t.label_all_subwords, context=t.context,
                             documents=documents(data.train.sentences)).select_columns(["input_ids", "attention_mask", "labels"])
    trained_rows = None
    if trains_used_rows(t):  # rows outside the training windows never get a gradient: leave them out of the optimizer
        used = {i for ids in windows["input_ids"] for i in ids} | set(tokenizer.all_special_ids)
        trained_rows = len(train_used_rows(model, used).row_ids)
    options = TaggingOptions(window=t.window, stride=t.stride, normalization=(), decoding=t.decoding,
                             batch_size=t.eval_batch_size, context=t.context)
    interrupt = _StopOnInterrupt()
    callbacks = [_MetricsLog(run.metrics_file), interrupt]
    if t.select_best and t.early_stopping_patience > 0:
        callbacks.append(transformers.EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    trainer = _WordLevelTrainer(
        model=model, args=args,
        train_dataset=windows, eval_dataset=windows.select([0]),
        data_collator=transformers.DataCollatorForTokenClassification(tokenizer), processing_class=tokenizer,
        callbacks=callbacks, dev_words=words_of(data.dev.sentences), dev_gold=[list(s.tags) for s in data.dev.sentences],
        dev_documents=documents(data.dev.sentences), options=options, recompute_above=t.recompute_above,
        warmup_ratio=t.warmup_ratio,
    )
    trainer.embedding_rows_trained = trained_rows
    return trainer, interrupt, options, words_of


def _save_model(config: Config, data: RunData, trainer, target: Path) -> None:
    """The trained model, its tokenizer and kayan.json, written atomically to ``target`` (a run's model folder)."""
    labels = [trainer.model.config.id2label[i] for i in range(len(trainer.model.config.id2label))]
    with atomic.folder(target) as folder:
        trainer.save_model(str(folder))
        digest = sha256_of(folder / "model.safetensors")  # checked on every load
        settings.write(folder, dataclasses.replace(_model_settings(config, data, labels), weights_sha256=digest))


def _summary(trainer, result, report: dict | None, *, run_dir: Path, data: RunData, padding: float,
             group_by_length: bool, started: float) -> dict:
    """summary.json: selection, scores, throughput (evaluation time excluded), padding, time and memory."""
    train_seconds = result.metrics["train_runtime"] - trainer.eval_seconds
    tokens = trainer.state.num_input_tokens_seen
    return {
        "run_dir": str(run_dir), "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_dev_f1": trainer.state.best_metric, "steps": trainer.state.global_step, "epochs": trainer.state.epoch,
        "test_f1": report["default"]["micro"]["f1"] if report else None,
        "test_f1_strict": report["strict"]["micro"]["f1"] if report else None,
        "train_tokens": tokens, "train_seconds": round(train_seconds, 2),
        "train_tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1),
        "padding_fraction": round(padding, 4), "group_by_length": group_by_length,
        "embedding_rows_trained": trainer.embedding_rows_trained,  # null: the whole word embedding was trained
        "precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",  # training.precision resolved
        "wall_seconds": round(time.perf_counter() - started, 2), "peak_memory_mb": _peak_memory_mb(),
        "data_notes": data.train.notes + data.dev.notes + (data.test.notes if data.test else []),
        "data_warnings": data.dev.warnings + (data.test.warnings if data.test else []),  # printed by kayan train
    }


def _selected_epochs(trainer) -> float:
    """How many epochs the dev-selected model trained (all of them when selection is off)."""
    state = trainer.state
    best = state.best_global_step if trainer.args.load_best_model_at_end else None
    if not best or not state.global_step:
        return float(state.epoch or 0)
    return best * float(state.epoch) / state.global_step


def _refit(config: Config, data: RunData, run: RunFolder, epochs: float, *, resume: bool):
    """Train again from the base model on train + dev for the selected number of epochs.

    ANERcorp ships no dev split: the carved one is 10% of the training sentences, the ones the
    final model would otherwise never see. Dev selection has chosen the settings and the epochs;
    the refit model learns from every training sentence. Returns (trainer, result, data, options, words_of).
    """
    import copy

    refit = copy.deepcopy(config)
    t = refit.training
    t.epochs, t.max_steps, t.select_best, t.early_stopping_patience, t.eval_steps = epochs, -1, False, 0, 0
    combined = data.train.sentences + data.dev.sentences
    if config.data.dev_split == "spread":  # put the dev pieces back between their neighbours (document context)
        combined = sorted(combined, key=lambda s: (s.source, s.line))
    both = Split("train", data.train.refs + data.dev.refs, combined,
                 {**data.train.files, **data.dev.files}, data.train.notes + data.dev.notes)
    refit_data = RunData(both, data.dev, data.test)
    args = _arguments(refit, run.checkpoint_folder(refit=True), use_cpu=not torch.cuda.is_available(), evaluate=False)
    trainer, interrupt, options, words_of = _build_trainer(refit, refit_data, args, run)
    progress.install(trainer, "refit")
    console.info(f"refit: training again on train + dev ({len(both.sentences)} sentences) for {epochs:.2f} epochs")
    checkpoint = run.last_checkpoint(refit=True) if resume else None
    result = trainer.train(resume_from_checkpoint=checkpoint)
    _stop_if_interrupted(interrupt, trainer, run.checkpoint_folder(refit=True))
    restore_full_embedding(trainer.model)
    return trainer, result, refit_data, options, words_of


def _refit_phase(config: Config, data: RunData, run: RunFolder, selected: dict, *, resume: bool, started: float) -> dict:
    """The refit model becomes model/; the summary reports both models' test scores."""
    trainer, result, refit_data, options, words_of = _refit(config, data, run, selected["selected_epochs"], resume=resume)
    if not trainer.is_world_process_zero():
        return {}
    _save_model(config, refit_data, trainer, run.model)
    report = _write_test(run, trainer, refit_data, options, words_of)
    summary = dict(selected)
    summary.update({
        "model": "refit", "refit_steps": trainer.state.global_step, "refit_train_sentences": len(refit_data.train.sentences),
        "test_f1_dev_selected": selected["test_f1"], "test_f1_strict_dev_selected": selected["test_f1_strict"],
        "test_f1": report["default"]["micro"]["f1"] if report else None,
        "test_f1_strict": report["strict"]["micro"]["f1"] if report else None,
        "refit_train_seconds": round(result.metrics["train_runtime"], 2),
        "wall_seconds": round(time.perf_counter() - started + selected.get("wall_seconds", 0), 2),
        "peak_memory_mb": _peak_memory_mb(),
    })
    return summary


def train(config: Config, *, resume: bool = False, overwrite: bool = False,
          on_evaluate: Callable[[dict], bool] | None = None, test: bool = True) -> dict:
    """Fine-tune the configured model and write its run folder; returns the summary.

    Args:
        config: the validated run config.
        resume: continue from the last checkpoint in the run folder.
        overwrite: replace an existing run folder.
        on_evaluate: called after each dev evaluation with its metrics.jsonl line; True stops training there.
        test: load and score the test split (False: the test data is never read, as in kayan.training.tuning's trials).

    The process is left as it was found: the run's train.log handler comes off the loggers and the
    Ctrl-C handler of the run goes, even when training fails. PyTorch's CPU kernels (oneDNN) cache a
    primitive for every input shape, so training memory grows with the steps unless the cache is
    bounded; ``kayan train`` bounds it (:data:`kayan.cli.ONEDNN_CACHE`), a program of its own exports
    ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=64`` before its first PyTorch operation.
    """
    check_run_name(config.output.run_name)  # a Config built in code is checked as a loaded one is
    run_dir = Path(config.output.dir) / (config.output.run_name or "run")
    with _sigint_kept():
        try:
            summary = _train(config, RunFolder(run_dir), resume=resume, overwrite=overwrite, on_evaluate=on_evaluate, test=test)
        finally:
            console.log_to(None)
    _wait_for_every_rank()
    return summary


@contextlib.contextmanager
def _sigint_kept():
    """The Ctrl-C handler as it was before the block, whatever the block (a stopped Trainer) left."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)


def _wait_for_every_rank() -> None:
    """Under torchrun, hold every rank until rank 0 has written the model and the test scores.

    Without it the other ranks return first and exit while rank 0 still holds the process group, and
    a gloo thread torn down at their exit can abort them (``terminate called without an active
    exception``, SIGABRT): torchrun then kills rank 0 in the middle of writing the run folder.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def end_distributed() -> None:
    """Close the process group that accelerate opened under torchrun, once a command is done with it."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _train(config: Config, run: RunFolder, *, resume: bool, overwrite: bool, on_evaluate, test: bool) -> dict:
    """:func:`train`, with the libraries' log lines going to the run's train.log once the folder exists."""
    started = time.perf_counter()
    check_normalization(config.data.normalization)
    folder = RunTransaction(run.path, resume=resume, overwrite=overwrite)
    checkpoint = folder.check(config.to_dict())  # changes nothing on disk
    data = load_run_data(config.data, test=test)  # every data error surfaces before a model loads
    selected = run.selection() if resume and config.training.refit else None
    if selected is not None:  # selection finished: resume the refit
        console.log_to(run.train_log)
        return _finish(run, _refit_phase(config, data, run, selected, resume=True, started=time.perf_counter()))
    args = _arguments(config, run.checkpoint_folder(), use_cpu=not torch.cuda.is_available())
    try:  # until training writes a checkpoint, a failure (Ctrl-C too) restores the folder as it was (kayan.training.runfolder)
        with args.main_process_first(desc="run folder"):  # under torchrun, only rank 0 writes the folder
            if args.process_index == 0:
                folder.open(lambda path: save_config(config, path))
                console.log_to(run.train_log)
        trainer, interrupt, options, words_of = _build_trainer(config, data, args, run)
        if on_evaluate is not None:
            trainer.add_callback(_OnEvaluate(on_evaluate))
        progress.install(trainer)
        padding = _padding_fraction(trainer)
        if resume:
            _trim_log(run.metrics_file, int(Path(checkpoint).name.split("-")[-1]))
        result = trainer.train(resume_from_checkpoint=checkpoint)
    except BaseException:
        folder.fail()
        raise
    folder.commit()
    _stop_if_interrupted(interrupt, trainer, run.checkpoint_folder())
    if not trainer.is_world_process_zero():  # other ranks write nothing, but train the refit model too
        if not config.training.refit:
            return {}
        selected = {"selected_epochs": _selected_epochs(trainer)}
        del trainer
        return _refit_phase(config, data, run, selected, resume=False, started=started)
    restore_full_embedding(trainer.model)
    refit = config.training.refit
    _save_model(config, data, trainer, run.selected_model if refit else run.model)
    report = _write_test(run, trainer, data, options, words_of, dev_selected=refit)
    summary = _summary(trainer, result, report, run_dir=run.path, data=data, padding=padding,
                       group_by_length=config.training.group_by_length, started=started)
    if not refit:
        return _finish(run, summary)
    summary["selected_epochs"] = round(_selected_epochs(trainer), 4)
    atomic.write_text(run.selection_file, json.dumps(summary, ensure_ascii=False, indent=2))
    del trainer  # free the first model before the second is built
    return _finish(run, _refit_phase(config, data, run, summary, resume=False, started=time.perf_counter()))


def _finish(run: RunFolder, summary: dict) -> dict:
    """summary.json and curves.png (main process only: the others return an empty summary)."""
    if summary:
        atomic.write_text(run.summary_file, json.dumps(summary, ensure_ascii=False, indent=2))
        write_curves(run.path)
    return summary


def train_seeds(config: Config, seeds: Sequence[int], *, resume: bool = False, overwrite: bool = False) -> dict:
    """Train one run per seed (``RUN/seed-N``) and report the mean ± std of dev and test F1."""
    import copy
    import statistics

    base = config.output.run_name or "run"
    runs = []
    for seed in seeds:
        each = copy.deepcopy(config)
        each.training.seed = seed
        each.output.dir, each.output.run_name = str(Path(config.output.dir) / base), f"seed-{seed}"  # each a run name
        runs.append(train(each, resume=resume, overwrite=overwrite))
    if not all(runs):  # under torchrun, a rank other than 0: rank 0 writes seeds.json
        return {}

    def spread(key: str) -> dict:
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            return {}
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}

    summary = {"seeds": list(seeds), "dev_f1": spread("best_dev_f1"), "test_f1": spread("test_f1"),
               "runs": [r["run_dir"] for r in runs]}
    atomic.write_text(Path(config.output.dir) / base / "seeds.json", json.dumps(summary, indent=2))
    return summary
