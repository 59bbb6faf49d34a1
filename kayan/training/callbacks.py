"""What a run hears after each dev evaluation: metrics.jsonl, and a caller's hook (tuning's pruning)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import transformers

from kayan import atomic
from kayan.training.word_trainer import DEV_SCORES


def metrics_lines(log_history: list[dict]) -> list[dict]:
    """metrics.jsonl's lines from the Trainer's ``log_history``: per dev evaluation, its step, epoch, the
    training loss logged last before it, and the dev scores (``eval_f1`` → ``dev_f1``).

    >>> metrics_lines([{"loss": 2.5, "step": 5}, {"epoch": 1.0, "eval_f1": 0.5, "eval_f1_strict": 0.4,
    ...                 "eval_precision": 0.6, "eval_recall": 0.5, "step": 10}, {"loss": 1.5, "step": 15}])
    [{'step': 10, 'epoch': 1.0, 'train_loss': 2.5, 'dev_f1': 0.5, 'dev_precision': 0.6, 'dev_recall': 0.5, 'dev_f1_strict': 0.4}]
    """
    scores = [f"eval_{name}" for name in DEV_SCORES]
    lines, loss = [], None
    for entry in log_history:
        if "loss" in entry:
            loss = entry["loss"]
        if "eval_f1" in entry:
            line = {"step": entry["step"], "epoch": round(entry.get("epoch") or 0, 4), "train_loss": loss}
            # the scores in the order logged: a checkpoint's trainer_state.json stores log_history's keys sorted
            keys = [k for k in scores if k in entry] + [k for k in entry if k not in scores and k != "step"]
            line.update({k.replace("eval_", "dev_"): entry[k] for k in keys})
            lines.append(line)
    return lines


class MetricsLog(transformers.TrainerCallback):
    """metrics.jsonl, written again from the Trainer's log_history at each evaluation (main process only).

    Derived rather than appended: log_history is what a checkpoint restores on resume, so a resumed run's
    file holds exactly the evaluations up to its checkpoint (those a crashed run logged after it go when
    training starts again) and then its own; each write is atomic, so a crash never leaves half a line.
    """

    def __init__(self, path: Path):
        self.path = path

    def _write(self, state) -> None:
        if state.is_world_process_zero:
            atomic.write_text(self.path, "".join(json.dumps(line) + "\n" for line in metrics_lines(state.log_history)))

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step and args.eval_strategy != "no":  # resumed: the checkpoint's evaluations only
            self._write(state)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._write(state)


class OnEvaluate(transformers.TrainerCallback):
    """Hand each dev evaluation (step, epoch, dev_f1, ...) to a caller's hook; a true answer stops training
    as early stopping does (kayan.training.tuning prunes lagging trials this way: the run folder still ends complete)."""

    def __init__(self, hook: Callable[[dict], bool]):
        self.hook = hook

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        line = {"step": state.global_step, "epoch": state.epoch or 0.0}
        line.update({k.replace("eval_", "dev_"): v for k, v in (metrics or {}).items()})
        if self.hook(line):
            control.should_training_stop = True
