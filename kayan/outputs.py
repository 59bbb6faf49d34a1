"""What each command may replace: Kayan replaces only an output it can prove it wrote.

Every kind of output folder carries a marker, ``.kayan-output``, a small JSON object naming its kind
(``{"kind": "package", "kayan_version": "0.2.0"}``); folders that Kayan versions without markers
wrote are recognised by their own files (:data:`KINDS`). Before writing, a command calls
:func:`check_replaceable` (or builds its output with :func:`folder`, which calls it twice: first, and
again under the parent's lock just before the swap). It refuses, in one line naming the folder and
the fix:

- a file (or a link to one) where the folder goes: a file is never replaced by a folder;
- the current folder, or a folder holding it;
- a folder that is, or holds, one of the command's inputs (the model it scores, the corpus it
  exports, the run it packages);
- a non-empty folder that is not that kind of Kayan output, whatever the flags;
- that kind of output without ``overwrite`` (the commands whose output is cheap to write again,
  ``evaluate --out``, ``compare --out`` and ``export --onnx``, replace their own kind without a flag).

A new folder, or an empty one, is always fine. An output *inside* an input is allowed (``kayan
evaluate train/RUN --out train/RUN/eval``): it adds a folder and replaces only one of its own kind.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kayan import __version__, atomic
from kayan.errors import KayanError
from kayan.run import CONFIG, METRICS_LOG, SUMMARY, TRAIN_LOG, RunFolder, locate

MARKER = ".kayan-output"
RUN, TUNE, PACKAGE, EVALUATION, COMPARISON, DATASET, ONNX, TAGGED = (
    "run", "tune", "package", "evaluation", "comparison", "dataset", "onnx", "tagged")


def _files(*names: str) -> Callable[[Path], bool]:
    return lambda path: all((path / name).exists() for name in names)


def _older_run(path: Path) -> bool:
    return RunFolder.is_run(path) or ((path / CONFIG).is_file()
                                      and any((path / name).is_file() for name in (METRICS_LOG, TRAIN_LOG, SUMMARY)))


def _older_package(path: Path) -> bool:
    """kayan.json beside a model (or an ensemble's members/), and not a run's own model folder or checkpoint."""
    model = (path / "config.json").is_file() or (path / "members").is_dir()
    return (path / "kayan.json").is_file() and model and locate(path)[1] is None


def _older_dataset(path: Path) -> bool:
    card = path / "README.md"
    return (path / "data").is_dir() and card.is_file() and "Exported by `kayan data export" in card.read_text(
        encoding="utf-8", errors="replace")


@dataclass(frozen=True)
class Kind:
    """One kind of output: what messages call it, and how a folder without a marker is recognised."""

    noun: str
    older: Callable[[Path], bool]


KINDS = {
    RUN: Kind("a run folder of `kayan train`", _older_run),
    TUNE: Kind("a tune folder of `kayan tune`", _files(CONFIG, "study.db")),
    PACKAGE: Kind("a package of `kayan package`", _older_package),
    EVALUATION: Kind("an evaluation folder of `kayan evaluate --out`",
                     _files("predictions.txt", "metrics.json", "report.md")),
    COMPARISON: Kind("a comparison folder of `kayan compare --out`", _files("compare.json", "compare.md")),
    DATASET: Kind("a dataset folder of `kayan data export`", _older_dataset),
    ONNX: Kind("an ONNX folder of `kayan export --onnx`", lambda path: (path / "parity.json").is_file()),
    TAGGED: Kind("a tagged archive of `kayan predict --out`", lambda path: False),  # always marked
}


def kind_of(path: str | os.PathLike) -> str | None:
    """The kind of Kayan output the folder ``path`` is: its marker's, else the older files' (None: not Kayan's).

    >>> kind_of("/nonexistent")
    """
    path = Path(path)
    if not path.is_dir():
        return None
    marker = path / MARKER
    if marker.is_file():
        with contextlib.suppress(OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            kind = json.loads(marker.read_text(encoding="utf-8")).get("kind")
            return kind if kind in KINDS else None
        return None
    return next((name for name, kind in KINDS.items() if kind.older(path)), None)


def mark(folder: str | os.PathLike, kind: str) -> Path:
    """Write the marker that says ``folder`` is Kayan's output of ``kind``; returns its path."""
    return atomic.write_text(Path(folder) / MARKER, json.dumps({"kind": kind, "kayan_version": __version__}) + "\n")


def check_replaceable(out: str | os.PathLike, kind: str, *, inputs: Iterable[str | os.PathLike] = (),
                      overwrite: bool = False, fix: str = "choose another folder") -> Path:
    """Refuse to write ``kind`` at ``out`` unless it is new, empty, or that kind of Kayan output (see the module
    docstring); changes nothing. Returns ``out``.

    Args:
        out: the output folder a command is about to write.
        kind: the kind it writes (:data:`KINDS`).
        inputs: the files and folders the command reads (paths that do not exist are skipped).
        overwrite: whether an existing output of ``kind`` may be replaced.
        fix: the end of each message: what the user can do instead (``"choose another --out folder"``).

    >>> check_replaceable("/nonexistent/eval", EVALUATION)
    PosixPath('/nonexistent/eval')
    >>> check_replaceable(".", EVALUATION, fix="choose another --out folder")
    Traceback (most recent call last):
    kayan.errors.KayanError: . is the current folder or holds it: Kayan cannot replace the folder you are in; choose another --out folder
    """
    out = Path(out).expanduser()
    noun = KINDS[kind].noun
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise KayanError(f"{out} is a file: Kayan writes {noun} there and never replaces a file by a folder; {fix}")
    where, here = out.resolve(), Path.cwd().resolve()
    if where == here or where in here.parents:
        raise KayanError(f"{out} is the current folder or holds it: Kayan cannot replace the folder you are in; {fix}")
    for path in _existing(inputs):
        if path == where or where in path.parents:
            held = "is" if path == where else f"holds {path}, which is"
            raise KayanError(f"{out} {held} the command's own input: writing there would delete it; {fix}")
    if not out.is_dir() or not any(out.iterdir()):
        return out
    found = kind_of(out)
    if found != kind:
        what = f"it is {KINDS[found].noun}" if found else "no .kayan-output marker or files of Kayan's"
        raise KayanError(f"{out} is not {noun} ({what}): Kayan replaces only its own outputs of that kind, "
                         f"whatever the flags; {fix}")
    if not overwrite:
        raise KayanError(f"{out} already exists and holds {noun}; pass --overwrite to replace it, or {fix}")
    return out


def _existing(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """The resolved paths of those of ``paths`` that exist."""
    for path in paths:
        path = Path(path).expanduser()
        if path.exists():
            yield path.resolve()


def ref_paths(refs: Iterable[str | os.PathLike | None]) -> list[Path]:
    """The existing files and folders that data or model references name: ``PATH``, ``PATH:SPLIT``,
    ``parquet:PATH[:SPLIT]`` (a registry name such as ``anercorp:test`` names none).

    >>> ref_paths(["/", "json:/:train", None])
    [PosixPath('/'), PosixPath('/')]
    """
    found = []
    for ref in (str(r) for r in refs if r):
        prefix, sep, rest = ref.partition(":")
        body = rest if sep and prefix in ("hf", "parquet", "json") else ref
        found += [Path(p) for p in (body, body.rpartition(":")[0]) if p and Path(p).expanduser().exists()][:1]
    return found


@contextlib.contextmanager
def folder(out: str | os.PathLike, kind: str, *, inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False,
           fix: str = "choose another folder") -> Iterator[Path]:
    """:func:`kayan.atomic.folder` for an output of ``kind``: checked by :func:`check_replaceable` before the
    block and again just before the swap (under the parent's lock), and marked as ``kind``.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "eval"
    >>> with folder(target, EVALUATION) as tmp:
    ...     _ = (tmp / "metrics.json").write_text("{}")
    >>> kind_of(target)
    'evaluation'
    """
    inputs = list(inputs)
    check_replaceable(out, kind, inputs=inputs, overwrite=overwrite, fix=fix)

    def last_look(path: Path) -> None:  # atomic.folder has refused a non-empty target already, unless overwrite
        check_replaceable(path, kind, inputs=inputs, overwrite=True, fix=fix)

    with atomic.folder(out, overwrite=overwrite, check=last_look) as tmp:
        yield tmp
        mark(tmp, kind)
