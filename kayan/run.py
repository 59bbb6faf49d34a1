"""A run folder of ``kayan train``, read: the one module that knows its layout.

Run folder (``output.dir/output.run_name``)::

    config.yaml           the resolved config; its data.label_map renamed the data's entity types
    metrics.jsonl         one JSON line per dev evaluation
    checkpoints/          Trainer checkpoints, checkpoint-N (--resume continues from the last)
    model/                the selected model: weights, tokenizer, label list, kayan.json
    test_metrics.json     word-level test scores of model/ (test_predictions.txt: its tags)
    summary.json          dev/test F1, throughput, padding, time and memory, once the run ended
    train.log, curves.png the libraries' log lines; train loss and dev F1 per evaluation
  and with training.refit (model/ is then the model trained again on train + dev):
    model-dev-selected/   the dev-selected model (test_metrics_dev_selected.json: its scores)
    selection.json        the finished selection phase, which --resume skips
    refit-checkpoints/    the refit's Trainer checkpoints

:class:`RunFolder` answers what a reader asks: is this a run folder (:meth:`RunFolder.is_run`),
which model folder a path means and which run it belongs to (:func:`locate`), and the run's
config, label map, summary, test scores, evaluations and checkpoints. A run's model folders and
checkpoints are recognised by where this layout puts them, never by searching parent folders for
a config. :mod:`kayan.training` writes the folder with these names, as a transaction
(:mod:`kayan.training.transaction`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kayan.errors import KayanError
from kayan.files import read_json_object

CONFIG = "config.yaml"
METRICS_LOG = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
REFIT_CHECKPOINTS = "refit-checkpoints"
MODEL = "model"
SELECTED_MODEL = "model-dev-selected"
SUMMARY = "summary.json"
SELECTION = "selection.json"
TRAIN_LOG = "train.log"
CURVES = "curves.png"
DEV_SELECTED = "_dev_selected"  # the suffix of the dev-selected model's test files
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # the Trainer's checkpoint names


@dataclass(frozen=True)
class RunFolder:
    """One run folder (see the module docstring); reading it changes nothing.

    Args:
        path: the run folder, ``output.dir/output.run_name``.
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @staticmethod
    def is_run(path: str | Path) -> bool:
        """Whether ``path`` is a run folder: config.yaml, and a model or checkpoints (a tune folder has neither).

        >>> RunFolder.is_run("/nonexistent")
        False
        """
        path = Path(path)
        return (path / CONFIG).is_file() and ((path / MODEL).is_dir() or (path / CHECKPOINTS).is_dir())

    @property
    def model(self) -> Path:
        """``model/``: the model the run selected (with refit: the refit one)."""
        return self.path / MODEL

    @property
    def selected_model(self) -> Path:
        """``model-dev-selected/``: with refit, the dev-selected model."""
        return self.path / SELECTED_MODEL

    @property
    def saved_model(self) -> Path | None:
        """The model folder whose kayan.json holds the run's settings: ``model/``, or ``model-dev-selected/``
        while a refit trains; None before training saved a model."""
        return next((folder for folder in (self.model, self.selected_model) if folder.is_dir()), None)

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_LOG

    @property
    def summary_file(self) -> Path:
        return self.path / SUMMARY

    @property
    def selection_file(self) -> Path:
        return self.path / SELECTION

    @property
    def train_log(self) -> Path:
        return self.path / TRAIN_LOG

    @property
    def curves(self) -> Path:
        return self.path / CURVES

    def checkpoint_folder(self, *, refit: bool = False) -> Path:
        """``checkpoints/`` (``refit-checkpoints/`` for the refit's)."""
        return self.path / (REFIT_CHECKPOINTS if refit else CHECKPOINTS)

    def test_metrics_file(self, *, dev_selected: bool = False) -> Path:
        """``test_metrics.json`` of ``model/`` (``test_metrics_dev_selected.json`` of ``model-dev-selected/``)."""
        return self.path / f"test_metrics{DEV_SELECTED if dev_selected else ''}.json"

    def test_predictions_file(self, *, dev_selected: bool = False) -> Path:
        """``test_predictions.txt`` (``test_predictions_dev_selected.txt``): `token gold predicted` lines."""
        return self.path / f"test_predictions{DEV_SELECTED if dev_selected else ''}.txt"

    def holds_checkpoint(self, folder: str | Path) -> bool:
        """Whether ``folder`` is one of this run's Trainer checkpoints."""
        folder = Path(folder).resolve()
        return checkpoint_step(folder) is not None and folder.parent in (
            self.checkpoint_folder().resolve(), self.checkpoint_folder(refit=True).resolve())

    def checkpoints(self, *, refit: bool = False) -> list[Path]:
        """The Trainer checkpoints in ``checkpoints/`` (``refit-checkpoints/``), by step."""
        return self.checkpoints_in(self.checkpoint_folder(refit=refit))

    @staticmethod
    def checkpoints_in(folder: Path) -> list[Path]:
        """The Trainer checkpoints (``checkpoint-N`` folders) in ``folder``, by step."""
        found = [path for path in folder.iterdir() if checkpoint_step(path) is not None and path.is_dir()] if folder.is_dir() else []
        return sorted(found, key=checkpoint_step)

    def last_checkpoint(self, *, refit: bool = False) -> str | None:
        """The newest checkpoint's path (a str, as the Trainer's ``resume_from_checkpoint`` takes it), or None.

        Not ``transformers.trainer_utils.get_last_checkpoint``: the same rule, but this module stays free
        of transformers (the command line locates runs without loading it), and :meth:`checkpoints`
        lists them all for packaging and the resume checks anyway."""
        found = self.checkpoints(refit=refit)
        return str(found[-1]) if found else None

    def config(self) -> dict:
        """config.yaml as plain data (``{}`` when the run has none)."""
        if not self.config_file.is_file():
            return {}
        try:
            config = yaml.safe_load(self.config_file.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise KayanError(f"{self.config_file}: not valid YAML ({str(error).splitlines()[0]}); "
                             "repair it from the config the run was started with") from None
        if not isinstance(config, dict):
            raise KayanError(f"{self.config_file}: expected a mapping of config sections; "
                             "repair it from the config the run was started with")
        return config

    def label_map(self) -> dict[str, str]:
        """``data.label_map`` of the run's config: the data's entity types renamed to the model's (``{}`` if none)."""
        data = self.config().get("data")
        mapping = (data.get("label_map") if isinstance(data, dict) else None) or {}
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise KayanError(f"{self.config_file}: data.label_map is {mapping!r}, not a mapping of entity type names; "
                             "repair it (e.g. {PER: PERS}) or give --label-map")
        return dict(mapping)

    def summary(self) -> dict | None:
        """summary.json (None before the run ended)."""
        return _read_json(self.summary_file)

    def selection(self) -> dict | None:
        """selection.json (None unless a refit run finished its selection phase)."""
        return _read_json(self.selection_file)

    def test_metrics(self, model: str | Path) -> dict | None:
        """The test scores of one of the run's model folders: ``model/``'s test_metrics.json,
        ``model-dev-selected/``'s test_metrics_dev_selected.json; None for a checkpoint (never scored on test)."""
        model = Path(model).resolve()
        if model not in (self.model.resolve(), self.selected_model.resolve()):
            return None
        return _read_json(self.test_metrics_file(dev_selected=model == self.selected_model.resolve()))

    def evaluations(self) -> list[dict]:
        """The lines of metrics.jsonl, one per dev evaluation (a torn last line, from a killed run, is skipped)."""
        rows = []
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines() if self.metrics_file.is_file() else []:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows


def checkpoint_step(path: str | Path) -> int | None:
    """The step of a Trainer checkpoint folder (``.../checkpoint-30`` → 30), or None for another name.

    >>> checkpoint_step("train/q/checkpoints/checkpoint-30/"), checkpoint_step("train/q/model")
    (30, None)
    """
    match = _CHECKPOINT.match(Path(path).name)
    return int(match.group(1)) if match else None


def locate(path: str | Path) -> tuple[Path, RunFolder | None]:
    """The model folder ``path`` means, and the run it belongs to (None outside a run).

    A run folder means its ``model/``; anything else means itself: a run's ``model/`` or
    ``model-dev-selected/``, a checkpoint in its ``checkpoints/`` or ``refit-checkpoints/``, a
    package, a plain Hugging Face folder. Nothing is checked to exist but the run.

    >>> locate("models/pkg")
    (PosixPath('models/pkg'), None)
    """
    path = Path(path).expanduser()
    if RunFolder.is_run(path):
        run = RunFolder(path)
        return run.model, run
    where = path.resolve()  # "." or "model/.." name no folder
    if where.name in (MODEL, SELECTED_MODEL) and RunFolder.is_run(where.parent):
        return path, RunFolder(where.parent)
    if RunFolder.is_run(where.parent.parent) and RunFolder(where.parent.parent).holds_checkpoint(where):
        return path, RunFolder(where.parent.parent)
    return path, None


def _read_json(path: Path) -> dict | None:
    """A run's JSON file (None when it is missing), as a dict; a damaged one is a one-line error."""
    return read_json_object(path, fix="repair or delete it") if path.is_file() else None
