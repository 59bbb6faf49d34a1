"""Fine-tuning on transformers' Trainer: one config in, one run folder out (:func:`train`).

The Trainer (not a home-made loop) means ``accelerate launch`` and ``torchrun`` run the same code
on several GPUs or nodes. Kayan adds what the plain recipe lacks: windows instead of truncation,
dev-F1 model selection with early stopping on words (not subwords), a metrics.jsonl log, resume,
refit on train + dev, and test scoring of every word at the end.

It writes the run folder ``output.dir/output.run_name`` (its layout: :mod:`kayan.run`) as a
transaction (:mod:`kayan.training.transaction`): config.yaml, metrics.jsonl, checkpoints/, model/, test
scores of every word (seqeval default and strict IOB2) and summary.json. Each step is a module of its
own: :mod:`~kayan.training.build` (model, windows, Trainer), :mod:`~kayan.training.arguments`,
:mod:`~kayan.training.model_files`, :mod:`~kayan.training.results`, :mod:`~kayan.training.refit`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch

from kayan import atomic, console
from kayan.config import Config, check_run_name, save_config
from kayan.data.arabic import check_normalization
from kayan.data.rundata import RunData, load_run_data
from kayan.run import RunFolder
from kayan.training import progress
from kayan.training.arguments import training_arguments
from kayan.training.build import build_trainer
from kayan.training.callbacks import OnEvaluate
from kayan.training.distributed import wait_for_every_rank
from kayan.training.embedding_rows import restore_full_embedding
from kayan.training.interrupt import sigint_kept, stop_if_interrupted
from kayan.training.model_files import save_model
from kayan.training.refit import refit_phase, selected_epochs
from kayan.training.results import finish, padding_fraction, summary, write_test_scores
from kayan.training.transaction import OutputFolderTransaction, full_disk_stops_cleanly


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
    with sigint_kept():
        try:
            result = _train(config, RunFolder(run_dir), resume=resume, overwrite=overwrite, on_evaluate=on_evaluate, test=test)
        finally:
            console.log_to(None)
    wait_for_every_rank()  # under torchrun: until rank 0 has written the run folder
    return result


def _train(config: Config, run: RunFolder, *, resume: bool, overwrite: bool, on_evaluate, test: bool) -> dict:
    """:func:`train`, top to bottom: check, load the data, train with dev selection, write the model and its
    scores, refit if asked. The libraries' log lines go to the run's train.log once the folder exists."""
    started = time.perf_counter()
    check_normalization(config.data.normalization)
    transaction = OutputFolderTransaction(run.path, resume=resume, overwrite=overwrite)
    checkpoint = transaction.check(config.to_dict())  # changes nothing on disk
    data = load_run_data(config.data, test=test)  # every data error surfaces before a model loads
    refit = config.training.refit
    selection = run.selection() if resume and refit else None
    if selection is not None:  # selection finished: resume the refit
        console.log_to(run.train_log)
        return finish(run, refit_phase(config, data, run, selection, resume=True, started=time.perf_counter()))
    trainer, result, padding = _train_with_selection(config, data, run, transaction, checkpoint, on_evaluate)
    if not trainer.is_world_process_zero():  # other ranks write nothing, but train the refit model too
        selection = {"selected_epochs": selected_epochs(trainer)}
        del trainer
        return refit_phase(config, data, run, selection, resume=False, started=started) if refit else {}
    restore_full_embedding(trainer.model)
    save_model(config, data, trainer, run.selected_model if refit else run.model)
    report = write_test_scores(run, trainer, data, dev_selected=refit)
    selection = summary(trainer, result, report, run_dir=run.path, data=data, padding=padding,
                        group_by_length=config.training.group_by_length, started=started,
                        precision_asked=config.training.precision)
    if not refit:
        return finish(run, selection)
    selection["selected_epochs"] = round(selected_epochs(trainer), 4)
    atomic.write_text(run.selection_file, json.dumps(selection, ensure_ascii=False, indent=2))
    del trainer  # free the first model before the second is built
    return finish(run, refit_phase(config, data, run, selection, resume=False, started=time.perf_counter()))


def _train_with_selection(config: Config, data: RunData, run: RunFolder, transaction: OutputFolderTransaction,
                          checkpoint: str | None, on_evaluate):
    """Open the run folder and train with dev evaluation; returns (trainer, train result, padding fraction).

    Until training writes a checkpoint, a failure (Ctrl-C too) restores the folder as it was
    (:mod:`kayan.training.transaction`); a Ctrl-C stop that saved one ends the command after it.
    """
    args = training_arguments(config, run.checkpoint_folder(), use_cpu=not torch.cuda.is_available())
    try:
        with args.main_process_first(desc="run folder"):  # under torchrun, only rank 0 writes the folder
            if args.process_index == 0:
                transaction.open(lambda path: save_config(config, path))
                console.log_to(run.train_log)
        trainer, interrupt = build_trainer(config, data, args, run.metrics_file)
        if on_evaluate is not None:
            trainer.add_callback(OnEvaluate(on_evaluate))
        progress.install(trainer)
        padding = padding_fraction(trainer)
        with full_disk_stops_cleanly(run.checkpoint_folder(), checkpoint):
            result = trainer.train(resume_from_checkpoint=checkpoint)
    except BaseException:
        transaction.fail()
        raise
    transaction.commit()
    stop_if_interrupted(interrupt, trainer, run.checkpoint_folder())
    return trainer, result, padding

