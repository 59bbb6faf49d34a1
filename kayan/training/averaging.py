"""Averaged weights (``training.ema_decay``, off by default): an exponential moving average (EMA) of the
weights, which dev selection scores and the run keeps as its model.

After optimizer step ``n`` (1, 2, ...) the average ``A`` of every trained parameter moves toward the weights ``W``::

    A ← d·A + (1 − d)·W,    d = min(ema_decay, (1 + n) / (10 + n))

from the weights training starts from. The warm-up of ``d`` (TensorFlow's ExponentialMovingAverage with
``num_updates``) keeps a fine-tuning run's first weights, a random classifier among them, from lingering: at
0.999 without it they would still hold 26% of the average after ANERcorp's 1,350 steps.

An EMA rather than the mean of the last k checkpoints: it is one set of tensors, saved in every checkpoint
(:data:`AVERAGE_FILE`), so ``--resume`` continues it exactly and best-model selection finds the average of
the evaluation it selected, whichever checkpoints ``save_total_limit`` deleted; refit (no evaluations)
averages the same way. Each dev evaluation scores the average (``dev_f1``, what selection reads) and,
for comparison, the weights themselves (``dev_f1_unaveraged`` in metrics.jsonl); test is scored once, on
the average.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
import transformers
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from kayan.errors import KayanError

AVERAGE_FILE = "weight_average.safetensors"  # in each checkpoint folder beside the model's weights
UNAVERAGED = "f1_unaveraged"  # the weights' own dev F1, logged beside the average's at each evaluation


def decay_at(decay: float, step: int) -> float:
    """The average's decay after optimizer step ``step`` (1 for the first), warmed up from 2/11.

    >>> decay_at(0.999, 1), decay_at(0.999, 90), decay_at(0.999, 100_000)
    (0.18181818181818182, 0.91, 0.999)
    """
    return min(decay, (1 + step) / (10 + step))


def trained_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The parameters the optimizer moves, by name; the frozen ones equal their own average."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


class WeightAverage(transformers.TrainerCallback):
    """The EMA of a training run's weights (see the module docstring): updated after each optimizer step,
    written into each checkpoint, read back on resume; at the end of training it becomes the model.

    Args:
        decay: ``training.ema_decay``, from 0 (exclusive) to 1 (exclusive).
    """

    def __init__(self, decay: float):
        self.decay = decay
        self.average: dict[str, torch.Tensor] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step:  # resumed: the average the checkpoint saved, not the checkpoint's weights
            self.load(checkpoint_folder(args, state.global_step), model)
        else:
            self.average = {name: p.detach().clone() for name, p in trained_parameters(model).items()}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        weight = 1.0 - decay_at(self.decay, state.global_step)
        with torch.no_grad():
            for name, p in trained_parameters(model).items():
                self.average[name].lerp_(p.detach(), weight)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.save(checkpoint_folder(args, state.global_step))

    def on_train_end(self, args, state, control, model=None, **kwargs):
        # the model becomes the average: the selected evaluation's when the Trainer loaded the best checkpoint
        best = Path(state.best_model_checkpoint) if args.load_best_model_at_end and state.best_model_checkpoint else None
        if best is not None and best.name != checkpoint_folder(args, state.global_step).name:
            self.load(best, model)
        _assign(trained_parameters(model), self.average)

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module):
        """The average in ``model``'s parameters for the block (a dev evaluation), the trained weights back after."""
        params = trained_parameters(model)
        kept = {name: p.detach().clone() for name, p in params.items()}
        _assign(params, self.average)
        try:
            yield
        finally:
            _assign(params, kept)

    def save(self, folder: Path) -> None:
        """Write the average into a checkpoint folder, atomically (a cut-off write leaves no file)."""
        from safetensors.torch import save_file

        path = Path(folder) / AVERAGE_FILE
        tmp = path.with_name(f".{AVERAGE_FILE}.{os.getpid()}.tmp")
        save_file({name: tensor.contiguous() for name, tensor in self.average.items()}, str(tmp))
        os.replace(tmp, path)

    def load(self, folder: Path, model: torch.nn.Module) -> None:
        """Read the average a checkpoint folder holds, for ``model``'s trained parameters."""
        from safetensors.torch import load_file

        path, params = Path(folder) / AVERAGE_FILE, trained_parameters(model)
        if not path.is_file():
            raise KayanError(f"{folder}: no {AVERAGE_FILE}, so its weight average is lost (the run was trained without "
                             "training.ema_decay); resume with training.ema_decay=0, or start again with --overwrite")
        loaded = load_file(str(path))
        if set(loaded) != set(params):
            raise KayanError(f"{path}: its tensors are not this model's trained parameters; start again with --overwrite")
        self.average = {name: loaded[name].to(device=p.device, dtype=p.dtype) for name, p in params.items()}


def _assign(params: dict[str, torch.nn.Parameter], values: dict[str, torch.Tensor]) -> None:
    """Copy ``values`` into the parameters of the same names, in place."""
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(values[name])


def checkpoint_folder(args: transformers.TrainingArguments, step: int) -> Path:
    """The Trainer's checkpoint folder of ``step`` (where it saves, and what it resumes from)."""
    return Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{step}"


def average_notes(log_history: list[dict], best_step: int | None, decay: float) -> dict:
    """summary.json's ``weight_average``: the decay, and the unaveraged weights' dev F1 at the selected
    evaluation (``best_step``; None: the last one) and at their own best, to set beside ``best_dev_f1``.

    >>> average_notes([{"eval_f1_unaveraged": 0.5, "step": 4}, {"eval_f1_unaveraged": 0.7, "step": 8}], 4, 0.99)
    {'ema_decay': 0.99, 'dev_f1_unaveraged': 0.5, 'best_dev_f1_unaveraged': 0.7}
    """
    scores = {entry["step"]: entry[f"eval_{UNAVERAGED}"] for entry in log_history if f"eval_{UNAVERAGED}" in entry}
    selected = scores.get(best_step) if best_step else (list(scores.values())[-1] if scores else None)
    return {"ema_decay": decay, "dev_f1_unaveraged": selected,
            "best_dev_f1_unaveraged": max(scores.values()) if scores else None}


def summary_notes(trainer) -> dict:
    """What averaging adds to summary.json (nothing when it is off): ``weight_average``, :func:`average_notes`."""
    average = trainer.weight_average
    if average is None:
        return {}
    best = trainer.state.best_global_step if trainer.args.load_best_model_at_end else None
    return {"weight_average": average_notes(trainer.state.log_history, best, average.decay)}
