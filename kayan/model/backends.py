"""The forward call of a model, behind one interface: PyTorch or onnxruntime.

A backend is any object with ``logits(input_ids, attention_mask) -> np.ndarray``: both arguments
``(batch, seq)`` int64 arrays, the result ``(batch, seq, n_labels)`` float32. Windows, batching,
decoding and offsets are shared (:mod:`kayan.model.tagging`); only this call differs between
:class:`TorchBackend` and :class:`OnnxBackend` (:func:`open_onnx` opens an exported file the way its
kind needs); :class:`TrimmedBackend` cuts a padded batch into rows of similar length. :func:`choose_backend`
says which one a model folder gets, :func:`torch_threads` how many CPU threads PyTorch uses while a model runs (and
:func:`set_threads`, for a program, in its whole process), and :func:`resolve_precision` whether
PyTorch multiplies in float32 or bfloat16.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from kayan.checks import check_number
from kayan.errors import KayanError
from kayan.model.choices import BACKENDS, ONNX_FILES, PRECISIONS


class TorchBackend:
    """The forward call of a PyTorch token-classification model.

    Args:
        model: a ``transformers`` token-classification model (any device).
        precision: ``fp32`` (the default: the scores of record), ``bf16`` (matrix products in bfloat16
            under autocast, weights kept in float32) or ``auto`` (``bf16`` where the device has it
            natively, see :func:`native_bf16`).
        threads: CPU threads of the forward passes (:func:`torch_threads`; default: PyTorch's count as it is).
    """

    def __init__(self, model: torch.nn.Module, *, precision: str = "fp32", threads: int | None = None):
        self.model = model
        self.config = model.config
        self.device = next(model.parameters()).device
        self.precision = resolve_precision(precision, self.device.type)
        self.threads = check_threads(threads)

    @torch.inference_mode()
    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Logits of one padded batch, as a float32 numpy array."""
        ids = torch.from_numpy(input_ids).to(self.device)
        mask = torch.from_numpy(attention_mask).to(self.device)
        forward = self.model
        if self.precision == "fp32":
            # Under mixed-precision training accelerate wraps the model's forward in autocast (and keeps
            # the plain one as _original_forward): dev and test scoring during training must not inherit it.
            forward = getattr(self.model, "_original_forward", self.model)
        with torch_threads(self.threads), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                          enabled=self.precision == "bf16"):
            logits = forward(input_ids=ids, attention_mask=mask).logits
        return logits.float().cpu().numpy()


def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` multiplies bfloat16 natively: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (x86) or the BF16 extension (Arm).

    oneDNN runs bfloat16 on any AVX512 CPU, but without these instructions it converts and is no
    faster than float32, so ``auto`` asks for the instructions themselves (Linux's /proc/cpuinfo;
    elsewhere a CPU counts as without).
    """
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    try:
        return cpu_has_bf16(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return False


def cpu_has_bf16(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text lists a bfloat16 instruction set (x86 ``flags``, Arm ``Features``).

    >>> cpu_has_bf16("flags\t\t: fpu avx2 avx512f avx512_bf16"), cpu_has_bf16("flags\t\t: fpu avx2 avx512f")
    (True, False)
    """
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def resolve_precision(precision: str, device_type: str) -> str:
    """``fp32`` or ``bf16``: what ``precision`` means on ``device_type`` (``cpu``, ``cuda``).

    >>> resolve_precision("fp32", "cpu"), resolve_precision("bf16", "cpu")
    ('fp32', 'bf16')

    Raises:
        KayanError: the name is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise KayanError(f"precision {precision!r} is unknown; use one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device_type) else "fp32"
    return precision


def precision_note(precision: str, device_type: str) -> str | None:
    """Why ``auto`` ran in fp32 on ``device_type``, said once in a run's summary; None where it chose bf16
    or where the precision was given rather than chosen.

    >>> precision_note("fp32", "cpu") is None
    True
    """
    if precision != "auto" or resolve_precision(precision, device_type) == "bf16":
        return None
    if device_type == "cpu":
        return ("precision auto used fp32: this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 is "
                "emulated and no faster")
    return f"precision auto used fp32: this {device_type} device has no native bf16"


def as_backend(model):
    """A backend for ``model``: a PyTorch module is wrapped in :class:`TorchBackend`, a backend kept."""
    return TorchBackend(model) if isinstance(model, torch.nn.Module) else model


def onnx_runtime():
    """The onnxruntime module, or a KayanError that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise KayanError("ONNX needs onnxruntime and onnx; install them with: pip install 'kayan[onnx]'") from None
    return onnxruntime


class OnnxBackend:
    """The forward call of an exported model on onnxruntime (CPU).

    The session runs every graph optimization onnxruntime has, one intra-op pool of ``threads``
    threads that sleep rather than spin between calls (spinning threads steal the cores the Python
    side of tagging needs: tokenizing, decoding), and no inter-op pool (a single forward graph).

    Args:
        path: an ``.onnx`` file written by :func:`kayan.inference.export.export_onnx`.
        threads: intra-op threads (default: onnxruntime's choice, one per physical core).
    """

    def __init__(self, path: str | Path, *, threads: int | None = None):
        ort = onnx_runtime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            raise KayanError(f"{path}: cannot load the ONNX model ({str(error).splitlines()[0][:200]}); "
                             "re-run `kayan export MODEL --onnx`") from None
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.path = Path(path)

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Logits of one padded batch, as a float32 numpy array."""
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return self.session.run(None, feeds)[0].astype(np.float32, copy=False)


def length_groups(lengths: Sequence[int], *, waste: float = 0.25) -> list[list[int]]:
    """Cut rows sorted by length into groups whose padding stays under ``waste`` of their tokens.

    Args:
        lengths: row lengths, in ascending order.
        waste: the padding a group may add, as a fraction of its real tokens.

    Returns:
        Lists of row positions, in order; each group is padded to its last (longest) row.

    >>> length_groups([10, 11, 12, 40, 41])
    [[0, 1, 2], [3, 4]]
    >>> length_groups([])
    []
    """
    groups: list[list[int]] = []
    total = 0
    for row, length in enumerate(lengths):
        if groups and length * (len(groups[-1]) + 1) <= (1 + waste) * (total + length):
            groups[-1].append(row)
            total += length
        else:
            groups.append([row])
            total = length
    return groups


class TrimmedBackend:
    """A backend that runs each padded batch as sub-batches of similar length, padding trimmed.

    Each row's logits depend only on its own tokens (padding is masked), so for a float model the
    result equals the inner backend's on the whole batch, up to float rounding.

    Args:
        inner: a backend (``logits(input_ids, attention_mask)``) or a PyTorch model.
        waste: see :func:`length_groups`.
        alone: run every row by itself (groups of one), for a model whose logits for a row would
            otherwise depend on the rows beside it (see :func:`open_onnx`).
    """

    def __init__(self, inner, *, waste: float = 0.25, alone: bool = False):
        self.inner = as_backend(inner)
        self.waste = waste
        self.alone = alone

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Logits of one right-padded batch; rows past their length are zeros."""
        lengths = attention_mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        groups = [[row] for row in range(len(order))] if self.alone else length_groups(lengths[order].tolist(), waste=self.waste)
        out = None
        for group in groups:
            rows = order[group]
            width = int(lengths[rows].max())
            part = self.inner.logits(input_ids[rows, :width], attention_mask[rows, :width])
            if out is None:
                out = np.zeros((*input_ids.shape, part.shape[-1]), dtype=np.float32)
            out[rows, :width] = part
        return out if out is not None else np.zeros((*input_ids.shape, 0), dtype=np.float32)


def open_onnx(path: str | Path, name: str, *, threads: int | None = None):
    """The backend of the ONNX file of backend ``name`` (``onnx`` or ``onnx-int8``) at ``path``.

    The int8 model runs each window alone: it is quantized dynamically, so it scales its activations
    by their range over the whole call, and in a batch a window's logits would depend on the windows
    beside it and on their padding (of ANERcorp test's first 40 sentences, 7 got other entities in one
    batch than alone, and a server's answer depended on what else it was tagging). Alone, a text's
    answer is always the same; on the development machine that ran at 1.13× the batched words/s at one
    thread and 0.94× at two, and scored 0.58 test F1 points lower on me5-small.
    """
    engine = OnnxBackend(path, threads=threads)
    return TrimmedBackend(engine, alone=True) if name == "onnx-int8" else engine


def choose_backend(folder: Path, backend: str) -> str:
    """``torch``, ``onnx`` or ``onnx-int8``: what ``backend`` resolves to for this model folder.

    ``auto`` is ONNX when ``onnx/model.onnx`` exists and onnxruntime is installed, else PyTorch.

    Raises:
        KayanError: the name is unknown, or the ONNX file or onnxruntime it needs is missing.
    """
    if backend not in BACKENDS:
        raise KayanError(f"backend {backend!r} is unknown; use one of: {', '.join(BACKENDS)}")
    try:
        import onnxruntime  # noqa: F401

        runtime = True
    except ImportError:
        runtime = False
    if backend == "auto":
        return "onnx" if runtime and (folder / ONNX_FILES["onnx"]).is_file() else "torch"
    if backend != "torch":
        if not (folder / ONNX_FILES[backend]).is_file():
            flag = " --quantize int8" if backend == "onnx-int8" else ""
            raise KayanError(f"{folder / ONNX_FILES[backend]} does not exist; run `kayan export {folder} --onnx{flag}` first")
        if not runtime:
            raise KayanError("backend onnx needs onnxruntime; install it with: pip install 'kayan[onnx]'")
    return backend


def check_threads(threads: object) -> int | None:
    """``threads`` if it is ``None`` or a whole number >= 1, else a KayanError that says what to give.

    >>> check_threads(2), check_threads(None)
    (2, None)
    """
    if threads is not None:
        check_number("threads", threads, 1, whole=True, hint="e.g. the machine's physical cores, or None for the default")
    return threads


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for PyTorch in this whole process (``None``: keep its default, one per core).

    For a program (the command line, a benchmark): the library itself changes the count only while
    a model runs (:func:`torch_threads`).
    """
    if check_threads(threads) is not None:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch uses ``threads`` CPU threads while the block runs, and the count it had after (``None``: no change).

    The count is the process's (per thread that runs the block): two threads that run models with
    different counts at the same time see each other's.

    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    previous = torch.get_num_threads()
    if check_threads(threads) is None or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
