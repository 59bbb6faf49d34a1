"""What a finished training writes besides the model: test scores, summary.json and curves.png."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import torch
import transformers

from kayan import atomic
from kayan.data.rundata import RunData
from kayan.evaluation.curves import write_curves
from kayan.evaluation.predictions_file import predictions_text
from kayan.evaluation.scoring import evaluate
from kayan.model.backends import precision_note
from kayan.run import RunFolder
from kayan.training import averaging


def write_test_scores(run: RunFolder, trainer, data: RunData, *, dev_selected: bool = False) -> dict | None:
    """Score every word of the test split into the run's test_metrics and test_predictions files."""
    if data.test is None:
        return None
    gold = data.test.sentences
    predicted = trainer.tag(gold)
    report = evaluate(gold, predicted)
    report["data"] = {"refs": data.test.refs, "files": data.test.files}
    atomic.write_text(run.test_metrics_file(dev_selected=dev_selected), json.dumps(report, ensure_ascii=False, indent=2))
    atomic.write_text(run.test_predictions_file(dev_selected=dev_selected), predictions_text(gold, predicted))
    return report


def padding_fraction(trainer: transformers.Trainer) -> float:
    """Share of padding positions in one epoch of training batches as the sampler makes them."""
    real = total = 0
    for batch in trainer.get_train_dataloader():
        mask = batch["attention_mask"]
        real, total = real + int(mask.sum()), total + mask.numel()
    return 1 - real / total if total else 0.0


def peak_memory_mb() -> float:
    """Peak resident memory of this process (and the GPU's peak allocation, when there is one)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if torch.cuda.is_available():
        peak += torch.cuda.max_memory_allocated() / 2**20
    return round(peak, 1)


def scores_on_test(report: dict | None) -> dict:
    """The summary's test_f1 and test_f1_strict (None without a test split)."""
    return {"test_f1": report["default"]["micro"]["f1"] if report else None,
            "test_f1_strict": report["strict"]["micro"]["f1"] if report else None}


def summary(trainer, result, report: dict | None, *, run_dir: Path, data: RunData, padding: float,
            group_by_length: bool, started: float, precision_asked: str = "fp32") -> dict:
    """summary.json: selection, scores, throughput (evaluation time excluded), padding, time and memory."""
    train_seconds = result.metrics["train_runtime"] - trainer.eval_seconds
    tokens = trainer.state.num_input_tokens_seen
    return {
        "run_dir": str(run_dir), "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_dev_f1": trainer.state.best_metric, "steps": trainer.state.global_step, "epochs": trainer.state.epoch,
        **scores_on_test(report),
        "train_tokens": tokens, "train_seconds": round(train_seconds, 2),
        "train_tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1),
        "padding_fraction": round(padding, 4), "group_by_length": group_by_length,
        "embedding_rows_trained": trainer.embedding_rows_trained,  # null: the whole word embedding was trained
        "precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",  # training.precision resolved
        "precision_note": precision_note(precision_asked, "cpu" if trainer.args.use_cpu else trainer.args.device.type),
        "wall_seconds": round(time.perf_counter() - started, 2), "peak_memory_mb": peak_memory_mb(),
        "data_notes": data.train.notes + data.dev.notes + (data.test.notes if data.test else []),
        "data_warnings": data.dev.warnings + (data.test.warnings if data.test else []),  # printed by kayan train
    } | trainer.summary_notes() | averaging.summary_notes(trainer)


def finish(run: RunFolder, summary: dict) -> dict:
    """summary.json and curves.png (main process only: the others return an empty summary)."""
    if summary:
        atomic.write_text(run.summary_file, json.dumps(summary, ensure_ascii=False, indent=2))
        write_curves(run.path)
    return summary
