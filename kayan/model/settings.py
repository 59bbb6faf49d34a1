"""A model's settings as kayan.json stores them beside its weights: one schema, one reader, one writer.

kayan.json says how to apply a model exactly as it was trained (labels, windows, normalization,
decoding, document context) and what it was trained on. ``kayan train`` writes it with the run's
model; ``kayan package`` adds the label map, scores, recipe and file digests (an ensemble package's
lists its members instead), and with ``--prune-vocab`` its vocabulary's pruning; ``kayan export``
adds the ONNX parity report. :class:`ModelSettings` declares the file once:

- :func:`read` (:func:`from_dict`) is the one reader: every key's type and range is checked (a
  damaged file fails in one line naming the file, the key and the fix), older versions are
  upgraded (:data:`UPGRADES`), a newer one is refused;
- :func:`write` is the one writer, atomic (:func:`kayan.atomic.write_text`);
- each field that training fills from the run config names its config key (``window`` ←
  ``training.window``, :func:`from_config`); those keys and :data:`NOT_STORED` (keys that shape the
  checkpoints but are not in kayan.json) are what ``--resume`` keeps fixed (:func:`fixed_on_resume`).

A field is ``None`` when the file does not record it (a plain run model has no scores, an ensemble
no window); the reader of the setting applies its default (:func:`kayan.model.modelref.tagging_options`).

Versions (``schema_version``):
    1. files without ``schema_version``, as Kayan wrote them before it; packages older still kept
       the label map in ``recipe.label_map``.
    2. ``schema_version``; the label map at the top level only (``label_map``).

The JSON keeps version 1's keys and shapes, so code written for version 1 reads version 2.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kayan import __version__, atomic
from kayan.checks import check_window, in_range, is_number
from kayan.data.arabic import NORMALIZATIONS
from kayan.errors import KayanError
from kayan.files import read_json_object
from kayan.model.decoding import DECODERS

FILE = "kayan.json"
SCHEMA_VERSION = 2
REPACKAGE = "re-package the model with `kayan package`"  # the fix for a damaged kayan.json
SCHEME = "IOB2"  # word-level tags are IOB2 whatever the corpus had (kayan.data.schemes)
# Config keys that change what the checkpoints were trained on but that kayan.json does not record:
# the model's revision and tiny shape, a dataset's columns, how a dev split is carved from train, each
# corpus's label map and whether types a corpus never tags are taught as O.
NOT_STORED = ("model.revision", "model.tiny", "data.columns", "data.dev_fraction", "data.dev_split", "data.label_maps",
              "data.partial_labels")
# The training keys a package records as its recipe: hyperparameters, most of which a resumed run may
# change (more epochs, a lower learning rate); layer_lr_decay may not (kayan.training.transaction).
RECIPE_KEYS = ("learning_rate", "scheduler", "warmup_ratio", "weight_decay", "epochs", "batch_size",
               "gradient_accumulation", "seed", "precision", "early_stopping_patience", "select_best",
               "layer_lr_decay")


def _damaged(where: object, key: str, value: object, what: str) -> KayanError:
    return KayanError(f"{where}: {key} is {value!r}, not {what}: the file is damaged; {REPACKAGE}")


def _text(what: str) -> Callable:
    def parse(value, key, where):
        if not isinstance(value, str):
            raise _damaged(where, key, value, what)
        return value
    return parse


def _whole(what: str) -> Callable:
    def parse(value, key, where):
        if not is_number(value, whole=True):
            raise _damaged(where, key, value, what)
        return value
    return parse


def _number(value, key, where):
    if not is_number(value):
        raise _damaged(where, key, value, "a number or null")
    return value


def _flag(value, key, where):
    if not isinstance(value, bool):
        raise _damaged(where, key, value, "true or false")
    return value


def _texts(what: str) -> Callable:
    def parse(value, key, where):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _damaged(where, key, value, what)
        return tuple(value)
    return parse


def _names(what: str) -> Callable:
    def parse(value, key, where):
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise _damaged(where, key, value, what)
        return dict(value)
    return parse


def _object(value, key, where):
    if not isinstance(value, dict):
        raise _damaged(where, key, value, "a JSON object")
    return value


def _digest(value, key, where):
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise _damaged(where, key, value, "a sha256 digest (64 hex digits)")
    return value


def _fields(cls, data: Mapping, key: str, where: object) -> dict:
    """``data``'s entries parsed by ``cls``'s field parsers; an unknown entry is refused."""
    if not isinstance(data, dict):
        raise _damaged(where, key, data, "a JSON object")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for name in data:
        if name not in known:
            raise KayanError(f"{where}: unknown key {f'{key}.' if key else ''}{name} (kayan.json version {SCHEMA_VERSION}); "
                             f"remove it, or {REPACKAGE}")
    # null is the same as leaving the key out: the field's default
    return {name: known[name].metadata["parse"](value, f"{key}.{name}" if key else name, where)
            for name, value in data.items() if value is not None}


def _key(parse: Callable, *config: str, default: Any = None):
    """A field of the file: ``parse(value, key, where)`` checks its JSON value; ``config``: the run
    config keys training fills it from (fixed on resume)."""
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return field(**factory, metadata={"parse": parse, "config": config})


@dataclass(frozen=True)
class TrainingData:
    """What the model was trained, selected and tested on: ``CORPUS:SPLIT`` refs or paths, and each file's sha256."""

    train: tuple[str, ...] = _key(_texts("a list of data refs"), default=())
    dev: tuple[str, ...] = _key(_texts("a list of data refs"), default=())
    test: tuple[str, ...] = _key(_texts("a list of data refs"), default=())
    files: dict[str, str] = _key(_names("a mapping of file paths to sha256 digests"), default=dict)


def _training_data(value, key, where) -> TrainingData:
    return TrainingData(**_fields(TrainingData, value, key, where))


@dataclass(frozen=True)
class EnsembleMember:
    """One member of an ensemble package: its folder in the package, the run it came from, its seed and scores."""

    path: str = _key(_text("a folder in the package"))  # required (checked by _members)
    source: str | None = _key(_text("the member's source run"))
    seed: int | None = _key(_whole("a whole number"))
    dev_f1: float | None = _key(_number)
    test_f1: float | None = _key(_number)


@dataclass(frozen=True)
class EnsembleInfo:
    """How an ensemble package combines its members, and the members in order."""

    combine: str = _key(_text("a description of how the members combine"), default="")
    members: tuple[EnsembleMember, ...] = _key(lambda value, key, where: _members(value, key, where), default=())


def _members(value, key, where) -> tuple[EnsembleMember, ...]:
    if not isinstance(value, list) or not value:
        raise _damaged(where, key, value, "a list of members")
    members = []
    for index, entry in enumerate(value):
        parsed = _fields(EnsembleMember, entry, f"{key}[{index}]", where)
        if "path" not in parsed:
            raise _damaged(where, f"{key}[{index}].path", None, "a folder in the package")
        members.append(EnsembleMember(**parsed))
    return tuple(members)


def _ensemble(value, key, where) -> EnsembleInfo:
    return EnsembleInfo(**_fields(EnsembleInfo, value, key, where))


@dataclass(frozen=True)
class ModelSettings:
    """kayan.json, typed (see the module docstring); ``None``: the file does not record that field."""

    schema_version: int = _key(_whole("a whole number"), default=SCHEMA_VERSION)
    kayan_version: str | None = _key(_text("a version string"))
    labels: tuple[str, ...] | None = _key(_texts("a list of tag names"))  # in label-id order, as config.json's
    scheme: str | None = _key(_text("a tagging scheme name"))
    window: int | None = _key(_whole("a whole number of subwords"), "training.window")
    stride: int | None = _key(_whole("a whole number of subwords"), "training.stride")
    normalization: tuple[str, ...] | None = _key(_texts("a list of step names"), "data.normalization")
    decoding: str | None = _key(lambda value, key, where: value, "training.decoding")  # checked by _check_ranges
    label_all_subwords: bool | None = _key(_flag, "training.label_all_subwords")
    context: int | None = _key(_whole("a whole number of subwords"), "training.context")
    base_model: str | None = _key(_text("a model name or folder"), "model.name")
    label_map: dict[str, str] | None = _key(_names("a mapping of entity type names"), "data.label_map")
    training_data: TrainingData | None = _key(_training_data, "data.train", "data.dev", "data.test")
    versions: dict[str, str] | None = _key(_names("a mapping of library names to versions"))
    weights_sha256: str | None = _key(_digest)  # of model.safetensors, checked on every load
    files: dict[str, str] | None = _key(_names("a mapping of file names to sha256 digests"))  # a package's files
    metrics: dict | None = _key(_object)  # a package's test and dev scores (kayan.inference.packaging)
    recipe: dict | None = _key(_object)  # a package's RECIPE_KEYS from its run's config
    package: dict | None = _key(_object)  # the Kayan that packaged it
    ensemble: EnsembleInfo | None = _key(_ensemble)  # an ensemble package's members
    onnx: dict | None = _key(_object)  # the parity report of `kayan export --onnx` (kayan.inference.export)
    vocabulary: dict | None = _key(_object)  # the pruning of `kayan package --prune-vocab` (kayan.model.vocabulary)


def _upgrade_1(data: dict) -> dict:
    """Version 1 → 2: a label map kept in the recipe (packages older than ``label_map``) moves to the top."""
    data = dict(data)
    recipe = data.get("recipe")
    if isinstance(recipe, dict) and "label_map" in recipe:
        data["recipe"] = {k: v for k, v in recipe.items() if k != "label_map"}
        data.setdefault("label_map", recipe["label_map"])
    data["schema_version"] = 2
    return data


# Each version's upgrade to the next one, applied in turn by from_dict.
UPGRADES: dict[int, Callable[[dict], dict]] = {1: _upgrade_1}


def _upgraded(data: Mapping, where: object) -> dict:
    """``data`` upgraded to :data:`SCHEMA_VERSION`; a version newer than this Kayan reads is refused."""
    version = data.get("schema_version", 1)
    if not in_range(version, 1, whole=True):
        raise _damaged(where, "schema_version", version, "a version number (1 or more)")
    if version > SCHEMA_VERSION:
        raise KayanError(f"{where}: schema_version {version} is newer than this Kayan ({__version__}) reads "
                         f"(up to {SCHEMA_VERSION}); upgrade Kayan (pip install -U kayan) to load this model")
    data = dict(data)
    while version < SCHEMA_VERSION:
        data = UPGRADES[version](data)
        version = data["schema_version"]
    return data


def from_dict(data: Mapping, where: str | Path = FILE) -> ModelSettings:
    """The settings in ``data`` (a kayan.json's content), upgraded and checked.

    Args:
        data: the JSON object.
        where: what error messages call it (the file's path).

    Raises:
        KayanError: a key of the wrong type or out of range, an unknown key, or a newer schema version.

    >>> from_dict({"window": 64, "recipe": {"label_map": {"PER": "PERS"}}}).label_map
    {'PER': 'PERS'}
    >>> from_dict({"window": 2}, "pkg/kayan.json")
    Traceback (most recent call last):
    kayan.errors.KayanError: pkg/kayan.json: window 2 leaves no room for words; it must be at least 3 (2 special tokens and a word); re-package the model with `kayan package`
    """
    if not isinstance(data, Mapping):
        raise KayanError(f"{where}: expected a JSON object; {REPACKAGE}")
    settings = ModelSettings(**_fields(ModelSettings, _upgraded(data, where), "", where))
    _check_ranges(settings, where)
    return settings


def _check_ranges(s: ModelSettings, where: object) -> None:
    """The values that fit the key's type but not its range: windows, stride, context, steps, decoding, scheme."""
    if s.window is not None:
        check_window(s.window, s.stride, where=str(where), fix=REPACKAGE)
    if s.context is not None and s.context < 0:
        raise KayanError(f"{where}: context {s.context} must be at least 0 (subwords of the neighbouring sentences); "
                         f"{REPACKAGE}")
    unknown = [step for step in s.normalization or () if step not in NORMALIZATIONS]
    if unknown:
        raise KayanError(f"{where}: unknown normalization step {unknown[0]!r} (valid steps: {', '.join(sorted(NORMALIZATIONS))}); "
                         f"{REPACKAGE}")
    if s.decoding is not None and (not isinstance(s.decoding, str) or s.decoding not in DECODERS):
        raise KayanError(f"decoding {s.decoding!r} (from {where}) is not a decoding method ({', '.join(DECODERS)}): "
                         f"the file is damaged; {REPACKAGE}")
    if s.scheme is not None and s.scheme != SCHEME:
        raise KayanError(f"{where}: scheme {s.scheme!r} is not {SCHEME}, the scheme Kayan's models tag in; {REPACKAGE}")


def _plain(value: Any) -> Any:
    """JSON-ready data: tuples as lists, dataclasses as dicts."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def to_dict(settings: ModelSettings) -> dict:
    """kayan.json's content: the recorded fields (``None`` ones left out), in the declared order.

    >>> to_dict(ModelSettings(labels=("O", "B-LOC"), window=64))
    {'schema_version': 2, 'labels': ['O', 'B-LOC'], 'window': 64}
    """
    return {f.name: _plain(getattr(settings, f.name)) for f in dataclasses.fields(settings)
            if getattr(settings, f.name) is not None}


def read(folder: str | Path) -> ModelSettings | None:
    """The settings in ``folder``'s kayan.json, upgraded and checked (:func:`from_dict`); ``None`` when it has none.

    Raises:
        KayanError: the file is not a JSON object, or a key is damaged (the message names the file and key).
    """
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    return from_dict(read_json_object(path, fix=REPACKAGE), path)


def write(folder: str | Path, settings: ModelSettings) -> Path:
    """Write ``settings`` as ``folder``'s kayan.json (atomically: a reader sees the old file or the new one); returns its path.

    The content is checked as :func:`read` checks it before anything is written, so no writer leaves
    a file the reader refuses.
    """
    if settings.schema_version != SCHEMA_VERSION:
        raise ValueError(f"kayan.json is written in version {SCHEMA_VERSION}, not {settings.schema_version}")
    path, data = Path(folder) / FILE, to_dict(settings)
    from_dict(data, path)
    return atomic.write_text(path, json.dumps(data, ensure_ascii=False, indent=2))


def _config_value(config: Mapping, key: str) -> Any:
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def from_config(config: Mapping, **recorded: Any) -> ModelSettings:
    """The settings of a model trained with ``config`` (the run config as plain data, ``Config.to_dict()``):
    each field that names one config key filled from it, the others from ``recorded`` (JSON-style values).

    >>> from kayan.config import Config
    >>> s = from_config(Config().to_dict(), labels=["O"], scheme="IOB2")
    >>> (s.window, s.stride, s.normalization, s.base_model, s.labels)
    (512, 128, (), 'tiny', ('O',))
    """
    filled = {f.name: _config_value(config, f.metadata["config"][0]) for f in dataclasses.fields(ModelSettings)
              if len(f.metadata["config"]) == 1 and f.name not in recorded}
    return from_dict({**filled, **recorded}, "the run config")


def fixed_on_resume() -> tuple[str, ...]:
    """The config keys ``--resume`` may not change: those training records in kayan.json, :data:`NOT_STORED`,
    and ``training.layer_lr_decay`` (a checkpoint's optimizer state fits only the groups it was trained with).

    >>> fixed_on_resume()[:3]
    ('training.window', 'training.stride', 'data.normalization')
    """
    keys = [key for f in dataclasses.fields(ModelSettings) for key in f.metadata["config"]]
    return tuple(dict.fromkeys([*keys, *NOT_STORED, "training.layer_lr_decay"]))


def recipe_of(config: Mapping) -> dict:
    """A package's recipe: the :data:`RECIPE_KEYS` of a run config's training section (plain data; ``{}`` without one)."""
    training = config.get("training") or {}
    return {key: training[key] for key in RECIPE_KEYS if key in training}
