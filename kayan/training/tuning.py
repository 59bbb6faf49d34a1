"""Recipe selection on dev: ``kayan tune CONFIG`` searches training settings with Optuna.

Every trial is a normal run folder trained by :func:`kayan.training.train`, the function behind
``kayan train``, with the test split left unread and refit off: trials are ranked by their best dev
F1 and test plays no part in the search. After each dev evaluation a trial reports its dev F1 to
Optuna; a trial that lags the median of the earlier trials at the same evaluation (from its second
evaluation on) stops there, pruned, its run folder complete up to that point.

Tune folder (``tune/NAME``, NAME the config's ``output.run_name``)::

    config.yaml   the resolved base config, its tune: section included (--resume requires it unchanged)
    study.db      the Optuna study (SQLite): each trial's settings, dev F1 per evaluation, state
    trial-000/    one run folder per trial, as kayan train writes it (no test files)
    trials.csv    one row per trial: state, best dev F1, epochs run, seconds, settings (and trials.md)
    best.yaml     the base config with the best completed trial's settings: kayan train best.yaml

The space is the config's ``tune:`` section, keyed like the config (nested, or with dotted keys): a
list is a set of choices, a mapping ``{low, high}`` a range (``log: true`` samples it log-uniformly,
``step`` makes it discrete)::

    tune:
      training:
        learning_rate: {low: 1.0e-5, high: 2.0e-4, log: true}
        epochs: [3, 5, 8]
        label_all_subwords: [false, true]

A ``tune:`` section replaces the default space (:func:`default_space`, centred on the config's own
values). Any single-valued model or training setting may be searched except ``training.refit``.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import sys
import time
import typing
from pathlib import Path
from typing import Any

import yaml

from kayan import atomic, console, outputs
from kayan.config import RANGES, Config, save_config, with_values
from kayan.data.rundata import load_run_data
from kayan.errors import KayanError
from kayan.run import RunFolder
from kayan.training.transaction import OutputFolderTransaction
from kayan.training.trainer import train

DEFAULT_TRIALS = 20
STUDY = "kayan-tune"
COLUMNS = ("trial", "state", "dev_f1", "epochs_run", "seconds")


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched setting: a set of choices, or a range (``integer`` for int settings)."""

    key: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial) -> Any:
        """This setting's value for an Optuna trial."""
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)


def default_space(config: Config) -> list[Param]:
    """The space searched when the config has no ``tune:`` section, around the config's own values.

    Learning rate log-uniform from a fifth to 5 times the config's; epochs from half to twice; batch
    size and window halved, kept or doubled (windows above 512, most encoders' limit, only if the
    config's own is; none that the stride would not fit); warmup ratio 0 to 0.2; label_all_subwords
    either way.

    >>> [(p.key, p.choices or (p.low, p.high)) for p in default_space(Config())][1:]
    [('training.epochs', (2, 6)), ('training.batch_size', (16, 32, 64)), ('training.warmup_ratio', (0.0, 0.2)), \
('training.window', (256, 512)), ('training.label_all_subwords', (False, True))]
    """
    t = config.training
    windows = {t.window // 2, t.window, min(2 * t.window, max(t.window, 512))}
    return [
        Param("training.learning_rate", low=t.learning_rate / 5,
              high=min(t.learning_rate * 5, RANGES["training.learning_rate"][1]), log=True),
        Param("training.epochs", low=max(1, round(t.epochs / 2)), high=max(2, round(t.epochs * 2)), integer=True),
        Param("training.batch_size", choices=tuple(sorted({max(1, t.batch_size // 2), t.batch_size, 2 * t.batch_size}))),
        Param("training.warmup_ratio", low=0.0, high=0.2),
        Param("training.window", choices=tuple(sorted(w for w in windows if w > t.stride + 2))),
        Param("training.label_all_subwords", choices=(False, True)),
    ]


def _settings(cls: type = Config, prefix: str = "") -> tuple[dict[str, Any], set[str]]:
    """Every config setting's dotted key with its type, and the dotted names of the sections."""
    settings, sections = {}, set()
    for name, kind in typing.get_type_hints(cls).items():
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(kind):
            inner, below = _settings(kind, f"{key}.")
            settings.update(inner)
            sections |= below | {key}
        elif key != "tune":
            options = [o for o in typing.get_args(kind) if o is not type(None)] or [kind]
            settings[key] = options[0]  # str | None: str
    return settings, sections


def parse_space(config: Config) -> list[Param]:
    """The config's ``tune:`` section as parameters, every bound and choice checked as a config value would be.

    >>> parse_space(with_values(Config(), {"tune": {"training": {"epochs": [2, 4]}}}))
    [Param(key='training.epochs', choices=(2.0, 4.0), low=None, high=None, log=False, step=None, integer=False)]
    >>> parse_space(with_values(Config(), {"tune": {"training.epochs": 3}}))
    Traceback (most recent call last):
    kayan.errors.KayanError: tune.training.epochs: give a list of choices ([2, 3]) or a range ({low: 1, high: 5}), not 3
    """
    if not config.tune:
        return default_space(config)
    settings, sections = _settings()
    params: dict[str, Param] = {}

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, dict):
            raise KayanError(f"tune.{prefix}: expected a mapping of {prefix} settings, got {node!r}")
        for name, spec in node.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            if key in sections:
                walk(spec, key)
            elif key in settings:
                if key in params:
                    raise KayanError(f"tune.{key} is given twice; keep one")
                params[key] = _param(config, key, spec, settings[key])
            else:
                close = difflib.get_close_matches(key, list(settings), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise KayanError(f"tune.{key}: unknown config key{hint}; a space names model and training settings")

    walk(config.tune, "")
    return list(params.values())


def _as_setting(config: Config, key: str, value: Any) -> Any:
    """``value`` read as the config reads ``key`` (type, choices, range), else one line naming the tune key."""
    try:
        changed = with_values(config, {key: value})
    except KayanError as error:
        raise KayanError(f"tune.{key}: {error}") from None
    for part in key.split("."):
        changed = getattr(changed, part)
    return changed


def _param(config: Config, key: str, spec: Any, kind: type) -> Param:
    """One ``tune:`` entry as a :class:`Param`."""
    where = f"tune.{key}"
    if key.split(".")[0] in ("data", "output"):
        raise KayanError(f"{where}: data and output settings cannot be searched (every trial is scored on the same dev set); "
                         "search model and training settings")
    if key == "training.refit":
        raise KayanError(f"{where}: trials run without refit (they are scored on dev); set training.refit in the config, "
                         "and best.yaml keeps it")
    if kind not in (bool, int, float, str):
        raise KayanError(f"{where}: a {getattr(kind, '__name__', kind)} setting cannot be searched; search single values")
    if isinstance(spec, list):
        if not spec:
            raise KayanError(f"{where}: the list of choices is empty; give at least one")
        choices = tuple(_as_setting(config, key, value) for value in spec)
        return Param(key, choices=tuple(dict.fromkeys(choices)))
    if not isinstance(spec, dict):
        raise KayanError(f"{where}: give a list of choices ([2, 3]) or a range ({{low: 1, high: 5}}), not {spec!r}")
    if kind in (bool, str):
        raise KayanError(f"{where}: a {kind.__name__} setting takes a list of choices, e.g. {[False, True] if kind is bool else ['a', 'b']}")
    unknown = sorted(set(map(str, spec)) - {"low", "high", "log", "step"})
    if unknown or "low" not in spec or "high" not in spec:
        problem = f"unknown range key {unknown[0]!r}" if unknown else "a range needs both low and high"
        raise KayanError(f"{where}: {problem}; write {{low: L, high: H}}, with log: true or step: S if wanted")
    low, high = _as_setting(config, key, spec["low"]), _as_setting(config, key, spec["high"])
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise KayanError(f"{where}: log is {log!r}; it must be true or false")
    if low >= high:
        raise KayanError(f"{where}: low ({low}) must be less than high ({high})")
    if log and (step is not None or low <= 0):
        raise KayanError(f"{where}: log: true needs low > 0 (here {low}) and no step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0
                             or (kind is int and step != int(step))):
        raise KayanError(f"{where}: step is {step!r}; it must be a positive {'integer' if kind is int else 'number'}")
    return Param(key, low=low, high=high, log=log, step=step, integer=kind is int)


def tune(config: Config, *, trials: int | None = None, max_minutes: float | None = None, resume: bool = False,
         overwrite: bool = False, out_dir: str | Path = "tune", pruner=None) -> dict:
    """Search the config's space on dev, one run folder per trial, until ``trials`` trials have finished.

    Args:
        config: the validated base config; its ``tune:`` section is the space (default: :func:`default_space`).
        trials: finished (completed or pruned) trials wanted in the study, earlier runs' included
            (default: what the previous run asked for on --resume, else 20).
        max_minutes: start no trial after this many minutes of this command.
        resume: continue the study in the tune folder; trials left running or failed run again, once.
        overwrite: replace an existing tune folder.
        out_dir: the folder holding tune folders (``out_dir/NAME``).
        pruner: an Optuna pruner (default: median of the earlier trials, from a trial's second evaluation).

    Returns:
        ``tune_dir``, ``trials`` (the target), ``finished``, ``stopped`` ("time" or None), ``rows``, ``best``.
    """
    try:
        import optuna
    except ImportError:
        raise KayanError("kayan tune needs Optuna: pip install 'kayan[tune]'") from None

    space = parse_space(config)
    load_run_data(config.data, test=False)  # data errors before the tune folder is made
    tune_dir = Path(out_dir) / (config.output.run_name or "run")
    folder = _start(tune_dir, config, resume=resume, overwrite=overwrite)
    verbosity = optuna.logging.get_verbosity()
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # put back below: the program's setting
        study = optuna.create_study(
            storage=f"sqlite:///{(tune_dir / 'study.db').resolve()}", study_name=STUDY, direction="maximize",
            load_if_exists=resume, pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2))
        # A resumed sampler seeded as the first run's would repeat its first draws.
        study.sampler = optuna.samplers.TPESampler(seed=config.training.seed + len(study.trials))
        target = trials or study.user_attrs.get("trials", DEFAULT_TRIALS)
        study.set_user_attr("trials", target)
        if resume:
            _redo_unfinished(study)
        started, stopped = time.monotonic(), None
        while _finished(study) < target:
            _trial(study, config, space, tune_dir, target)
            if folder is not None:  # a first trial finished: the new tune stands
                folder.commit()
                folder = None
            if max_minutes is not None and time.monotonic() - started >= max_minutes * 60 and _finished(study) < target:
                stopped = "time"
                break
    except BaseException as error:
        _stopped(folder, tune_dir, error)
        raise
    finally:
        optuna.logging.set_verbosity(verbosity)
    rows, best = _write_outputs(study, config, space, tune_dir)
    return {"tune_dir": str(tune_dir), "trials": target, "finished": _finished(study), "stopped": stopped,
            "rows": rows, "best": best, "keys": [p.key for p in space]}


def _stopped(folder: OutputFolderTransaction | None, tune_dir: Path, error: BaseException) -> None:
    """A tune that failed or was stopped: it stands once a trial has trained (say how to resume it after
    Ctrl-C); else a new tune folder goes, and a tune it replaced comes back."""
    kept = folder is None or any(RunFolder(trial).checkpoints() for trial in tune_dir.glob("trial-*"))
    if folder is not None and kept:
        folder.commit()
    elif folder is not None:
        folder.fail()
    if isinstance(error, KeyboardInterrupt) and kept:
        print(f"kayan: tune stopped; `kayan tune ... --resume` continues {tune_dir}, running the stopped trial's "
              "settings again", file=sys.stderr)


def _start(tune_dir: Path, config: Config, *, resume: bool, overwrite: bool) -> OutputFolderTransaction | None:
    """A new tune folder (a OutputFolderTransaction: undone if no trial finishes), or the checks of a resumed one."""
    if not resume:
        folder = OutputFolderTransaction(tune_dir, resume=False, overwrite=overwrite, kind=outputs.TUNE)
        folder.check(config.to_dict())
        folder.open(lambda path: save_config(config, path))
        return folder
    outputs.check_replaceable(tune_dir, outputs.TUNE, overwrite=True, fix="start a new tune with --set output.run_name=NEW")
    if not (tune_dir / "study.db").is_file():
        raise KayanError(f"{tune_dir}: no study to resume (study.db is missing); run without --resume")
    saved = yaml.safe_load((tune_dir / "config.yaml").read_text(encoding="utf-8"))
    now = yaml.safe_load(yaml.safe_dump(config.to_dict(), allow_unicode=True, sort_keys=False))
    changed = _difference(saved, now)
    if changed:
        raise KayanError(f"--resume with a changed config ({changed}): the trials in {tune_dir} ran with its config.yaml; "
                         "resume with the same config and --set values, or start a new tune (--set output.run_name=NEW, "
                         "or --overwrite)")
    return None


def _difference(old: Any, new: Any, path: str = "") -> str | None:
    """The first setting that differs between two configs as plain data, as ``key old → new``.

    >>> _difference({"training": {"epochs": 2.0}}, {"training": {"epochs": 3.0}})
    'training.epochs 2.0 → 3.0'
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            found = _difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if old == new else f"{path} {old!r} → {new!r}"


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _redo_unfinished(study) -> None:
    """Trials a killed run left running become failed; each failed trial's settings run again, once."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    redone = {t.user_attrs.get("redo_of") for t in trials}
    for t in trials:
        if t.state == TrialState.RUNNING:
            study.tell(t.number, state=TrialState.FAIL)
        if t.state in (TrialState.RUNNING, TrialState.FAIL) and t.number not in redone:
            study.enqueue_trial(t.params, user_attrs={"redo_of": t.number})
            console.info(f"tune: trial-{t.number:03d} did not finish; its settings run again as a new trial")


def _trial(study, config: Config, space: list[Param], tune_dir: Path, target: int) -> None:
    """Ask Optuna for settings, train them as a run folder on dev only, and tell Optuna how it went."""
    from optuna.trial import TrialState

    trial = study.ask()
    name = f"trial-{trial.number:03d}"
    scores: list[float] = []
    pruned = False

    def on_evaluate(line: dict) -> bool:
        nonlocal pruned
        scores.append(line["dev_f1"])
        trial.report(line["dev_f1"], len(scores))
        pruned = trial.should_prune()
        return pruned

    started = time.perf_counter()
    try:
        params = {p.key: p.suggest(trial) for p in space}
        console.info(f"tune: {name} ({_finished(study) + 1} of {target}): {_settings_text(params)}")
        each = with_values(config, {**params, "training.refit": False,
                                    "output.dir": str(tune_dir), "output.run_name": name})
        summary = train(each, test=False, on_evaluate=on_evaluate)
        if not scores:
            raise KayanError("the trial ended before its first dev evaluation; give it more steps "
                             "(training.epochs, training.max_steps) or set training.eval_steps")
    except BaseException as error:
        study.tell(trial, state=TrialState.FAIL)
        _write_outputs(study, config, space, tune_dir)
        if isinstance(error, KayanError):  # say which settings failed
            raise KayanError(f"tune {name} ({_settings_text(params)}): {error}") from None
        raise
    trial.set_user_attr("dev_f1", max(scores))
    trial.set_user_attr("epochs", round(float(summary["epochs"] or 0), 2))
    trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
    if pruned:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, max(scores))
    console.info(f"tune: {name} {'pruned' if pruned else 'complete'}: best dev F1 {max(scores):.4f} after "
                 f"{float(summary['epochs'] or 0):g} epochs ({time.perf_counter() - started:.0f} s)")
    _write_outputs(study, config, space, tune_dir)


def _settings_text(params: dict) -> str:
    """``learning_rate 0.001, epochs 2``: settings as people read them.

    >>> _settings_text({"training.learning_rate": 0.00123456, "training.label_all_subwords": True})
    'learning_rate 0.00123, label_all_subwords True'
    """
    return ", ".join(f"{key.split('.')[-1]} {_cell(value)}" for key, value in params.items())


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def trial_rows(study, keys: list[str]) -> list[dict]:
    """One row per trial (waiting ones left out): number, state, best dev F1, epochs run, seconds, settings."""
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING:
            continue
        row = {"trial": t.number, "state": t.state.name.lower(), "dev_f1": t.user_attrs.get("dev_f1"),
               "epochs_run": t.user_attrs.get("epochs"), "seconds": t.user_attrs.get("seconds")}
        rows.append(row | {key: t.params.get(key) for key in keys})
    return rows


def trials_markdown(rows: list[dict], keys: list[str]) -> str:
    """The trials as a Markdown table (settings named by their last part).

    >>> print(trials_markdown([{"trial": 0, "state": "complete", "dev_f1": 0.51234, "epochs_run": 2.0, "seconds": 3.2,
    ...                         "training.learning_rate": 0.001}], ["training.learning_rate"]))
    | trial | state | dev F1 | epochs run | seconds | learning_rate |
    | ---: | --- | ---: | ---: | ---: | ---: |
    | 0 | complete | 0.5123 | 2 | 3.2 | 0.001 |
    """
    head = ["trial", "state", "dev F1", "epochs run", "seconds"] + [key.split(".")[-1] for key in keys]
    lines = ["| " + " | ".join(head) + " |", "| ---: | --- | ---: | ---: | ---: |" + " ---: |" * len(keys)]
    for row in rows:
        cells = [str(row["trial"]), row["state"], "-" if row["dev_f1"] is None else f"{row['dev_f1']:.4f}",
                 _cell(row["epochs_run"]), _cell(row["seconds"], 4)] + [_cell(row[key]) for key in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_outputs(study, config: Config, space: list[Param], tune_dir: Path) -> tuple[list[dict], dict | None]:
    """trials.csv, trials.md and (once a trial has completed) best.yaml; returns the rows and the best trial."""
    from optuna.trial import TrialState

    keys = [p.key for p in space]
    rows = trial_rows(study, keys)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=[*COLUMNS, *keys], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(tune_dir / "trials.csv", table.getvalue())
    atomic.write_text(tune_dir / "trials.md", trials_markdown(rows, keys) + "\n")
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return rows, None
    best = study.best_trial
    recipe = save_config(with_values(config, best.params), tune_dir / "best.yaml")
    return rows, {"trial": best.number, "dev_f1": best.value, "params": best.params, "recipe": str(recipe),
                  "run_dir": str(tune_dir / f"trial-{best.number:03d}")}
