"""What Kayan prints: a progress bar and aligned lines for people; library noise in a log file.

Three levels, set once per command (``--quiet``, default, ``--verbose``):

* ``quiet``: errors and the final summary only;
* ``normal``: also one progress bar for a training run (step, loss, last dev F1, elapsed and
  remaining time) and one aligned line per dev evaluation; the libraries' own log lines, warnings
  and progress bars (transformers' load report, "Writing model shards", the Trainer's raw dicts)
  go to the run folder's ``train.log`` instead of the terminal;
* ``verbose``: the libraries print as they normally do (and ``train.log`` still gets a copy).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
import warnings
from pathlib import Path
from typing import Callable

LEVELS = ("quiet", "normal", "verbose")
LIBRARY_LOGGERS = ("transformers", "datasets", "huggingface_hub", "accelerate", "torch", "py.warnings")
_state = {"level": "normal", "handler": None}


def set_level(level: str) -> None:
    """Choose what the terminal shows for the rest of this process (see the module docstring).

    A library not imported yet is quieted right after its first import, so a command that never
    loads transformers or datasets (``kayan evaluate --predictions``) does not import them for this.
    """
    if level not in LEVELS:
        raise ValueError(f"console level {level!r} is not one of {LEVELS}")
    _state["level"] = level
    if level == "verbose":
        _AFTER_IMPORT.pending.clear()
    else:
        _quiet_libraries()


def level() -> str:
    return _state["level"]


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_info()  # the log file gets the load report and friends


def _quiet_hub() -> None:
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


def _quiet_datasets() -> None:
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_info()


_QUIETERS = {"transformers": _quiet_transformers, "huggingface_hub": _quiet_hub, "datasets": _quiet_datasets}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a library's quieting right after the library's first import (on ``sys.meta_path``)."""

    def __init__(self) -> None:
        self.pending: dict[str, Callable[[], None]] = {}

    def find_spec(self, name, path=None, target=None):
        quiet = self.pending.pop(name, None)
        if quiet is None:
            return None
        spec = importlib.util.find_spec(name)  # the other finders: ``name`` is no longer pending here
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module) -> None:
                run(module)
                quiet()
                _mute_loggers()

            spec.loader.exec_module = exec_module
        return spec


_AFTER_IMPORT = _AfterImport()


def _quiet_libraries() -> None:
    """Library logs go to the log file (when one is open) and not to the terminal; no library progress bars."""
    warnings.showwarning = _show_warning
    for name, quiet in _QUIETERS.items():
        if name in sys.modules:
            quiet()
        else:
            _AFTER_IMPORT.pending[name] = quiet
    if _AFTER_IMPORT.pending and _AFTER_IMPORT not in sys.meta_path:
        sys.meta_path.insert(0, _AFTER_IMPORT)
    _mute_loggers()


def _mute_loggers() -> None:
    """No library logger prints to the terminal: each keeps only handlers Kayan adds (the log file)."""
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.propagate = False
        for handler in list(library.handlers):  # a library's own terminal handler (datasets has one)
            if type(handler) is logging.StreamHandler:
                library.removeHandler(handler)
        if not library.handlers:
            library.addHandler(logging.NullHandler())


_LIBRARY_PARTS = tuple(f"/{name}/" for name in ("transformers", "torch", "datasets", "accelerate", "huggingface_hub",
                                                "onnxruntime", "onnx", "tokenizers", "safetensors"))
_print_warning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings raised inside a library go to the log file; Kayan's own (meant for the user) still print."""
    if any(part in str(filename) for part in _LIBRARY_PARTS):
        logging.getLogger("py.warnings").warning(warnings.formatwarning(message, category, filename, lineno, line).rstrip())
    else:
        _print_warning(message, category, filename, lineno, file, line)


def log_to(path: Path | None) -> None:
    """Send every library's log lines (and Python warnings) to ``path`` from now on; None stops."""
    old = _state["handler"]
    if old is not None:
        for name in LIBRARY_LOGGERS + ("kayan",):
            logging.getLogger(name).removeHandler(old)
        old.close()
        _state["handler"] = None
    if path is None:
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in LIBRARY_LOGGERS + ("kayan",):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if name != "torch" and (logger.level == logging.NOTSET or logger.level > logging.INFO):
            logger.setLevel(logging.INFO)  # torch's INFO lines are its compiler's statistics: leave its level
    _state["handler"] = handler


def info(message: str) -> None:
    """A line for people (hidden by --quiet), also kept in the log file."""
    logging.getLogger("kayan").info(message)
    if _state["level"] != "quiet":
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
