"""The config's training section as transformers' TrainingArguments."""

from __future__ import annotations

from pathlib import Path

import transformers

from kayan.config import Config
from kayan.model.backends import resolve_precision
from kayan.training.embedding_rows import used_rows_only


def training_arguments(config: Config, checkpoints: Path, use_cpu: bool, *,
                       evaluate: bool = True) -> transformers.TrainingArguments:
    """TrainingArguments from the config's training section (``evaluate=False``: no dev evaluation, a checkpoint per epoch)."""
    t = config.training
    strategy = "steps" if t.eval_steps else "epoch"
    precision = "fp16" if t.precision == "fp16" else resolve_precision(t.precision, "cpu" if use_cpu else "cuda")
    return transformers.TrainingArguments(
        output_dir=str(checkpoints),
        learning_rate=t.learning_rate, lr_scheduler_type=t.scheduler,  # warmup: WordLevelTrainer.create_scheduler
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
        ddp_broadcast_buffers=False if used_rows_only(t) else None,
    )
