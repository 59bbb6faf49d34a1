"""Several seeds of one recipe (``kayan train --seeds``): one run each, and the spread of their scores;
:func:`run_training`, what ``kayan train`` runs (one run or one per seed)."""

from __future__ import annotations

import copy
import json
import statistics
from pathlib import Path
from typing import Sequence

from kayan import atomic
from kayan.config import Config
from kayan.training.distributed import end_distributed
from kayan.training.trainer import train


def spread(values: Sequence[float]) -> dict:
    """Mean, standard deviation and the values themselves (``{}`` for none).

    >>> spread([0.5, 0.7])["mean"], spread([0.5])["std"], spread([])
    (0.6, 0.0, {})
    """
    if not values:
        return {}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": list(values)}


def train_seeds(config: Config, seeds: Sequence[int], *, resume: bool = False, overwrite: bool = False) -> dict:
    """Train one run per seed (``RUN/seed-N``) and report the mean ± std of dev and test F1 (seeds.json)."""
    base = config.output.run_name or "run"
    runs = []
    for seed in seeds:
        each = copy.deepcopy(config)
        each.training.seed = seed
        each.output.dir, each.output.run_name = str(Path(config.output.dir) / base), f"seed-{seed}"  # each a run name
        runs.append(train(each, resume=resume, overwrite=overwrite))
    if not all(runs):  # under torchrun, a rank other than 0: rank 0 writes seeds.json
        return {}
    summary = {"seeds": list(seeds),
               "dev_f1": spread([r["best_dev_f1"] for r in runs if r.get("best_dev_f1") is not None]),
               "test_f1": spread([r["test_f1"] for r in runs if r.get("test_f1") is not None]),
               "runs": [r["run_dir"] for r in runs]}
    atomic.write_text(Path(config.output.dir) / base / "seeds.json", json.dumps(summary, indent=2))
    return summary


def run_training(config: Config, *, seeds: Sequence[int] | None = None, resume: bool = False, overwrite: bool = False) -> dict:
    """What ``kayan train`` runs: :func:`~kayan.training.trainer.train` (no ``seeds``: its summary) or
    :func:`train_seeds` (its summary), then, under torchrun, the process group
    accelerate opened is closed (:func:`~kayan.training.distributed.end_distributed`).

    Call it once per process: once the group is closed, the process trains no more under torchrun.
    """
    summary = train_seeds(config, seeds, resume=resume, overwrite=overwrite) if seeds else \
        train(config, resume=resume, overwrite=overwrite)
    end_distributed()
    return summary
