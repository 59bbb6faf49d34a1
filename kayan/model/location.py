"""Where a model lives: the model folder behind a path the user gives, found and checked without loading anything.

A path may be a package or any Hugging Face folder, a run folder (its ``model/``), a checkpoint or an
ensemble package (kayan.json and one package per member under ``members/``); :mod:`kayan.run` says
which model folder a run's path means. Nothing here imports torch: the parent process of
``kayan predict --out --workers N`` names the model this way and never loads it.
"""

from __future__ import annotations

from pathlib import Path

from kayan.errors import KayanError
from kayan.model.settings import FILE
from kayan.run import RunFolder
from kayan.run import locate as run_locate

MEMBERS = "members"  # an ensemble package's folder of member packages


def model_folder(path: str | Path) -> Path:
    """The model folder behind ``path``: a package, any Hugging Face folder, a checkpoint, or a run folder's ``model/``."""
    return locate(path)[0]


def locate(path: str | Path) -> tuple[Path, RunFolder | None]:
    """:func:`kayan.run.locate`, checked: the model folder behind ``path`` exists and holds a model (or an ensemble).

    Returns:
        ``(model folder, run)``; ``run`` is ``None`` when the folder is not in a run.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise KayanError(f"{path}: no such run or model folder; check the path (a run folder train/RUN, a checkpoint "
                         "or a `kayan package` output)")
    folder, run = run_locate(path)
    if run is not None and not folder.is_dir():  # a run folder whose model/ is not written yet
        raise KayanError(f"{path}: the run has saved no model yet (no {folder.name}/); give one of its checkpoints "
                         f"({run.checkpoint_folder()}/checkpoint-N) or wait until training ends")
    if not (folder / "config.json").is_file() and not is_ensemble(folder):
        raise KayanError(f"{path}: neither a run folder nor a model folder (no config.json); give train/RUN, a checkpoint, "
                         "or a folder written by `kayan package` or save_pretrained")
    return folder, run


def is_ensemble(folder: Path) -> bool:
    """Whether ``folder`` is an ensemble package: kayan.json and ``members/``, no model of its own."""
    return (folder / FILE).is_file() and (folder / MEMBERS).is_dir() and not (folder / "config.json").is_file()
