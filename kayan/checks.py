"""The number rules every stage checks, written once: what counts as a number, a range, a window.

The config, the command line, the library's keyword arguments and kayan.json all check numbers
with these; a caller only names the setting (and, on the command line, raises argparse's error
instead of :class:`~kayan.errors.KayanError`). Importing this module loads nothing but
:mod:`kayan.errors`, so every stage and top-level module may use it.
"""

from __future__ import annotations

import math

from kayan.errors import KayanError


def is_number(value: object, *, whole: bool = False) -> bool:
    """Whether ``value`` is an int (or, unless ``whole``, a float); True and False are not numbers.

    >>> is_number(2.0), is_number(2.0, whole=True), is_number(True)
    (True, False, False)
    """
    return not isinstance(value, bool) and isinstance(value, int if whole else (int, float))


def in_range(value: object, low: float | None = None, high: float | None = None, *, low_open: bool = False,
             whole: bool = False) -> bool:
    """Whether ``value`` is a finite number (:func:`is_number`) from ``low`` to ``high`` (None: unbounded;
    ``low_open`` excludes ``low`` itself).

    >>> in_range(0, 0, 1, low_open=True), in_range(float("inf"), 0), in_range(3, 1, whole=True)
    (False, False, True)
    """
    return (is_number(value, whole=whole) and math.isfinite(value)
            and (low is None or (value > low if low_open else value >= low)) and (high is None or value <= high))


def describe_range(low: float | None, high: float | None, low_open: bool = False) -> str:
    """The words for a range, as error messages give it.

    >>> describe_range(0, 1, True)
    'greater than 0 and at most 1'
    """
    parts = [f"{'greater than' if low_open else 'at least'} {low}"] if low is not None else []
    parts += [f"at most {high}"] if high is not None else []
    return " and ".join(parts)


def check_number(name: str, value: object, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, whole: bool = False, hint: str = "") -> object:
    """Return ``value`` if it is in range (:func:`in_range`), else raise KayanError naming ``name`` and the range.

    Args:
        name: what the message calls the setting (``config key training.epochs``, ``batch_size``).
        value: the number.
        low, high: the bounds (None: unbounded); ``low_open`` excludes ``low`` itself.
        whole: only whole numbers (ints) are valid.
        hint: said in brackets after the range (``e.g. 32``).

    >>> check_number("batch_size", 0, 1, whole=True, hint="windows per forward pass, e.g. 32")
    Traceback (most recent call last):
    kayan.errors.KayanError: batch_size is 0; it must be a whole number, at least 1 (windows per forward pass, e.g. 32)
    """
    if not in_range(value, low, high, low_open=low_open, whole=whole):
        kind = "a whole number, " if whole else ""
        raise KayanError(f"{name} is {value!r}; it must be {kind}{describe_range(low, high, low_open)}"
                         + (f" ({hint})" if hint else ""))
    return value


def check_window(window: int, stride: int | None = None, *, specials: int = 2, limit: int | None = None,
                 key: str = "", where: str = "", fix: str | None = None) -> int:
    """The window rule of :mod:`kayan.model.features`: a window holds the model's ``specials`` special tokens
    and at least one word's subword, and at most ``limit`` subwords (the model's positions); a stride
    repeats from 0 to fewer subwords than the words' room. Returns that room, ``window - specials``.

    Args:
        window, stride: subwords per window and of context repeated (None: not checked).
        specials: the special tokens in every window (2: ``[CLS] ... [SEP]``).
        limit: the most subwords the model takes (None: not checked).
        key: what the names start with in the message (``training.``: the config's keys).
        where: what the message starts with (the file or model whose setting it is).
        fix: the fix the message ends with (default: which setting to change, and how).

    >>> check_window(64, 62, where="pkg/kayan.json")
    Traceback (most recent call last):
    kayan.errors.KayanError: pkg/kayan.json: stride 62 must be at least 0 and less than the window minus 2 (62); lower stride (e.g. 15) or raise window
    """
    name, slide, prefix = f"{key}window", f"{key}stride", f"{where}: " if where else ""
    room = window - specials
    if window < max(3, specials + 1):
        raise KayanError(f"{prefix}{name} {window} leaves no room for words; it must be at least {max(3, specials + 1)} "
                         f"({specials} special tokens and a word); " + (fix or f"set {name} to the model's max length (e.g. 512)"))
    if limit is not None and window > limit:
        raise KayanError(f"{prefix}{name} {window} exceeds the model's limit of {limit} subwords; " + (fix or f"set {name} <= {limit}"))
    if stride is not None and not 0 <= stride < room:
        raise KayanError(f"{prefix}{slide} {stride} must be at least 0 and less than the {name} minus {specials} ({room}); "
                         + (fix or f"lower {slide} (e.g. {room // 4}) or raise {name}"))
    return room
