"""Kayan (كيان): Arabic named-entity recognition on BERT-style encoders.

``kayan.load(path)`` returns a :class:`kayan.predict.Predictor`; it (and ``Predictor``, ``Entity``)
are imported on first use, so ``import kayan`` stays cheap (no torch, no transformers).
"""

__version__ = "0.1.0"

_LAZY = {"load": "kayan.predict", "Predictor": "kayan.predict", "Entity": "kayan.predict"}
__all__ = ["Entity", "Predictor", "__version__", "load"]


def __getattr__(name: str):
    """Import ``load``, ``Predictor`` and ``Entity`` from :mod:`kayan.predict` on first access."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kayan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
