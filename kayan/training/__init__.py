"""Stage 4, training: one config in, one run folder out (``kayan train``), and recipe search on dev.

Modules (each starts with a docstring saying what it holds):
    :mod:`~kayan.training.trainer`         :func:`train` and :func:`train_seeds`: transformers' Trainer
        with windows instead of truncation, dev-F1 selection, refit, resume and test scoring.
    :mod:`~kayan.training.tuning`          :func:`tune` (``kayan tune``): settings searched on dev with
        Optuna, each trial a run folder.
    :mod:`~kayan.training.runfolder`       the run folder written as a transaction
        (:class:`RunTransaction`): a run that fails changes nothing that was there.
    :mod:`~kayan.training.progress`        a training run's progress bar and evaluation lines.
    :mod:`~kayan.training.embedding_rows`  train only the word-embedding rows the data uses.
    :mod:`~kayan.training.distill`         the ``distill`` section (``kayan distill``): a student learns a
        teacher's (or an ensemble's) soft word-level targets.

The run folder's layout, and reading it, are :mod:`kayan.run`'s; the config is :mod:`kayan.config`'s.
The names below are imported from their modules on first use (:mod:`kayan.lazy`).
"""

from kayan.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "trainer": ["train", "train_seeds"],
    "tuning": ["trials_markdown", "tune"],
    "runfolder": ["RunTransaction"],
})
