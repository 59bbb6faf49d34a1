"""The backends and precisions a model runs with, by name: what the library accepts and the command line offers.

Nothing here imports torch, so ``kayan --help`` lists the choices without loading it. What each
name does is :mod:`kayan.model.backends`' business (:func:`~kayan.model.backends.choose_backend`,
:func:`~kayan.model.backends.resolve_precision`).
"""

ONNX_FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model.int8.onnx"}
"""The ONNX files ``kayan export`` writes into a package, by backend name."""
BACKENDS = ("auto", "torch", *ONNX_FILES)
"""``auto`` is ONNX when ``onnx/model.onnx`` exists and onnxruntime is installed, else PyTorch."""
PRECISIONS = ("fp32", "bf16", "auto")
"""PyTorch's arithmetic: float32, bfloat16 autocast, or ``auto`` (bfloat16 where the device has it natively)."""
