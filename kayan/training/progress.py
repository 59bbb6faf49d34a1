"""The console of a training run: one progress bar and one aligned line per dev evaluation.

Replaces the Trainer's own bar and its raw log dicts (``{'eval_f1': '0.1782', ...}``), which go
to the run folder's train.log instead (see :mod:`kayan.console`).
"""

from __future__ import annotations

import json
import sys

import transformers
from tqdm import tqdm

from kayan import console


def evaluation_line(*, epoch: float, step: int, loss: float | None, precision: float, recall: float, f1: float,
                    best: bool) -> str:
    """One aligned line per dev evaluation.

    >>> evaluation_line(epoch=2, step=448, loss=0.12345, precision=0.61, recall=0.59, f1=0.6, best=True)
    'epoch  2.00  step    448  loss 0.1235  dev P 0.6100  R 0.5900  F1 0.6000  best'
    """
    shown = "     -" if loss is None else f"{loss:.4f}"
    line = f"epoch {epoch:5.2f}  step {step:>6}  loss {shown}  dev P {precision:.4f}  R {recall:.4f}  F1 {f1:.4f}"
    return line + ("  best" if best else "")


class TrainingProgress(transformers.TrainerCallback):
    """Progress bar (step, loss, last dev F1, elapsed < remaining) and evaluation lines, on the main process."""

    def __init__(self, title: str = "train"):
        self.title, self.bar, self.loss, self.best, self.dev_f1 = title, None, None, None, None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and console.level() != "quiet":
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.title, unit="step",
                            file=sys.stderr, dynamic_ncols=True, leave=False)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        console.keep(json.dumps({"step": state.global_step, **logs}), "kayan.train")
        if "loss" in logs:
            self.loss = float(logs["loss"])
        self._postfix()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero or not metrics or "eval_f1" not in metrics:
            return
        f1 = metrics["eval_f1"]
        improved = self.best is None or f1 > self.best
        self.best = f1 if improved else self.best
        self.dev_f1 = f1
        console.info(evaluation_line(epoch=state.epoch or 0, step=state.global_step, loss=self.loss,
                                     precision=metrics["eval_precision"], recall=metrics["eval_recall"], f1=f1,
                                     best=improved))
        self._postfix()

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _postfix(self) -> None:
        if self.bar is None:
            return
        parts = [] if self.loss is None else [f"loss {self.loss:.4f}"]
        if self.dev_f1 is not None:
            parts.append(f"dev F1 {self.dev_f1:.4f}")
        self.bar.set_postfix_str("  ".join(parts), refresh=False)


def install(trainer: transformers.Trainer, title: str = "train") -> None:
    """Put Kayan's console on ``trainer`` (unless --verbose, which keeps the Trainer's own output)."""
    if console.level() == "verbose":
        return
    for own in (transformers.trainer_callback.ProgressCallback, transformers.trainer_callback.PrinterCallback):
        trainer.remove_callback(own)
    trainer.add_callback(TrainingProgress(title))
