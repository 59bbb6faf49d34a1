"""Stage 4, training: one config in, one run folder out (``kayan train``), and recipe search on dev.

Modules (each starts with a docstring saying what it holds):
    :mod:`~kayan.training.trainer`         :func:`train`: one config in, one run folder out, read top to bottom.
    :mod:`~kayan.training.build`           the model, the training windows and the Trainer of a run.
    :mod:`~kayan.training.word_trainer`    :class:`WordLevelTrainer`: transformers' Trainer scoring dev on words.
    :mod:`~kayan.training.sampling`        the training order, drawn from (seed, epoch), grouped by length.
    :mod:`~kayan.training.recompute`       activation recomputation for long batches.
    :mod:`~kayan.training.averaging`       ``training.ema_decay``: an average of the weights that dev scores and the run keeps.
    :mod:`~kayan.training.layer_rates`     ``training.layer_lr_decay``: lower layers learn at a decayed rate.
    :mod:`~kayan.training.arguments`       the config's training section as TrainingArguments.
    :mod:`~kayan.training.callbacks`       metrics.jsonl (from the Trainer's log_history) and a caller's hook.
    :mod:`~kayan.training.interrupt`       Ctrl-C: stop at the next logging step with a checkpoint.
    :mod:`~kayan.training.model_files`     the trained model's files and kayan.json.
    :mod:`~kayan.training.results`         test scores, summary.json, curves.png.
    :mod:`~kayan.training.refit`           refit on train + dev for the selected epochs.
    :mod:`~kayan.training.seeds`           :func:`train_seeds`: one run per seed, their mean and spread.
    :mod:`~kayan.training.distributed`     barriers between ranks (accelerate).
    :mod:`~kayan.training.tuning`          :func:`tune` (``kayan tune``): settings searched on dev with
        Optuna, each trial a run folder.
    :mod:`~kayan.training.transaction`     an output folder written as a transaction
        (:class:`OutputFolderTransaction`): a run that fails changes nothing that was there.
    :mod:`~kayan.training.progress`        a training run's progress bar and evaluation lines.
    :mod:`~kayan.training.embedding_rows`  train only the word-embedding rows the data uses.
    :mod:`~kayan.training.distill`         the ``distill`` section (``kayan distill``): a student learns a
        teacher's (or an ensemble's) soft word-level targets.

The run folder's layout, and reading it, are :mod:`kayan.run`'s; the config is :mod:`kayan.config`'s.
The names below are imported from their modules on first use (:mod:`kayan.lazy`).
"""

from kayan.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "trainer": ["train"],
    "seeds": ["train_seeds"],
    "tuning": ["trials_markdown", "tune"],
    "transaction": ["OutputFolderTransaction"],
})
