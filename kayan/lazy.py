"""Lazy re-exports: a package names its public API, and each name's module is imported on first use.

Every package of Kayan (``kayan`` itself and each stage: data, model, evaluation, training,
inference) re-exports its public names this way (:pep:`562`), so importing a package, or one module
of it, loads only what that module imports: ``import kayan`` and ``kayan.data.schemes`` load no
torch, while ``kayan.load`` or ``kayan.training.train`` load it when first used. Kayan's own
modules import each name from the module that defines it, never through a package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence


def exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package whose public names live in its modules.

    Args:
        package: the package's ``__name__``.
        modules: each module (its name relative to ``package``) and the names it gives the package.

    >>> getattr_, dir_, names = exports("kayan", {"errors": ["KayanError"]})
    >>> names, getattr_("KayanError").__name__
    (['KayanError'], 'KayanError')
    """
    where = {name: f"{package}.{module}" for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # the next look-up finds it without this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
