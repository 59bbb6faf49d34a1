"""What Kayan prints: a progress bar and aligned lines for people; library noise in a log file.

The command line chooses one of three levels per command (``--quiet``, default, ``--verbose``)
with :func:`terminal`:

* ``quiet``: errors and the final summary only;
* ``normal``: also one progress bar for a training run (step, loss, last dev F1, elapsed and
  remaining time) and one aligned line per dev evaluation; the libraries' own log lines, warnings
  and progress bars (transformers' load report, "Writing model shards", the Trainer's raw dicts)
  go to the run folder's ``train.log`` instead of the terminal;
* ``verbose``: the libraries print as they normally do (and ``train.log`` still gets a copy).

That set-up is the program's: it lasts for one command and is put back when the command ends. The
library itself changes nothing of the kind behind its caller's back. A program that calls
:func:`kayan.training.train` keeps its own logging, warnings and progress bars; the run's
``train.log`` (:func:`log_to`) gets Kayan's own lines and what the libraries' loggers pass at the
levels that program set. Where the library must quiet a library for the length of a call
(:func:`quiet_datasets`), it puts the setting back when the call ends.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import logging
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterator

LEVELS = ("quiet", "normal", "verbose")
LIBRARIES = ("transformers", "datasets", "huggingface_hub", "accelerate", "torch")
LIBRARY_LOGGERS = (*LIBRARIES, "py.warnings")
_state: dict = {"level": "normal", "terminal": False, "handler": None, "raised": []}


def level() -> str:
    """``quiet``, ``normal`` or ``verbose``: what the terminal shows (``normal`` outside the command line)."""
    return _state["level"]


@contextlib.contextmanager
def terminal(chosen: str) -> Iterator[None]:
    """The command line's console for one command (see the module docstring), put back when it ends.

    At ``normal`` and ``quiet``, library warnings go to the ``py.warnings`` logger, the libraries'
    loggers lose their terminal handlers and their progress bars are off; a library not imported
    yet is quieted right after its first import (a ``sys.meta_path`` finder, removed at the end),
    so a command that never loads transformers or datasets (``kayan evaluate --predictions``)
    does not import them for this.
    """
    if chosen not in LEVELS:
        raise ValueError(f"console level {chosen!r} is not one of {LEVELS}")
    with contextlib.ExitStack() as undo:
        undo.callback(_state.update, level=_state["level"], terminal=_state["terminal"])
        _state.update(level=chosen, terminal=True)
        if chosen != "verbose":
            _quiet_libraries(undo)
        yield


def _quiet_libraries(undo: contextlib.ExitStack) -> None:
    """Library logs go to the log file (when one is open) and not to the terminal; no library progress bars."""
    undo.callback(setattr, warnings, "showwarning", warnings.showwarning)
    warnings.showwarning = _warnings_to_log(warnings.showwarning)
    _mute("py.warnings", undo)
    hook = _AfterImport(undo)
    for name in LIBRARIES:
        if _SET_UP_BY.get(name, name) in sys.modules:
            _quiet(name, undo)
        else:
            hook.pending[_SET_UP_BY.get(name, name)] = name
    if hook.pending:
        sys.meta_path.insert(0, hook)
        undo.callback(sys.meta_path.remove, hook)


def _quiet(library: str, undo: contextlib.ExitStack) -> None:
    """One imported library quiet (its progress bars, its logger), as it is now put back by ``undo``."""
    quiet = _QUIETERS.get(library)
    if quiet is not None:
        quiet(undo)
    _mute(library, undo)


def _mute(name: str, undo: contextlib.ExitStack) -> None:
    """The ``name`` logger prints nothing to the terminal: it keeps only handlers Kayan adds (the log file)."""
    logger = logging.getLogger(name)
    undo.callback(_put_back, logger, logger.level, logger.handlers[:], logger.propagate)
    logger.propagate = False
    for handler in list(logger.handlers):  # a library's own terminal handler (transformers and datasets have one)
        if type(handler) is logging.StreamHandler:
            logger.removeHandler(handler)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def _put_back(logger: logging.Logger, level: int, handlers: list, propagate: bool) -> None:
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate


def _quiet_transformers(undo: contextlib.ExitStack) -> None:
    """transformers' progress bars off, and huggingface_hub's with them (transformers switches both)."""
    from huggingface_hub import utils as hub
    from transformers.utils import logging as hf_logging

    undo.callback(_bars_back, hf_logging.is_progress_bar_enabled(), hub.are_progress_bars_disabled())
    hf_logging.disable_progress_bar()


def _bars_back(transformers_on: bool, hub_off: bool) -> None:
    from huggingface_hub import utils as hub
    from transformers.utils import logging as hf_logging

    if transformers_on and not hf_logging.is_progress_bar_enabled():
        hf_logging.enable_progress_bar()
    if hub.are_progress_bars_disabled() != hub_off:
        (hub.disable_progress_bars if hub_off else hub.enable_progress_bars)()


def _quiet_datasets(undo: contextlib.ExitStack) -> None:
    undo.enter_context(quiet_datasets())


_QUIETERS: dict[str, Callable[[contextlib.ExitStack], None]] = {"transformers": _quiet_transformers, "datasets": _quiet_datasets}
_SET_UP_BY = {"huggingface_hub": "huggingface_hub.utils.logging"}
"""The module whose import sets a library's logger up, where it is not the package's own (a lazy package)."""


class _AfterImport(importlib.abc.MetaPathFinder):
    """Quiets a library right after its first import (on ``sys.meta_path`` while :func:`terminal` lasts),
    so that what is put back at the end is the library as its import left it.

    Every spec found for a pending name gets the quieting after its module runs: a library that only
    asks whether another is installed (``importlib.util.find_spec``) finds a spec that never runs.
    """

    def __init__(self, undo: contextlib.ExitStack) -> None:
        self.pending: dict[str, str] = {}  # module → the library it sets up
        self.undo = undo

    def find_spec(self, name, path=None, target=None):
        if name not in self.pending:
            return None
        spec = None
        for finder in sys.meta_path:  # the finders after this one find the module as usual
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        loader = spec.loader if spec is not None else None
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module) -> None:
            run(module)
            library = self.pending.pop(name, None)
            if library is not None:
                _quiet(library, self.undo)

        loader.exec_module = exec_module
        return spec


_LIBRARY_PARTS = tuple(f"/{name}/" for name in ("transformers", "torch", "datasets", "accelerate", "huggingface_hub",
                                                "onnxruntime", "onnx", "tokenizers", "safetensors"))


def _warnings_to_log(show: Callable) -> Callable:
    """A ``warnings.showwarning``: warnings raised inside a library go to the log file; Kayan's own
    (meant for the user) are shown by ``show``."""
    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if any(part in str(filename) for part in _LIBRARY_PARTS):
            logging.getLogger("py.warnings").warning(warnings.formatwarning(message, category, filename, lineno, line).rstrip())
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """🤗 datasets' progress bars off while the block runs, and as they were after.

    A user who set ``HF_DATASETS_DISABLE_PROGRESS_BARS`` keeps what they chose.
    """
    import datasets
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if datasets.config.HF_DATASETS_DISABLE_PROGRESS_BARS is not None or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def log_to(path: Path | None) -> None:
    """Keep the libraries' log lines, and Kayan's own (:func:`keep`), in ``path`` from now on; ``None`` stops.

    Under the command line's :func:`terminal`, the libraries' loggers (torch's aside: its INFO lines
    are its compiler's statistics) pass INFO lines until it stops; in a program of its own, the
    loggers keep the levels that program set. Stopping takes the handler off and puts those levels back.
    """
    old = _state["handler"]
    if old is not None:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).removeHandler(old)
        old.close()
        for logger, was in reversed(_state["raised"]):
            logger.setLevel(was)
        _state.update(handler=None, raised=[])
    if path is None:
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if _state["terminal"] and name != "torch" and (logger.level == logging.NOTSET or logger.level > logging.INFO):
            _state["raised"].append((logger, logger.level))
            logger.setLevel(logging.INFO)
    _state["handler"] = handler


def keep(message: str, name: str = "kayan") -> None:
    """A line for the record: the open log file gets it, and so does the ``name`` logger at INFO (where it
    goes from there is the program's logging set-up)."""
    logging.getLogger(name).info(message)
    handler = _state["handler"]
    if handler is not None:
        handler.handle(logging.makeLogRecord({"name": name, "levelno": logging.INFO, "levelname": "INFO", "msg": message}))


def info(message: str) -> None:
    """A line for people (hidden by --quiet), also kept in the log file."""
    keep(message)
    if _state["level"] != "quiet":
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
