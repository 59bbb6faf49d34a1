"""Pictures of runs: ``curves.png`` (a run's training curves) and compare's per-type F1 chart.

matplotlib is imported only when a picture is drawn, with the Agg backend (no display needed).
Both functions are pure readers of what a run or a comparison already wrote; drawing changes no
score and no other file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

from kayan.run import RunFolder, checkpoint_step


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, figure, path: Path) -> Path:
    """Save ``figure`` as PNG at ``path`` atomically (a temporary name, then a rename) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            figure.savefig(out, format="png")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(figure)
    return path


def train_losses(run_dir: str | os.PathLike, rows: Sequence[dict]) -> tuple[list[int], list[float]]:
    """Train loss per logging step from the last checkpoint's ``trainer_state.json``, else per evaluation."""
    states = [state for checkpoint in RunFolder(run_dir).checkpoints()
              if (state := checkpoint / "trainer_state.json").is_file()]
    if states:
        logged = [x for x in json.loads(states[-1].read_text(encoding="utf-8")).get("log_history", []) if "loss" in x]
        if logged:
            return [x["step"] for x in logged], [x["loss"] for x in logged]
    kept = [r for r in rows if r.get("train_loss") is not None]
    return [r["step"] for r in kept], [r["train_loss"] for r in kept]


def selected_step(run_dir: str | os.PathLike, rows: Sequence[dict]) -> int | None:
    """The step of the selected model: summary.json's ``best_checkpoint``, else the best dev F1.

    >>> selected_step("/nonexistent", [{"step": 5, "dev_f1": 0.2}, {"step": 10, "dev_f1": 0.4}])
    10
    """
    step = checkpoint_step(str((RunFolder(run_dir).summary() or {}).get("best_checkpoint") or ""))
    if step is not None:
        return step
    scored = [r for r in rows if r.get("dev_f1") is not None]
    return max(scored, key=lambda r: (r["dev_f1"], -r["step"]))["step"] if scored else None


def write_curves(run_dir: str | os.PathLike) -> Path | None:
    """Draw ``run_dir/curves.png``: train loss and dev F1 per evaluation, the selected checkpoint marked.

    The train loss comes from the last checkpoint's log (every ``training.logging_steps``) when the
    run kept one, else from ``metrics.jsonl`` (the last logged loss at each evaluation).

    Args:
        run_dir: a run folder holding ``metrics.jsonl`` (and ``summary.json`` once training ended).

    Returns:
        The PNG's path, or None when the run has no evaluation yet.
    """
    run = RunFolder(run_dir)
    rows = run.evaluations()
    if not rows:
        return None
    plt = _pyplot()
    steps = [r["step"] for r in rows]
    figure, loss_axis = plt.subplots(figsize=(7, 3.6), dpi=110)
    loss_axis.plot(*train_losses(run_dir, rows), ".-", color="#c0504d", label="train loss")
    loss_axis.set_xlabel("optimizer step")
    loss_axis.set_ylabel("train loss", color="#c0504d")
    f1_axis = loss_axis.twinx()
    f1_axis.plot(steps, [100 * (r.get("dev_f1") or 0) for r in rows], "s-", color="#1f77b4", label="dev F1")
    f1_axis.set_ylabel("dev F1 (seqeval default, %)", color="#1f77b4")
    chosen = selected_step(run_dir, rows)
    if chosen is not None:
        f1_axis.axvline(chosen, color="#2ca02c", linestyle="--", label=f"selected (step {chosen})")
    handles = [h for axis in (loss_axis, f1_axis) for h in axis.get_legend_handles_labels()[0]]
    f1_axis.legend(handles, [h.get_label() for h in handles], loc="center right", fontsize=8)
    loss_axis.set_title(f"{run.path.name}: {len(rows)} evaluation(s)")
    figure.tight_layout()
    return _save(plt, figure, run.curves)


def write_compare_chart(result: dict, path: str | os.PathLike) -> Path:
    """Draw the two systems' per-type F1 with their bootstrap intervals (``compare.png``).

    Args:
        result: :func:`kayan.evaluation.compare`'s result with ``type_intervals``
            (``{system: {type: [low, high]}}``, from :func:`kayan.evaluation.significance.type_intervals`).
        path: the PNG to write.
    """
    plt = _pyplot()
    names = result["names"]
    scores = result["scores"]
    types = sorted(set(scores[names[0]]["types"]) | set(scores[names[1]]["types"])) + ["micro"]
    intervals = result.get("type_intervals", {})
    figure, axis = plt.subplots(figsize=(max(5, 1.1 * len(types) + 2), 3.6), dpi=110)
    width = 0.38
    labels = [Path(n).name or n for n in names]
    labels = labels if labels[0] != labels[1] else list(names)  # train/a/model vs train/b/model: the full paths
    for k, (name, colour) in enumerate(zip(names, ("#1f77b4", "#ff7f0e"))):
        f1 = [100 * (scores[name]["micro"] if t == "micro" else scores[name]["types"].get(t, {"f1": 0}))["f1"] for t in types]
        bounds = [intervals.get(name, {}).get(t) for t in types]
        errors = [[max(0.0, f - 100 * b[0]) if b else 0 for f, b in zip(f1, bounds)],
                  [max(0.0, 100 * b[1] - f) if b else 0 for f, b in zip(f1, bounds)]]
        axis.bar([i + (k - 0.5) * width for i in range(len(types))], f1, width, yerr=errors, capsize=3,
                 color=colour, label=labels[k])
    axis.set_xticks(range(len(types)), types)
    axis.set_ylabel("F1 (seqeval default, %)")
    axis.set_ylim(0, 100)
    axis.legend(fontsize=8)
    axis.set_title("F1 per type, 95% bootstrap intervals")
    figure.tight_layout()
    return _save(plt, figure, Path(path))
