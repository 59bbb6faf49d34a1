"""Which levers move F1 on ANERcorp: the plain transformers recipe and Kayan's recipe variants, side by side.

Every row is trained in this one run, on the same encoder folder and data:

* ``plain``: the transformers token-classification guide's recipe as ``scripts/benchmark/plain.py`` writes it
  (``AutoModelForTokenClassification`` + ``Trainer``, first-subword labels, truncation, the last
  checkpoint) with the guide's settings: lr 5e-5, batch 16, 3 epochs, no warmup, seed 12345, all of
  ANERcorp train. Its test predictions are written out, so ``kayan compare`` can test against them.
* ``plain-selected``: the same plain recipe at the settings Kayan's recipe chose on dev (lr 1e-4, 6 epochs;
  batch 16, no warmup, seed 12345 as before). Set beside ``kayan-selected`` (same settings, same seed), the
  difference is Kayan's machinery alone (windows, Viterbi, dev selection, refit), with its p-value.
* Kayan rows: ``kayan train`` on the recipe config (``configs/anercorp-me5-small.yaml`` by default)
  with the row's settings changed; each gives dev F1 (the selected evaluation), test F1 of the
  dev-selected model and test F1 of the final model (the refit one when ``training.refit`` is on).
* Ensemble rows: ``kayan package RUN RUN ... OUT`` of some Kayan rows, evaluated on test.

For every row: the test F1's 95% bootstrap interval (1,000 resamples of sentences) and the paired
bootstrap p-value against the plain recipe (``kayan compare`` on the two predictions files); for a Kayan
row trained at a plain row's settings (:data:`EQUAL_SETTINGS`), also the difference and p-value against
that plain row. Test selects nothing: the rows are fixed in this file before anything runs.

Rows run ``--parallel`` at a time, each in its own process: several small runs share a GPU well;
on a CPU use ``--parallel 1`` (rows then take hours for me5-small). ``--deadline-minutes`` stops
what is still running then and reports what finished.

Usage (from the repository root; ANERcorp under $KAYAN_DATA_DIR or ../shared/data)::

    python scripts/quality.py --encoder models/me5-small --parallel 9 --out scripts/results/quality-me5-small
    python scripts/quality.py --report-only --work train/quality   # redo the tables from finished rows
    # Kayan's machinery at equal settings (plain recipe and Kayan both at lr 1e-4, 6 epochs), and averaged weights:
    python scripts/quality.py --encoder models/me5-small --parallel 4 --rows plain-selected,kayan-selected,kayan-ema --out scripts/results/quality-equal-settings-me5-small

Writes ``OUT.json`` (every number, the settings, the machine) and ``OUT.md`` (the lever table).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # kayan from this checkout, also when it is not installed
RECIPE = "configs/anercorp-me5-small.yaml"
TEST_REF = "anercorp:test"
PLAIN = {"learning_rate": 5e-5, "epochs": 3.0, "batch_size": 16, "eval_batch_size": 64, "scheduler": "linear",
         "warmup_ratio": 0.0, "weight_decay": 0.0, "seed": 12345, "train_ref": "anercorp:train"}
# The rows: name -> (what the lever is, --set overrides on the recipe config). Fixed before the run.
SELECTED = ["training.learning_rate=1e-4", "training.epochs=6"]  # chosen on dev in an earlier sweep (README)
# The plain recipe's rows: name -> (what, settings changed from PLAIN). "plain" runs always (every p is against it).
PLAIN_ROWS = {
    "plain": ("plain transformers recipe (guide settings)", {}),
    "plain-selected": ("plain transformers recipe at Kayan's chosen settings (lr 1e-4, 6 epochs)",
                       {"learning_rate": 1e-4, "epochs": 6.0}),
}
ROWS = {
    "kayan-plain-settings": ("Kayan with the plain recipe's settings (lr 5e-5, 3 epochs), refit",
                             ["training.learning_rate=5e-5", "training.epochs=3"]),
    "kayan-selected": ("the recipe: settings chosen on dev (lr 1e-4, 6 epochs), Viterbi, refit", SELECTED),
    "kayan-selected-seed1": ("the same, seed 1", [*SELECTED, "training.seed=1"]),
    "kayan-selected-seed2": ("the same, seed 2", [*SELECTED, "training.seed=2"]),
    "kayan-context": ("+ document context, 64 subwords each side", [*SELECTED, "training.context=64"]),
    "kayan-context-seed1": ("+ document context, seed 1", [*SELECTED, "training.context=64", "training.seed=1"]),
    "kayan-context-seed2": ("+ document context, seed 2", [*SELECTED, "training.context=64", "training.seed=2"]),
    "kayan-spread-dev": ("selected settings, dev spread over train (data.dev_split: spread)",
                         [*SELECTED, "data.dev_split=spread"]),
    "kayan-ema": ("+ averaged weights: an EMA of the weights, decay 0.999 (training.ema_decay)",
                  [*SELECTED, "training.ema_decay=0.999"]),
}
# Kayan rows trained at a plain row's settings (learning rate, epochs, batch, warmup, seed): the difference
# between the two is Kayan's machinery alone.
EQUAL_SETTINGS = {"kayan-plain-settings": "plain", "kayan-selected": "plain-selected"}
ENSEMBLES = {
    "ensemble-selected": ("ensemble of the 3 seeds of kayan-selected",
                          ["kayan-selected", "kayan-selected-seed1", "kayan-selected-seed2"]),
    "ensemble-context": ("ensemble of the 3 seeds of kayan-context",
                         ["kayan-context", "kayan-context-seed1", "kayan-context-seed2"]),
}


def kayan_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "kayan.cli", *arguments]


def run_row(name: str, overrides: Sequence[str], work: Path, encoder: str, recipe: str, deadline: float) -> dict:
    """``kayan train`` one row into WORK/NAME (its log in WORK/NAME.log)."""
    sets = [f"model.name={encoder}", f"output.dir={work}", f"output.run_name={name}", *overrides]
    command = kayan_command("train", str(REPO / recipe), "--quiet", "--overwrite", *[x for s in sets for x in ("--set", s)])
    return _run(name, command, work, deadline)


def run_plain(work: Path, encoder: str, deadline: float, smoke: bool, name: str = "plain") -> dict:
    """A plain recipe row in its own process (this script with --plain NAME)."""
    command = [sys.executable, __file__, "--plain", name, "--work", str(work), "--encoder", encoder] + (["--smoke"] if smoke else [])
    return _run(name, command, work, deadline)


def plain_folder(work: Path, name: str) -> Path:
    """Where a plain row's files go: WORK/plain for ``plain`` (as before), WORK/NAME/plain for the others
    (scripts/benchmark/plain.py writes into WORK/plain)."""
    return work / "plain" if name == "plain" else work / name / "plain"


def _run(name: str, command: list[str], work: Path, deadline: float) -> dict:
    started = time.time()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with (work / f"{name}.log").open("w", encoding="utf-8") as log:
        try:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                  timeout=max(1.0, deadline - time.time())).returncode
        except subprocess.TimeoutExpired:
            code = "deadline"
    print(f"{name}: status {code} after {time.time() - started:.0f} s", flush=True)
    return {"status": code, "seconds": round(time.time() - started, 1)}


def plain_child(work: Path, encoder: str, *, smoke: bool = False, name: str = "plain") -> None:
    """Body of a plain row's process: scripts/benchmark/plain.py's train_plain with the row's settings."""
    import torch

    sys.path.insert(0, str(REPO / "scripts"))
    from benchmark.plain import train_plain

    settings = {**PLAIN, **PLAIN_ROWS[name][1], "encoder_folder": encoder,
                "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if smoke:
        settings["epochs"] = 0.005
    folder = plain_folder(work, name)
    result = train_plain(settings, folder.parent)
    (folder / "result.json").write_text(json.dumps({**result, "settings": settings}, indent=2), encoding="utf-8")


def ensemble(name: str, members: Sequence[str], work: Path, deadline: float) -> dict:
    """Package the members into one ensemble and tag the test split with it."""
    folder = work / name
    steps = [kayan_command("package", *[str(work / m) for m in members], str(folder), "--overwrite", "--quiet"),
             kayan_command("evaluate", str(folder), "--data", TEST_REF, "--out", str(folder / "test"), "--quiet")]
    result = {}
    for step in steps:
        result = _run(name, step, work, deadline)
        if result["status"] != 0:
            break
    return result


def predictions_of(work: Path, name: str) -> Path | None:
    """The test predictions file a row wrote (the final model's)."""
    folder = plain_folder(work, name) if name in PLAIN_ROWS else work / name
    for path in (folder / "test_predictions.txt", folder / "test" / "predictions.txt"):
        if path.is_file():
            return path
    return None


def score_row(work: Path, name: str, plain: Path | None) -> dict:
    """Test F1 with its interval, and the p-values against the plain recipe and (:data:`EQUAL_SETTINGS`) against
    the plain row at the same settings, from the row's predictions."""
    from kayan.evaluation import evaluate, read_predictions

    row: dict = {}
    found = predictions_of(work, name)
    if found is None:
        return row
    gold, predicted = read_predictions(found)
    report = evaluate(gold, predicted, bootstrap_samples=1000, seed=12345)
    micro = report["default"]["micro"]
    row["test_f1"] = micro["f1"]
    row["test_interval"] = [report["bootstrap"]["low"], report["bootstrap"]["high"]]
    if plain is not None and name != "plain":
        row["delta_vs_plain"], row["p_vs_plain"] = _paired(gold, predicted, plain, name, "plain")
    same = EQUAL_SETTINGS.get(name)
    baseline = predictions_of(work, same) if same else None
    if baseline is not None:
        row["equal_settings_plain"] = same
        row["delta_vs_equal_settings"], row["p_vs_equal_settings"] = _paired(gold, predicted, baseline, name, same)
    return row


def _paired(gold, predicted, other: Path, name: str, other_name: str) -> tuple[float, float]:
    """Δ F1 and the paired bootstrap p-value (``kayan compare``) of a row against another row's predictions."""
    from kayan.evaluation import compare, read_predictions

    _, other_tags = read_predictions(other)
    result = compare(gold, predicted, other_tags, samples=1000, seed=12345, names=(name, other_name))
    return result["delta"], result["paired_bootstrap"]["p_value"]


def run_details(work: Path, name: str) -> dict:
    """Dev F1 per evaluation, the selected epochs and the dev-selected model's test F1 of a Kayan row."""
    from kayan.run import RunFolder

    run = RunFolder(work / name)
    summary, selection = run.summary() or {}, run.selection() or {}
    curve = [round(entry["dev_f1"], 4) for entry in run.evaluations() if entry.get("dev_f1") is not None]
    return {"best_dev_f1": selection.get("best_dev_f1", summary.get("best_dev_f1")),
            "selected_epochs": selection.get("selected_epochs"),
            "test_f1_dev_selected": selection.get("test_f1"), "dev_curve": curve,
            "train_seconds": summary.get("train_seconds"), "wall_seconds": summary.get("wall_seconds")}


def report(work: Path, settings: dict) -> dict:
    plain = predictions_of(work, "plain")
    rows = []
    for name, (what, overrides) in {**{n: (w, []) for n, (w, _) in PLAIN_ROWS.items()}, **ROWS}.items():
        details = {"plain_settings": {**PLAIN, **PLAIN_ROWS[name][1]}} if name in PLAIN_ROWS else run_details(work, name)
        rows.append({"name": name, "lever": what, "set": overrides, **details} | score_row(work, name, plain))
    for name, (what, members) in ENSEMBLES.items():
        rows.append({"name": name, "lever": what, "members": members} | score_row(work, name, plain))
    return {"settings": settings, "rows": rows, "date": datetime.date.today().isoformat(),
            "machine": {"python": platform.python_version(), "gpu": _gpu()}}


def _gpu() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # a report without the device name is still a report
        return None


def markdown(result: dict) -> str:
    def pct(value) -> str:
        return "" if value is None else f"{100 * value:.2f}"

    def signed(value) -> str:
        return "" if value is None else f"{100 * value:+.2f}"

    def p_value(value) -> str:
        return "" if value is None else f"{value:.3f}"

    lines = ["| row | lever | dev F1 | test F1, dev-selected | test F1 (final) | 95% interval | Δ vs plain | p "
             "| plain at equal settings | Δ | p |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: |"]
    for row in result["rows"]:
        interval = row.get("test_interval")
        shown = f"{pct(interval[0])}–{pct(interval[1])}" if isinstance(interval, (list, tuple)) else ""
        cells = [row["name"], row["lever"], pct(row.get("best_dev_f1")), pct(row.get("test_f1_dev_selected")),
                 pct(row.get("test_f1")), shown, signed(row.get("delta_vs_plain")), p_value(row.get("p_vs_plain")),
                 row.get("equal_settings_plain", ""), signed(row.get("delta_vs_equal_settings")),
                 p_value(row.get("p_vs_equal_settings"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=str(REPO / "models" / "me5-small"), help="encoder folder (default models/me5-small)")
    parser.add_argument("--recipe", default=RECIPE, help=f"Kayan's recipe config (default {RECIPE})")
    parser.add_argument("--work", type=Path, default=REPO / "train" / "quality", help="run folders (default train/quality)")
    parser.add_argument("--out", type=Path, default=REPO / "scripts" / "results" / "quality-me5-small",
                        help="OUT.json and OUT.md (default scripts/results/quality-me5-small)")
    parser.add_argument("--parallel", type=int, default=1, help="rows trained at once (default 1)")
    parser.add_argument("--deadline-minutes", type=float, default=24 * 60, help="stop rows still running after this")
    parser.add_argument("--ensemble-minutes", type=float, default=10.0,
                        help="time the ensembles get after the rows, each packaged and tagging test (default 10)")
    parser.add_argument("--report-only", action="store_true", help="only redo the report from the finished rows in --work")
    parser.add_argument("--rows", help="comma-separated names: run only these rows (and the ensembles they complete); "
                                       "plain always runs, plain-selected only when named or without --rows")
    parser.add_argument("--smoke", action="store_true", help="2 training steps per row: checks the plumbing, measures nothing")
    parser.add_argument("--plain", choices=PLAIN_ROWS, help=argparse.SUPPRESS)  # a plain row's own process
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.plain:
        return plain_child(args.work, args.encoder, smoke=args.smoke, name=args.plain)
    settings = {"encoder": args.encoder, "recipe": args.recipe, "plain": PLAIN, "parallel": args.parallel,
                "command": " ".join(["python", "scripts/quality.py", *(argv if argv is not None else sys.argv[1:])])}
    if not args.report_only:
        deadline = time.time() + 60 * args.deadline_minutes
        asked = args.rows.split(",") if args.rows else None
        plains = [n for n in PLAIN_ROWS if n == "plain" or asked is None or n in asked]
        rows = {n: o for n, (_, o) in ROWS.items() if asked is None or n in asked}
        extra = ["training.max_steps=2"] if args.smoke else []
        jobs = [lambda n=n: run_plain(args.work, args.encoder, deadline, args.smoke, n) for n in plains]
        jobs += [lambda n=n, o=o: run_row(n, [*o, *extra], args.work, args.encoder, args.recipe, deadline) for n, o in rows.items()]
        with ThreadPoolExecutor(args.parallel) as pool:
            statuses = list(pool.map(lambda job: job(), jobs))
        settings["statuses"] = dict(zip([*plains, *rows], statuses))
        complete = {n: m for n, (_, m) in ENSEMBLES.items() if all(settings["statuses"].get(x, {}).get("status") == 0 for x in m)}
        until = time.time() + 60 * args.ensemble_minutes  # their own time: rows that ran late must not starve them
        with ThreadPoolExecutor(args.parallel) as pool:
            done = list(pool.map(lambda item: ensemble(item[0], item[1], args.work, until), complete.items()))
        settings["statuses"] |= dict(zip(complete, done))
    result = report(args.work, settings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
