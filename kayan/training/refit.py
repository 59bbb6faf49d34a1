"""Refit: after dev selection, train again from the base model on train + dev for the selected epochs.

ANERcorp ships no dev split: the carved one is 10% of the training sentences, the ones the final model
would otherwise never see. Dev selection has chosen the settings and the epochs; the refit model learns
from every training sentence and becomes the run's model/ (the dev-selected one stays in model-dev-selected/).
"""

from __future__ import annotations

import copy
import time

import torch

from kayan import console
from kayan.config import Config
from kayan.data.rundata import RunData, Split
from kayan.run import RunFolder
from kayan.training import progress
from kayan.training.arguments import training_arguments
from kayan.training.build import build_trainer
from kayan.training.embedding_rows import restore_full_embedding
from kayan.training.interrupt import stop_if_interrupted
from kayan.training.model_files import save_model
from kayan.training.results import peak_memory_mb, scores_on_test, write_test_scores
from kayan.training.transaction import full_disk_stops_cleanly


def selected_epochs(trainer) -> float:
    """How many epochs the dev-selected model trained (all of them when selection is off)."""
    state = trainer.state
    best = state.best_global_step if trainer.args.load_best_model_at_end else None
    if not best or not state.global_step:
        return float(state.epoch or 0)
    return best * float(state.epoch) / state.global_step


def train_and_dev(config: Config, data: RunData) -> RunData:
    """The run's data with dev joined to train (in file order where dev was spread between the training sentences)."""
    combined = data.train.sentences + data.dev.sentences
    if config.data.dev_split == "spread":  # put the dev pieces back between their neighbours (document context)
        combined = sorted(combined, key=lambda s: (s.source, s.line))
    both = Split("train", data.train.refs + data.dev.refs, combined,
                 {**data.train.files, **data.dev.files}, data.train.notes + data.dev.notes,
                 unannotated={**data.train.unannotated, **data.dev.unannotated})
    return RunData(both, data.dev, data.test)


def _refit(config: Config, data: RunData, run: RunFolder, epochs: float, *, resume: bool):
    """Train on train + dev for ``epochs``, without evaluation; returns (trainer, result, the data it trained on)."""
    refit = copy.deepcopy(config)
    t = refit.training
    t.epochs, t.max_steps, t.select_best, t.early_stopping_patience, t.eval_steps = epochs, -1, False, 0, 0
    refit_data = train_and_dev(config, data)
    args = training_arguments(refit, run.checkpoint_folder(refit=True), use_cpu=not torch.cuda.is_available(), evaluate=False)
    trainer, interrupt = build_trainer(refit, refit_data, args, run.metrics_file)
    progress.install(trainer, "refit")
    console.info(f"refit: training again on train + dev ({len(refit_data.train.sentences)} sentences) for {epochs:.2f} epochs")
    resumed_from = run.last_checkpoint(refit=True) if resume else None
    with full_disk_stops_cleanly(run.checkpoint_folder(refit=True), resumed_from):
        result = trainer.train(resume_from_checkpoint=resumed_from)
    stop_if_interrupted(interrupt, trainer, run.checkpoint_folder(refit=True))
    restore_full_embedding(trainer.model)
    return trainer, result, refit_data


def refit_phase(config: Config, data: RunData, run: RunFolder, selected: dict, *, resume: bool, started: float) -> dict:
    """The refit model becomes model/; the summary reports both models' test scores (selection's in ``selected``)."""
    trainer, result, refit_data = _refit(config, data, run, selected["selected_epochs"], resume=resume)
    if not trainer.is_world_process_zero():
        return {}
    save_model(config, refit_data, trainer, run.model)
    report = write_test_scores(run, trainer, refit_data)
    summary = dict(selected)
    summary.update({
        "model": "refit", "refit_steps": trainer.state.global_step, "refit_train_sentences": len(refit_data.train.sentences),
        "test_f1_dev_selected": selected["test_f1"], "test_f1_strict_dev_selected": selected["test_f1_strict"],
        **scores_on_test(report),
        "refit_train_seconds": round(result.metrics["train_runtime"], 2),
        "wall_seconds": round(time.perf_counter() - started + selected.get("wall_seconds", 0), 2),
        "peak_memory_mb": peak_memory_mb(),
    })
    return summary
