"""transformers' hub kernels: code a GPU model load fetches from the Hugging Face Hub unless told not to.

transformers 5.2x loads every model with ``use_kernels`` on unless ``USE_HUB_KERNELS`` says no, and on a
CUDA device that means downloading kernels such as ``kernels-community/activation`` at load time. On a
machine without the hub (``HF_HUB_OFFLINE=1``, an air-gapped cluster) that load fails inside the
``kernels`` package, and where ``kernels`` is missing or of another version transformers refuses to load
at all. Neither is a bug in Kayan or in the user's files: :func:`fix_line` names the cause and the fix,
which the command line prints as one line with status 2 (seen on an H200 with transformers 5.25).
"""

from __future__ import annotations

import re

_OFFLINE = "Hugging Face Hub is in offline mode"
_UNAVAILABLE = "Kernels are not available"
_FIX = "set USE_HUB_KERNELS=NO to load the model without them (transformers' own layers) and run again"


def fix_line(error: BaseException) -> str | None:
    """The one line for a model load that failed on transformers' hub kernels, or ``None`` for any other error.

    >>> fix_line(ValueError("Version 1 of 'kernels-community/activation' is not available in the local cache "
    ...                     "and Hugging Face Hub is in offline mode. Download the kernel while online first."))[:94]
    "transformers asked for the hub kernel 'kernels-community/activation', which is not cached, and"
    >>> fix_line(ValueError("Kernels are not available. Please install a compatible version (0.19.1 <= version < 0.20.0)"))[:60]
    'transformers loads hub kernels by default and cannot: Kernel'
    >>> fix_line(ValueError("a bug")) is None
    True
    """
    text = str(error)
    if _OFFLINE in text and "kernel" in text.lower():
        found = re.search(r"'([\w.-]+/[\w.-]+)'", text)
        name = f"the hub kernel '{found.group(1)}'" if found else "a hub kernel"
        return (f"transformers asked for {name}, which is not cached, and the hub is offline; "
                f"{_FIX} (or fetch the kernel once while online)")
    if text.startswith(_UNAVAILABLE):
        return f"transformers loads hub kernels by default and cannot: {text.splitlines()[0][:160]}; {_FIX}"
    return None
