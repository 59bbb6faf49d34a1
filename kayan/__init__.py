"""Kayan (كيان): Arabic named-entity recognition on BERT-style encoders.

``kayan.load(path)`` returns a :class:`~kayan.inference.predict.Predictor`; it (and ``Predictor``,
``Entity``) are imported on first use, so ``import kayan`` stays cheap (no torch, no transformers).

The library is one subpackage per stage, each importing only the stages before it:
:mod:`kayan.data` → :mod:`kayan.model` → :mod:`kayan.evaluation` → :mod:`kayan.training` and
:mod:`kayan.inference` → :mod:`kayan.serve`; the modules at this level are shared by all of them
(:mod:`~kayan.config`, :mod:`~kayan.checks`, :mod:`~kayan.run`, :mod:`~kayan.errors`, :mod:`~kayan.atomic`,
:mod:`~kayan.files`, :mod:`~kayan.diskspace`, :mod:`~kayan.console`, :mod:`~kayan.lazy`) and :mod:`~kayan.cli` is the command.
"""

from kayan.lazy import exports

__version__ = "0.2.0"

__getattr__, __dir__, _exported = exports(__name__, {"inference.predict": ["Entity", "Predictor", "load"]})
__all__ = ["__version__", *_exported]
