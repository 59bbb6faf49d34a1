"""Run Kayan's library calls in a fresh process; write what they changed of the process to WORK/changes.json.

Used by tests/test_process_state.py: ``python -m tests.state_probe WORK`` trains the fast tiny config
(and a run that fails), packages it, predicts (threads=1 and default), evaluates, exports to ONNX,
predicts on ONNX and exports the sample corpus for 🤗 datasets, then compares what belongs to the
caller before and after: ``os.environ``, ``sys.meta_path``,
``warnings.showwarning``, every logger's level, handlers, propagate and disabled flag,
``logging.root.manager.disable``, the libraries' progress-bar switches, the SIGINT handler and
``torch.get_num_threads()``. The third-party libraries are imported before the first look: what
importing them changes is theirs, not Kayan's.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import warnings
from pathlib import Path


WATCHED = ("transformers", "datasets", "huggingface_hub", "accelerate", "torch", "py.warnings", "onnxruntime", "onnx",
           "tokenizers", "safetensors", "optuna")


def _logger_state(logger: logging.Logger) -> list:
    return [logger.level, [f"{type(h).__name__}@{id(h)}" for h in logger.handlers], logger.propagate, logger.disabled]


def snapshot() -> dict:
    """What a library must leave as it found it, as comparable values."""
    import datasets
    import huggingface_hub.utils
    import torch
    from transformers.utils import logging as hf_logging

    loggers = {name: _logger_state(logger) for name, logger in logging.root.manager.loggerDict.items()
               if isinstance(logger, logging.Logger)}
    loggers["(root)"] = _logger_state(logging.root)
    return {
        "os.environ": dict(os.environ),
        "sys.meta_path": [f"{type(f).__name__}@{id(f)}" for f in sys.meta_path],
        "warnings.showwarning": repr(warnings.showwarning),
        "logging.root.manager.disable": logging.root.manager.disable,
        "loggers": loggers,
        "progress bars": [datasets.utils.are_progress_bars_disabled(), hf_logging.is_progress_bar_enabled(),
                          huggingface_hub.utils.are_progress_bars_disabled()],
        "SIGINT": repr(signal.getsignal(signal.SIGINT)),
        "torch.get_num_threads()": torch.get_num_threads(),
    }


def changes(before: dict, after: dict) -> dict:
    """``{what: [before, after]}`` for each thing that differs. A logger created meanwhile counts when it
    is Kayan's or a library's top logger, and must then be as new (a library's inner loggers are its own)."""
    changed = {key: [before[key], after[key]] for key in before if key != "loggers" and before[key] != after[key]}
    fresh = [logging.NOTSET, [], True, False]
    for name, state in after["loggers"].items():
        if name not in before["loggers"] and not (name.split(".")[0] == "kayan" or name in WATCHED):
            continue
        if state != before["loggers"].get(name, fresh):
            changed[f"logger {name}"] = [before["loggers"].get(name, "(new)"), state]
    return changed


def _fail(metrics: dict) -> bool:
    raise RuntimeError("a run that fails at its first evaluation")


def run_library(work: Path) -> None:
    """Train, package, predict, evaluate and export as a program that imports Kayan would."""
    import kayan
    from kayan.data import hfexport
    from kayan.evaluation.model_scoring import evaluate_model
    from kayan.inference.export import export_onnx
    from kayan.inference.packaging import package
    from kayan.training import train
    from tests.conftest import fast_config

    run = Path(train(fast_config(work / "train", "training.epochs=1"))["run_dir"])
    try:  # a run that fails puts everything back too
        train(fast_config(work / "failed", "training.epochs=1"), on_evaluate=_fail)
    except RuntimeError:
        pass
    folder = package(run, work / "package")
    text = "زار محمد بن سلمان مدينة الرياض أمس ."
    kayan.load(folder, threads=1).predict(text)
    kayan.load(folder).predict(text)
    evaluate_model(folder, "sample:test", bootstrap_samples=10)
    export_onnx(folder, limit=5, threads=1)
    kayan.load(folder, backend="onnx", threads=1).predict(text)
    hfexport.export("sample", work / "hf")


def main(work: Path) -> None:
    # The libraries a program has loaded before it calls Kayan, with the parts that change the process
    # as they load: scikit-learn (through seqeval) sets KMP_* variables, torch._dynamo TORCHINDUCTOR_CACHE_DIR.
    import accelerate  # noqa: F401
    import datasets  # noqa: F401
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    import sklearn  # noqa: F401
    import torch._dynamo  # noqa: F401
    import transformers  # noqa: F401

    logging.disable(logging.DEBUG)  # a program's own settings, which Kayan must not reset to the defaults
    before = snapshot()
    run_library(work)
    (work / "changes.json").write_text(json.dumps(changes(before, snapshot()), ensure_ascii=False, default=str),
                                       encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
