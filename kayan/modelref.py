"""Find a model from a path the user gives, with the settings it was trained with, and load it checked.

A path may be a package or any Hugging Face token-classification folder, a run folder
(``train/RUN``: its selected ``model/``), or a checkpoint (``train/RUN/checkpoints/checkpoint-N``:
settings from the run's ``model/kayan.json``). A folder without kayan.json is used as a plain
Hugging Face model, with default settings and a warning. On load, files are checked before use:
JSON that parses, weights that are whole and match the digest kayan.json recorded, labels that
agree between config.json and kayan.json.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path

from kayan.arabic import check_normalization
from kayan.decoding import DECODERS
from kayan.errors import KayanError
from kayan.tagging import TaggingOptions

KAYAN_JSON = "kayan.json"
DEFAULT_STRIDE = 128


def model_folder(path: str | Path) -> Path:
    """The model folder behind ``path``: a package, any Hugging Face folder, or a run folder's ``model/``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise KayanError(f"{path}: no such model folder; check the path (a run folder, checkpoint or `kayan package` output)")
    if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        return path / "model"
    if not (path / "config.json").is_file():
        raise KayanError(f"{path}: not a model folder (no config.json); give a folder written by `kayan package` or save_pretrained")
    return path


def _read_json_object(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KayanError(f"{path}: not valid JSON ({error}); re-package the model with `kayan package`") from None
    if not isinstance(meta, dict):
        raise KayanError(f"{path}: expected a JSON object; re-package the model with `kayan package`")
    return meta


def read_meta(folder: Path) -> dict:
    """The folder's kayan.json (a checkpoint's: its run's), as a dict; ``{}`` when there is none.

    A checkpoint's weights are not the run's selected ones, so its digest is dropped.
    """
    if (folder / KAYAN_JSON).is_file():
        return _read_json_object(folder / KAYAN_JSON)
    run_meta = folder.parent.parent / "model" / KAYAN_JSON
    if folder.parent.name == "checkpoints" and run_meta.is_file():
        meta = _read_json_object(run_meta)
        meta.pop("weights_sha256", None)
        return meta
    return {}


def run_label_map(folder: Path) -> dict[str, str]:
    """``data.label_map`` of the run a model or checkpoint folder belongs to (``{}`` if none)."""
    for config in (folder.parent / "config.yaml", folder.parent.parent / "config.yaml"):
        if config.is_file():
            import yaml

            return dict((yaml.safe_load(config.read_text(encoding="utf-8")).get("data") or {}).get("label_map") or {})
    return {}


def tagging_options(folder: Path, meta: Mapping, id2label: Mapping[int, str], limit: int, *,
                    decoding: str | None = None, batch_size: int = 32) -> TaggingOptions:
    """The settings a model is applied with: kayan.json's, checked, or defaults for a plain folder.

    Without kayan.json (a plain Hugging Face model) the window is the model's position limit, the
    stride 128 (at most a quarter of the window), no normalization and first-subword decoding, with a
    warning. ``decoding`` overrides the stored method.

    Raises:
        KayanError: kayan.json's labels differ from config.json's, its window exceeds ``limit``, or
            a normalization step or decoding method is unknown.
    """
    where = folder / KAYAN_JSON
    if not meta:
        warnings.warn(
            f"{folder} has no {KAYAN_JSON}: using it as a plain Hugging Face model (window {limit}, stride "
            f"{min(DEFAULT_STRIDE, limit // 4)}, no normalization, first-subword decoding); package it with "
            "`kayan package` to store its settings", stacklevel=3)
        meta = {"window": limit, "stride": min(DEFAULT_STRIDE, limit // 4)}
    labels = [id2label[i] for i in range(len(id2label))]
    if "labels" in meta and (not isinstance(meta["labels"], list) or meta["labels"] != labels):
        raise KayanError(f"{where}: labels {meta['labels']} differ from config.json's labels {labels}; "
                         "the folder mixes two models: re-package it with `kayan package`")
    check_batch_size(batch_size)
    window = _whole_number(meta, "window", limit, where)
    if window > limit:
        raise KayanError(f"{where}: window {window} exceeds the model's limit of {limit} subwords; set window <= {limit}")
    if window < 3:
        raise KayanError(f"{where}: window {window} leaves no room for words; it must be from 3 to {limit}: re-package the model")
    raw_steps = meta.get("normalization", ())
    if not isinstance(raw_steps, (list, tuple, str)) or any(not isinstance(step, str) for step in raw_steps):
        raise KayanError(f"{where}: normalization is {raw_steps!r}, not a list of step names; the file is damaged: "
                         "re-package the model with `kayan package`")
    try:
        steps = check_normalization(raw_steps)
    except KayanError as error:
        raise KayanError(f"{where}: {error}") from None
    method = decoding or meta.get("decoding", "first")
    if not isinstance(method, str) or method not in DECODERS:
        raise KayanError(f"decoding {method!r} (from {'the override' if decoding else where}) is not a decoding method; "
                         f"use one of: {', '.join(DECODERS)}")
    stride = _whole_number(meta, "stride", min(DEFAULT_STRIDE, window // 4), where)
    if not 0 <= stride < window - 2:
        raise KayanError(f"{where}: stride {stride} must be at least 0 and less than the window minus 2 ({window - 2}); "
                         "re-package the model with `kayan package`")
    return TaggingOptions(window=window, stride=stride, normalization=steps, decoding=method, batch_size=batch_size)


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` if it is a whole number >= 1, else a KayanError that says what to give.

    >>> check_batch_size(0)
    Traceback (most recent call last):
    kayan.errors.KayanError: batch_size=0: give a whole number >= 1 (windows per forward pass, e.g. 32)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise KayanError(f"batch_size={batch_size!r}: give a whole number >= 1 (windows per forward pass, e.g. 32)")
    return batch_size


def _whole_number(meta: Mapping, key: str, default: int, where: Path) -> int:
    """``meta[key]`` (or ``default``) as an int; a string, float or bool there is a damaged kayan.json."""
    value = meta.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise KayanError(f"{where}: {key} is {value!r}, not a whole number of subwords; "
                         "the file is damaged: re-package the model with `kayan package`")
    return value


@contextlib.contextmanager
def quiet_loading():
    """Hide transformers' progress bar and load report while a model loads.

    A load that fails is reported by Kayan in one line, without the library's report above it; a
    load that succeeds with weights missing, unexpected or reinitialized gets a one-line warning.
    Other library warnings are passed on after the load.
    """
    import logging

    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.disable_progress_bar()
    library = logging.getLogger("transformers")
    captured: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = captured.append
    saved = library.handlers[:], library.propagate
    library.handlers, library.propagate = [handler], False
    try:
        yield
    finally:
        library.handlers, library.propagate = saved
        if enabled:
            hf_logging.enable_progress_bar()
    for record in captured:  # reached only when the load succeeded
        if "LOAD REPORT" in record.getMessage():
            kinds = sorted({kind for kind in ("MISSING", "UNEXPECTED", "MISMATCH") if kind in record.getMessage()})
            where = record.getMessage().split("from:", 1)[-1].split("\n", 1)[0].strip()
            warnings.warn(f"model folder {where}: some weights were {'/'.join(kinds).lower() or 'not loaded as saved'} "
                          "when it loaded; its predictions may be wrong — re-save or re-package the model", stacklevel=3)
        else:
            library.handle(record)


def load_torch(folder: Path, device: str | None = None, *, meta: Mapping | None = None):
    """Tokenizer and PyTorch model of a folder, its files checked (see the module docstring)."""
    import torch

    from kayan.modeling import load_trained

    meta = read_meta(folder) if meta is None else meta
    with quiet_loading():
        model, tokenizer = load_trained(folder, weights_sha256=meta.get("weights_sha256"))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer


def load_for_tagging(path: str | Path, *, decoding: str | None = None, batch_size: int = 32, device: str | None = None):
    """Model, tokenizer, tagging options and kayan.json of a run, checkpoint or model folder (PyTorch)."""
    from kayan.modeling import position_limit

    folder = model_folder(path)
    meta = read_meta(folder)
    model, tokenizer = load_torch(folder, device, meta=meta)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    options = tagging_options(folder, meta, id2label, position_limit(model.config, tokenizer),
                              decoding=decoding, batch_size=batch_size)
    return model, tokenizer, options, meta
