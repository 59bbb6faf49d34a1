"""Find a model from a path the user gives, with the settings it was trained with, and load it checked.

:func:`open_model` is the one way in, for evaluation, prediction, export and packaging alike. A
path may be a package or any Hugging Face token-classification folder, a run folder
(``train/RUN``: its selected ``model/``), a checkpoint (``train/RUN/checkpoints/checkpoint-N``:
settings from the run's ``model/kayan.json``), or an ensemble package (``kayan package RUN RUN ...
OUT``: one package per member under ``members/``, see :mod:`kayan.model.ensemble`); :mod:`kayan.run`
says which model folder a path means and which run it belongs to. A folder without kayan.json is
used as a plain Hugging Face model, with default settings and a warning. On load, files are
checked before use: JSON that parses, weights that are whole and match the digest kayan.json
recorded, kayan.json's keys in their types and ranges (its one reader, :func:`kayan.model.settings.read`),
labels that agree between config.json and kayan.json and a window the model can hold (:func:`tagging_options`).

The label map a model was trained with (``data.label_map``: the data's entity types renamed to the
model's) comes from its run's config.yaml for a run's model or checkpoint, and from kayan.json's
``label_map`` for a package (:func:`read_label_map`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kayan.checks import check_number, check_window
from kayan.errors import KayanError
from kayan.model import settings
from kayan.model.backends import ONNX_FILES, TorchBackend, check_threads, choose_backend, open_onnx, resolve_precision
from kayan.model.decoding import DECODERS
from kayan.model.ensemble import Ensemble
from kayan.model.location import is_ensemble, locate
from kayan.model.modeling import check_local_folder, load_trained, position_limit
from kayan.model.settings import FILE, ModelSettings
from kayan.model.tagging import TaggingOptions, int_keys, score_words, tag_words
from kayan.run import RunFolder

DEFAULT_STRIDE = 128


def read_settings(folder: Path, run: RunFolder | None = None) -> ModelSettings | None:
    """The settings the folder's kayan.json stores, checked (:func:`kayan.model.settings.read`); ``None`` without one.

    A checkpoint of ``run`` has none: it takes the settings the run saved with its model, without
    the digest (a checkpoint's weights are not the saved model's), and before the run saved a model
    (mid-training, or stopped) those its config.yaml trains with: a checkpoint is always applied as
    it was trained, never with a plain folder's defaults.
    """
    stored = settings.read(folder)
    if stored is not None or run is None or not run.holds_checkpoint(folder):
        return stored
    saved = run.saved_model
    if saved is None:
        return settings.from_config(run.config(), scheme=settings.SCHEME) if run.config() else None
    stored = settings.read(saved)
    return dataclasses.replace(stored, weights_sha256=None) if stored is not None else None


def read_label_map(stored: ModelSettings | None, run: RunFolder | None) -> dict[str, str]:
    """The data's entity types renamed to the model's, as in training: the run's ``data.label_map``
    for a run's model or checkpoint, else kayan.json's ``label_map`` (``{}`` if none; the reader
    moves an older package's ``recipe.label_map`` there).

    >>> read_label_map(ModelSettings(label_map={"PER": "PERS"}), None)
    {'PER': 'PERS'}
    """
    if run is not None:
        return run.label_map()
    return dict(stored.label_map or {}) if stored is not None else {}


def tagging_options(folder: Path, stored: ModelSettings | None, id2label: Mapping[int, str], limit: int, *,
                    decoding: str | None = None, batch_size: int = 32) -> TaggingOptions:
    """The settings a model is applied with: kayan.json's (``stored``, checked by its reader), or defaults.

    Without kayan.json (a plain Hugging Face model) the window is the model's position limit, the
    stride 128 (at most a quarter of the window), no normalization and first-subword decoding, with a
    warning; a setting kayan.json leaves out takes the same default. ``decoding`` overrides the stored method.

    Raises:
        KayanError: kayan.json's labels differ from config.json's, its window exceeds ``limit``, or
            the ``decoding`` override is unknown.
    """
    where = folder / FILE
    if stored is None:
        warnings.warn(
            f"{folder} has no {FILE}: using it as a plain Hugging Face model (window {limit}, stride "
            f"{min(DEFAULT_STRIDE, limit // 4)}, no normalization, first-subword decoding); package it with "
            "`kayan package` to store its settings", stacklevel=3)
        stored = ModelSettings()
    labels = [id2label[i] for i in range(len(id2label))]
    if stored.labels is not None and list(stored.labels) != labels:
        raise KayanError(f"{where}: labels {list(stored.labels)} differ from config.json's labels {labels}; "
                         "the folder mixes two models: re-package it with `kayan package`")
    check_batch_size(batch_size)
    window = limit if stored.window is None else stored.window
    check_window(window, limit=limit, where=str(where))
    stride = min(DEFAULT_STRIDE, window // 4) if stored.stride is None else stored.stride
    check_window(window, stride, where=str(where), fix=settings.REPACKAGE)
    return TaggingOptions(window=window, stride=stride, normalization=stored.normalization or (),
                          decoding=check_decoding(decoding, stored), batch_size=batch_size, context=stored.context or 0)


def check_decoding(decoding: str | None, stored: ModelSettings | None) -> str:
    """The decoding method: ``decoding`` when given, checked, else kayan.json's (``first`` by default)."""
    if not decoding:
        return (stored.decoding if stored is not None else None) or "first"
    if not isinstance(decoding, str) or decoding not in DECODERS:
        raise KayanError(f"decoding {decoding!r} (from the override) is not a decoding method; use one of: {', '.join(DECODERS)}")
    return decoding


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` if it is a whole number >= 1, else a KayanError that says what to give (:func:`kayan.checks.check_number`)."""
    return check_number("batch_size", batch_size, 1, whole=True, hint="windows per forward pass, e.g. 32")


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


def load_torch(folder: Path, device: str | None = None, *, stored: ModelSettings | None = None):
    """Tokenizer and PyTorch model of a folder, its files checked (see the module docstring); ``stored``:
    its settings when already read (:func:`read_settings`), whose weights digest is verified."""
    import torch

    stored = settings.read(folder) if stored is None else stored
    with quiet_loading():
        model, tokenizer = load_trained(folder, weights_sha256=stored.weights_sha256 if stored is not None else None)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer


@dataclass
class OpenModel:
    """One model opened for tagging (:func:`open_model`): what evaluation, prediction, export and packaging use.

    Args:
        folder: the model folder.
        stored: its kayan.json's settings (``None`` for a plain Hugging Face folder).
        id2label: label id → tag.
        options: window, stride, normalization, decoding and batch size.
        backend: the forward call (:mod:`kayan.model.backends`).
        tokenizer: the model's fast tokenizer.
        backend_name: ``torch``, ``onnx`` or ``onnx-int8``.
        label_map: the data's entity types renamed to the model's, as in training (:func:`read_label_map`).
    """

    folder: Path
    stored: ModelSettings | None
    id2label: dict[int, str]
    options: TaggingOptions
    backend: object
    tokenizer: object
    backend_name: str
    label_map: dict[str, str]

    @property
    def labels(self) -> list[str]:
        """The tags, in label-id order."""
        return [self.id2label[i] for i in range(len(self.id2label))]

    @property
    def model(self):
        """The PyTorch model behind the ``torch`` backend: what export and packaging save."""
        return self.backend.model

    @property
    def members(self) -> tuple[OpenModel, ...]:
        """The models whose backends run when this one tags: itself (an :class:`~kayan.model.ensemble.Ensemble` has several)."""
        return (self,)

    def settings(self) -> dict:
        """Window, stride, normalization, decoding and (PyTorch) precision, for reports."""
        o = self.options
        settings = {"window": o.window, "stride": o.stride, "normalization": list(o.normalization), "decoding": o.decoding,
                    "context": o.context}
        if isinstance(self.backend, TorchBackend):
            settings["precision"] = self.backend.precision
        return settings

    def word_scores(self, sentences: Sequence[Sequence[str]], documents: Sequence[object] | None = None) -> list[np.ndarray]:
        """Per sentence, ``(n_words, n_labels)`` logits (:func:`kayan.model.tagging.score_words`); ``documents``:
        per sentence, its document, for a model trained with document context (``None``: one document)."""
        return score_words(self.backend, self.tokenizer, sentences, self.options, n_labels=len(self.id2label),
                           documents=documents)

    def tag(self, sentences: Sequence[Sequence[str]], documents: Sequence[object] | None = None
            ) -> tuple[list[list[str]], list[np.ndarray]]:
        """Word tags and confidences per sentence (:func:`kayan.model.tagging.tag_words`)."""
        return tag_words(self.backend, self.tokenizer, sentences, self.options, id2label=self.id2label,
                         documents=documents)


def open_model(path: str | Path, *, backend: str = "auto", decoding: str | None = None, threads: int | None = None,
               batch_size: int = 32, device: str | None = None, precision: str = "fp32") -> OpenModel | Ensemble:
    """Open a model for tagging, its files and settings checked (see the module docstring).

    Args:
        path: a package, run folder, checkpoint, plain Hugging Face folder or ensemble package.
        backend: ``auto`` (ONNX when ``onnx/model.onnx`` exists and onnxruntime is installed, else
            PyTorch), ``torch``, ``onnx`` or ``onnx-int8``; an ensemble's members each choose.
        decoding: override the stored decoding: ``first`` or ``viterbi``.
        threads: CPU threads of the forward pass (default: one per physical core). For PyTorch,
            ``torch.set_num_threads(threads)`` while each forward pass runs, and PyTorch's count as it
            was after (the count is the process's: do not run models with different counts from two
            threads at once); for ONNX, the session's intra-op pool.
        batch_size: windows per forward call; bounds memory.
        device: PyTorch device (default: ``cuda`` when available, else ``cpu``).
        precision: PyTorch's arithmetic (:class:`~kayan.model.backends.TorchBackend`): ``fp32`` (the
            default), ``bf16``, or ``auto`` (bf16 where the device has it natively); ONNX backends
            take ``fp32`` or ``auto``.

    Returns:
        An :class:`OpenModel`, or an :class:`~kayan.model.ensemble.Ensemble` for an ensemble package.

    Raises:
        KayanError: missing or corrupt files, inconsistent settings, an unknown backend or method.
    """
    check_threads(threads)
    check_batch_size(batch_size)
    resolve_precision(precision, "cpu")  # an unknown name fails before anything loads
    folder, run = locate(path)
    if is_ensemble(folder):
        return _open_ensemble(folder, backend=backend, decoding=decoding, threads=threads, batch_size=batch_size,
                              device=device, precision=precision)
    check_local_folder(folder)
    chosen = choose_backend(folder, backend)
    stored = read_settings(folder, run)
    if chosen == "torch":
        model, tokenizer = load_torch(folder, device, stored=stored)
        engine, config = TorchBackend(model, precision=precision, threads=threads), model.config
    elif precision == "bf16":
        raise KayanError(f"{folder}: precision bf16 is PyTorch's, but the model opens on {chosen}; "
                         "add --backend torch (or give precision fp32 or auto)")
    else:
        tokenizer, config = _tokenizer_and_config(folder)
        engine = open_onnx(folder / ONNX_FILES[chosen], chosen, threads=threads)
    id2label = int_keys(config.id2label)
    options = tagging_options(folder, stored, id2label, position_limit(config, tokenizer), decoding=decoding, batch_size=batch_size)
    return OpenModel(folder, stored, id2label, options, engine, tokenizer, chosen, read_label_map(stored, run))


def _tokenizer_and_config(folder: Path):
    """The tokenizer and config of a model folder whose forward call is an ONNX file."""
    import transformers

    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder)), transformers.AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as error:
        raise KayanError(f"model folder {folder}: cannot load it ({str(error).splitlines()[0][:200]}); re-package the model") from None


def _open_ensemble(folder: Path, **options) -> Ensemble:
    """The members of an ensemble package, each opened with ``options``, checked to share its labels."""
    where = folder / FILE
    stored = settings.read(folder)
    if stored.ensemble is None or not stored.ensemble.members or stored.labels is None:
        raise KayanError(f"{where}: not an ensemble's kayan.json (labels, ensemble.members with a path each); "
                         "the file is damaged: re-package the ensemble with `kayan package`")
    labels = list(stored.labels)
    members = []
    for entry in stored.ensemble.members:
        member = open_model(folder / entry.path, **options)
        if not isinstance(member, OpenModel) or member.labels != labels:
            raise KayanError(f"{member.folder}: labels {member.labels} differ from the ensemble's {labels} in {where}; "
                             "re-package the ensemble with `kayan package`")
        members.append(member)
    decoding = check_decoding(options["decoding"], stored)
    # the data is read as the first member's was, as it is decoded as the first member decodes
    return Ensemble(folder, stored, dict(enumerate(labels)), decoding, tuple(members), members[0].label_map)
