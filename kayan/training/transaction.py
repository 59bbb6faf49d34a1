"""An output folder written as a transaction: a run that fails changes nothing that was there.

:class:`OutputFolderTransaction` writes the run folder of ``kayan train`` (and the tune folder of
``kayan tune``); the run folder's layout, and reading it, are :mod:`kayan.run`'s (:class:`~kayan.run.RunFolder`).

1. :meth:`OutputFolderTransaction.check` runs before anything loads and touches nothing: the folder must be new,
   empty or a run (never a file, a folder holding the run's data, or anything else, whatever the flags:
   :mod:`kayan.outputs`), a new run may not mix into an existing one (unless ``--overwrite``),
   ``--resume`` needs a complete checkpoint, the output folder must be writable.
2. :meth:`OutputFolderTransaction.open` (main process only) makes the folder and writes config.yaml and the
   ``.kayan-output`` marker that names it a run. With
   ``--overwrite`` the previous run is first renamed aside, to ``.RUN.replaced-XXXX`` beside it (on
   the same filesystem, so nothing is copied); with ``--resume`` config.yaml and metrics.jsonl are
   kept in memory.
3. If the run then fails (a check that needs the model, such as its window limit; a load error;
   Ctrl-C or a crash) *before training wrote a new checkpoint*, :meth:`OutputFolderTransaction.fail` undoes step 2:
   the new folder goes and the previous run comes back, or the resumed run's files are restored.
   Once a new checkpoint exists the new run stands (it can be resumed) and :meth:`OutputFolderTransaction.commit`
   removes the replaced run. A process killed outright between the two leaves the previous run in
   ``.RUN.replaced-XXXX``, never deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from kayan import diskspace, outputs
from kayan.errors import KayanError
from kayan.model.modeling import WEIGHT_FILES
from kayan.model.settings import fixed_on_resume
from kayan.run import CONFIG, METRICS_LOG, TRAIN_LOG, RunFolder
from kayan.training.averaging import AVERAGE_FILE

# What a checkpoint was trained with: --resume refuses a config that changes these. Derived from kayan.json's
# schema: the config keys its fields record (training.window, training.context, data.label_map ...) and those
# that shape the checkpoints without being recorded there (data.dev_split, model.tiny ...).
FIXED_ON_RESUME = fixed_on_resume()
KEPT_ON_RESUME = (CONFIG, METRICS_LOG, TRAIN_LOG, outputs.MARKER)
_FIX = "start a new run with --set output.run_name=NEW"


def check_writable(run_dir: Path) -> None:
    """Fail with one line when ``run_dir`` cannot be created: under a file, or in a read-only folder."""
    ancestor = diskspace.nearest_existing(run_dir)
    if ancestor.exists() and not ancestor.is_dir():
        raise KayanError(f"cannot write the run folder {run_dir}: {ancestor} is a file, not a folder; "
                         "fix output.dir or output.run_name")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise KayanError(f"cannot write the run folder {run_dir}: {ancestor} is not writable (read-only or "
                         "another user's); set output.dir to a writable folder")


def _inputs(config: dict | None) -> list[Path]:
    """What a run reads, which its folder may not hold: the data files, the corpora folder, a local model folder,
    a distilled run's teacher and unlabelled text."""
    data, model = (config or {}).get("data") or {}, (config or {}).get("model") or {}
    distill = (config or {}).get("distill") or {}
    refs = [*data.get("train", []), *data.get("dev", []), *data.get("test", []), model.get("name"),
            data.get("dir") or os.environ.get("KAYAN_DATA_DIR"), distill.get("teacher"), *distill.get("unlabelled", [])]
    return outputs.ref_paths(refs) if config else []


def _damage(checkpoint: Path, needs: tuple[str, ...] = ()) -> str | None:
    """What keeps the Trainer from resuming from ``checkpoint`` (None: nothing found).

    The Trainer writes trainer_state.json last, so a checkpoint without it was cut off while saving;
    weights and torch files are read only as far as their headers, which a truncated file lacks.
    ``needs``: files the run writes after the Trainer's (the weight average), so their absence is a cut-off save too.
    """
    from safetensors import safe_open

    files = sorted(path for path in checkpoint.iterdir() if path.is_file())
    if not files:
        return "it is empty"
    if not any((checkpoint / name).is_file() for name in WEIGHT_FILES):
        return f"it holds no model weights ({WEIGHT_FILES[0]})"
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json, which the Trainer writes last: it was stopped while saving"
    except (UnicodeDecodeError, json.JSONDecodeError):
        state = None
    if not isinstance(state, dict):
        return "trainer_state.json is damaged"
    for name in needs:
        if not (checkpoint / name).is_file():
            return f"no {name}, which Kayan writes after the Trainer's files: it was stopped while saving"
    for path in files:
        if path.suffix == ".safetensors":
            try:
                with safe_open(str(path), framework="pt"):
                    pass
            except Exception as error:  # safetensors raises its own SafetensorError for any damage
                return f"{path.name} is damaged ({str(error)[:80]})"
        elif path.suffix in (".bin", ".pt", ".pth") and not zipfile.is_zipfile(path):
            return f"{path.name} is damaged (not the zip archive torch.save writes)"
    return None


def _check_resumable(run: RunFolder, *, refit: bool = False, needs: tuple[str, ...] = ()) -> None:
    """Refuse a --resume from a last checkpoint that is incomplete or damaged, naming it and the way on."""
    found = run.checkpoints(refit=refit)
    damage = _damage(found[-1], needs) if found else None
    if damage is None:
        return
    earlier = f"delete that folder to resume from {found[-2].name}, or " if len(found) > 1 else ""
    raise KayanError(f"{found[-1]}: cannot resume from this checkpoint ({damage}); {earlier}start the run again "
                     "with --overwrite instead of --resume")


@contextlib.contextmanager
def full_disk_stops_cleanly(checkpoints: Path, resumed_from: str | None) -> Iterator[None]:
    """Training inside: a full disk ends it in one line that says how to go on, not in a library's traceback.

    The checkpoint being saved when the disk filled is cut off; it is this process's own unfinished
    write, so it is removed (the checkpoint it resumed from, and every complete one, stay), and
    ``--resume`` then goes on from the newest complete checkpoint once space is freed.
    """
    try:
        yield
    except Exception as error:
        if not diskspace.is_full_disk(error, checkpoints):
            raise
        found = RunFolder.checkpoints_in(checkpoints)
        cut = found[-1] if found and str(found[-1]) != resumed_from and _damage(found[-1]) is not None else None
        if cut is not None:
            shutil.rmtree(cut, ignore_errors=True)
        free = diskspace.free_bytes(checkpoints) / 2**20
        removed = f"; its unfinished {cut.name} was removed" if cut is not None else ""
        going_on = ("free space and continue with --resume" if RunFolder.checkpoints_in(checkpoints)
                    else "free space and run the command again")
        raise KayanError(f"{checkpoints}: the disk is full ({free:.0f} MB free) while training wrote to it{removed}; "
                         f"{going_on}") from None


def _leaves(data: object, prefix: str) -> dict[str, object]:
    """``{"model.tiny.hidden_size": 32, ...}``: the dotted keys under ``prefix`` and their values."""
    if isinstance(data, dict):
        return {key: value for name, item in data.items() for key, value in _leaves(item, f"{prefix}.{name}").items()}
    return {prefix: data}


def _check_unchanged(run: RunFolder, config: dict) -> None:
    """Refuse a --resume whose config changes what the checkpoint was trained with (its model, data, windows)."""
    try:
        old = run.config()
    except KayanError:
        return  # a damaged snapshot: the new one replaces it
    for key in FIXED_ON_RESUME:
        section, *rest = key.split(".")
        before, after = old.get(section), config.get(section)
        for part in rest:
            before = before.get(part) if isinstance(before, dict) else None
            after = after.get(part) if isinstance(after, dict) else None
        if before is None:
            continue  # a key older runs did not record
        was_leaves, now_leaves = _leaves(before, key), _leaves(after, key)
        changed = sorted(k for k in set(was_leaves) | set(now_leaves) if was_leaves.get(k) != now_leaves.get(k))
        if changed:
            name = changed[0]
            was, now = was_leaves.get(name), now_leaves.get(name)
            raise KayanError(f"--resume with {name} changed ({was!r} → {now!r}): the checkpoints in {run.path} were "
                             f"trained with {was!r}; resume without that --set, or start a new run "
                             "(--set output.run_name=NEW, or --overwrite)")


def _average_needed(run: RunFolder, config: dict | None) -> tuple[str, ...]:
    """The weight average a --resume with ``training.ema_decay`` reads (:mod:`kayan.training.averaging`); refuses
    to turn the average on in a run whose checkpoints hold none. Its decay may change, as the learning rate may."""
    decay = ((config or {}).get("training") or {}).get("ema_decay") or 0
    if not decay:
        return ()
    try:
        before = (run.config().get("training") or {}).get("ema_decay") or 0.0
    except KayanError:
        return (AVERAGE_FILE,)  # a damaged snapshot: the checkpoint itself says whether it holds an average
    if not before:
        raise KayanError(f"--resume with training.ema_decay changed ({before!r} → {decay!r}): the checkpoints in "
                         f"{run.path} hold no weight average; resume without that --set, or start a new run "
                         "(--set output.run_name=NEW, or --overwrite)")
    return (AVERAGE_FILE,)


class OutputFolderTransaction:
    """One output folder (a run's, a tune's), changed only by a run that gets as far as a checkpoint (see the module docstring).

    Args:
        run_dir: ``output.dir/output.run_name``.
        resume: continue the run from its last checkpoint.
        overwrite: replace a run already there.
        kind: the kind of output the folder is (:mod:`kayan.outputs`): a run, or a tune folder.
    """

    def __init__(self, run_dir: Path, *, resume: bool, overwrite: bool, kind: str = outputs.RUN):
        self.run_dir, self.resume, self.overwrite, self.kind = Path(run_dir), resume, overwrite, kind
        self.checkpoint: str | None = None
        self._replaced: Path | None = None
        self._created: Path | None = None
        self._kept: dict[str, bytes | None] = {}
        self._opened = False

    def check(self, config: dict | None = None) -> str | None:
        """Refuse what would mix runs or cannot work; changes nothing. Returns the checkpoint to resume from.

        Args:
            config: the new run's config as plain data; with ``--resume``, the keys of
                :data:`FIXED_ON_RESUME` must equal the run's config.yaml. The folder may not hold its data.
        """
        run_dir, run = self.run_dir, RunFolder(self.run_dir)
        # never a file, a folder holding the run's data, or one that is not a run: whatever the flags
        outputs.check_replaceable(run_dir, self.kind, inputs=_inputs(config), overwrite=True, fix=_FIX)
        if self.resume:
            if not run_dir.is_dir():
                raise KayanError(f"{run_dir}: no such run to resume; run without --resume to start it")
            self.checkpoint = run.last_checkpoint()
            if self.checkpoint is None:  # stopped before its first checkpoint: nothing to continue
                raise KayanError(f"{run_dir}: no checkpoint to resume from (the run stopped before its first one); "
                                 "start it again with --overwrite instead of --resume")
            needs = _average_needed(run, config)
            _check_resumable(run, needs=needs)
            if config is not None:
                _check_unchanged(run, config)
                if config["training"]["refit"] and run.selection() is not None:
                    _check_resumable(run, refit=True, needs=needs)  # selection is done: the refit resumes from refit-checkpoints/
        elif run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())) and not self.overwrite:
            if self.kind == outputs.RUN and (run_dir / CONFIG).is_file() and run.last_checkpoint() is None \
                    and not run.model.is_dir():
                raise KayanError(f"{run_dir} holds a run that stopped before its first checkpoint (nothing to resume); "
                                 "pass --overwrite to start it again, or --set output.run_name=NEW")
            raise KayanError(f"{run_dir} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                             "or --set output.run_name=NEW")
        check_writable(run_dir)
        return self.checkpoint

    def open(self, write_config: Callable[[Path], object]) -> None:
        """Make the folder (the previous run renamed aside) and write config.yaml with ``write_config``."""
        run_dir = self.run_dir
        try:
            if self.resume:
                self._kept = {name: (run_dir / name).read_bytes() if (run_dir / name).is_file() else None
                              for name in KEPT_ON_RESUME}
            else:
                if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
                    self._replaced = run_dir.with_name(f".{run_dir.name}.replaced-{secrets.token_hex(4)}")
                    os.rename(run_dir, self._replaced)
                self._created = run_dir
                while not self._created.parent.exists():
                    self._created = self._created.parent
                if self._created.exists():  # an empty folder was there: leave it
                    self._created = None
                run_dir.mkdir(parents=True, exist_ok=True)
            self._opened = True
            write_config(run_dir / CONFIG)
            outputs.mark(run_dir, self.kind)
        except OSError as error:
            self.fail()
            raise KayanError(f"cannot write the run folder {run_dir}: {error.strerror or error}; "
                             "set output.dir to a writable folder") from None
        except BaseException:
            self.fail()
            raise

    def commit(self) -> None:
        """The new run stands: remove the run it replaced."""
        if self._replaced is not None:
            shutil.rmtree(self._replaced, ignore_errors=True)
            self._replaced = None
        self._opened = False

    def fail(self) -> None:
        """Undo :meth:`open`, unless training wrote a new checkpoint (then the new run stands)."""
        if not self._opened:
            return
        if RunFolder(self.run_dir).last_checkpoint() not in (None, self.checkpoint):
            self.commit()
            return
        self._opened = False
        if self.resume:
            for name, content in self._kept.items():
                path = self.run_dir / name
                if content is None:
                    path.unlink(missing_ok=True)
                else:  # the bytes as they were, renamed into place
                    tmp = path.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
                    tmp.write_bytes(content)
                    os.replace(tmp, path)
            return
        shutil.rmtree(self._created or self.run_dir, ignore_errors=True)
        if self._created is None:  # an empty folder was there before: leave it empty
            self.run_dir.mkdir(exist_ok=True)
        if self._replaced is not None:
            os.rename(self._replaced, self.run_dir)
            self._replaced = None
