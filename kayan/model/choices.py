"""The backends and precisions a model runs with, by name: what the library accepts and the command line
offers; and the CPU threads each of several models running at once gets.

Nothing here imports torch, so ``kayan --help`` lists the choices without loading it. What each
name does is :mod:`kayan.model.backends`' business (:func:`~kayan.model.backends.choose_backend`,
:func:`~kayan.model.backends.resolve_precision`).
"""

import os

ONNX_FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model.int8.onnx"}
"""The ONNX files ``kayan export`` writes into a package, by backend name."""
BACKENDS = ("auto", "torch", *ONNX_FILES)
"""``auto`` is ONNX when ``onnx/model.onnx`` exists and onnxruntime is installed, else PyTorch."""
PRECISIONS = ("fp32", "bf16", "auto")
"""PyTorch's arithmetic: float32, bfloat16 autocast, or ``auto`` (bfloat16 where the device has it natively)."""


def threads_per_worker(workers: int) -> int:
    """Intra-op threads for each of ``workers`` models running side by side (``kayan predict --workers``,
    ``kayan serve --workers``): the cores this process may use, shared out, at least one each.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)
