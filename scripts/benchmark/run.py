"""The benchmark command: settings, each phase in a fresh process, the report. See ``benchmark``'s
docstring for what is measured and how."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from kayan.atomic import write_text
from kayan.cli import ONEDNN_CACHE
from kayan.config import load_config
from kayan.data import corpora
from kayan.data.conll import write_conll

from . import (ME5_FOLDER, PARITY_SENTENCES, PHASES, PLAIN_MAX_LENGTH, QUICK_SENTENCES, RECIPES, REPO, SHARED, TEST_REF,
               TRAIN_REF)
from . import __doc__ as DESCRIPTION
from .report import PHASE_KEYS, markdown, machine, measures, versions, write_outputs


def settings_for(args: argparse.Namespace, work: Path) -> dict:
    """Everything both recipes share, from the Kayan recipe config and the command line."""
    config = load_config(REPO / RECIPES[args.encoder])
    t = config.training
    return {
        "encoder": args.encoder, "config": RECIPES[args.encoder], "quick": args.quick,
        "encoder_folder": str(work / "encoder" if args.encoder == "tiny" else ME5_FOLDER),
        "epochs": args.epochs or (1 if args.quick else t.epochs), "seed": t.seed if args.seed is None else args.seed,
        "learning_rate": t.learning_rate, "batch_size": t.batch_size, "eval_batch_size": t.eval_batch_size,
        "scheduler": t.scheduler, "warmup_ratio": t.warmup_ratio, "weight_decay": t.weight_decay,
        "train_sentences": args.train_sentences or (QUICK_SENTENCES if args.quick else None),
        "train_ref": TRAIN_REF, "test_ref": TEST_REF, "inference_batch_size": args.batch_size,
        "plain": {"max_length": PLAIN_MAX_LENGTH, "dev": None, "checkpoint": "last", "sampling": "random"},
        "kayan": {"window": t.window, "stride": t.stride, "dev_fraction": config.data.dev_fraction,
                  "select_best": t.select_best, "early_stopping_patience": t.early_stopping_patience,
                  "group_by_length": t.group_by_length, "onnx_parity_sentences": PARITY_SENTENCES},
        "tiny_shape": vars(config.model.tiny) if args.encoder == "tiny" else None, "device": "cpu",
        "threads": args.threads,  # None: each library's default (one per core)
        # fp32-only: what a CPU without native bf16 runs (precision auto falls back to fp32 there)
        "precision": "fp32" if args.fp32 else t.precision,
    }


def prepare_work(work: Path, settings: dict) -> None:
    """A fresh scratch folder, the settings the children read, and the training prefix when asked."""
    if work.exists():
        if any(work.iterdir()) and not (work / "settings.json").is_file():
            raise SystemExit(f"{work} holds files this script did not write; choose another --work folder")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if settings["train_sentences"]:
        sentences = corpora.load_split(TRAIN_REF).sentences[: settings["train_sentences"]]
        settings["train_ref"] = str(write_conll(sentences, work / f"anercorp-train-first-{len(sentences)}.txt"))
    if settings["encoder"] == "me5-small" and not (ME5_FOLDER / "config.json").is_file():
        raise SystemExit(f"{ME5_FOLDER} is missing; build it: "
                         f"python {SHARED}/tools/offline-encoder/build_me5_small.py models/me5-small")
    write_text(work / "settings.json", json.dumps(settings, indent=2))


def run_phase(phase: str, work: Path, index: int, total: int) -> dict:
    """Run one phase in a fresh Python process (no GPU visible); its log goes to WORK/logs/PHASE.log."""
    (work / "logs").mkdir(exist_ok=True)
    log = work / "logs" / f"{phase}.log"
    scripts = str(REPO / "scripts")  # the child imports benchmark and bench_predict from there
    path = os.pathsep.join(filter(None, [scripts, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": path}
    name, capacity = ONEDNN_CACHE  # oneDNN's cache bounded as `kayan train` bounds it (the phases call the library)
    env.setdefault(name, capacity)
    threads = json.loads((work / "settings.json").read_text(encoding="utf-8"))["threads"]
    if threads:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    print(f"[{index}/{total}] {phase} ...", end=" ", flush=True)
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        code = subprocess.call([sys.executable, "-m", "benchmark.phases", phase, str(work)],
                               stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    seconds = time.perf_counter() - started
    if code:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-25:])
        raise SystemExit(f"failed (status {code}); the end of {log}:\n{tail}")
    result = json.loads((work / f"{phase}.json").read_text(encoding="utf-8"))
    result["wall_seconds"] = round(seconds, 1)
    result["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # before, after: other work
    result["cores_used"] = round(result["cpu_seconds"] / seconds, 2)
    print(f"{seconds:.1f} s, {result['cores_used']:.1f} cores used, peak {result['peak_rss_mb']:.0f} MB, "
          f"load {load_before:.1f} → {os.getloadavg()[0]:.1f}", flush=True)
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION.splitlines()[0],
                                     epilog="scripts/benchmark/__init__.py's docstring says what is measured and how.")
    parser.add_argument("--encoder", choices=sorted(RECIPES), default="tiny",
                        help="tiny: built once from ANERcorp train words (configs/anercorp-tiny.yaml); "
                             "me5-small: models/me5-small (configs/anercorp-me5-small.yaml)")
    parser.add_argument("--quick", action="store_true",
                        help=f"1 epoch on the first {QUICK_SENTENCES} train sentences "
                             "(under 5 minutes on 2 CPU cores with tiny)")
    parser.add_argument("--epochs", type=float, help="override the recipe's epochs (both recipes)")
    parser.add_argument("--train-sentences", type=int, help="train on the first N ANERcorp train sentences (both recipes)")
    parser.add_argument("--seed", type=int, help="override the recipe's seed (both recipes)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads of every phase (PyTorch and onnxruntime); default: the libraries' choice, one "
                             "per core. Where other work holds cores, 1 avoids the oversubscription that otherwise "
                             "dominates the timings")
    parser.add_argument("--fp32", action="store_true",
                        help="fp32-only mode: Kayan trains and infers in float32 as on a CPU without native bf16 "
                             "(AVX512-BF16/AMX), whatever this CPU has")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="inference batch size: pipeline inputs / Predictor windows")
    parser.add_argument("--out", type=Path, default=REPO / "scripts" / "results",
                        help="folder for the JSON, Markdown and PNG (default: scripts/results)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: train/benchmark/ENCODER[-quick]); replaced")
    parser.add_argument("--redraw", type=Path, metavar="JSON",
                        help="only rewrite the Markdown table and the chart from a result JSON this script wrote")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if (SHARED / "data").is_dir():
        os.environ.setdefault("KAYAN_DATA_DIR", str(SHARED / "data"))
    stem = f"benchmark-{args.encoder}" + ("-quick" if args.quick else "") + ("-fp32" if args.fp32 else "")
    work = (args.work or REPO / "train" / "benchmark" / stem.removeprefix("benchmark-")).resolve()
    if args.redraw:
        report = json.loads(args.redraw.read_text(encoding="utf-8"))
        written = write_outputs(report, args.redraw.parent, args.redraw.stem)
        return print(f"wrote {', '.join(str(p) for p in written)}")
    started, date = time.perf_counter(), datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    host = machine()
    settings = settings_for(args, work)
    prepare_work(work, settings)
    todo = [phase for phase in PHASES if phase != "encoder" or args.encoder == "tiny"]
    phases = {phase: run_phase(phase, work, i, len(todo)) for i, phase in enumerate(todo, 1)}
    report = {
        "date": date, "command": " ".join(["python", *sys.argv]), "machine": host, "versions": versions(),
        "settings": settings, "phases": {name: {key: r[key] for key in PHASE_KEYS} for name, r in phases.items()},
        "plain": {"train": phases["plain-train"], "inference": phases["infer-pipeline"]},
        "kayan": {"train": phases["kayan-train"], "package": phases["kayan-package"],
                  "inference": {"torch": phases["infer-kayan-torch"], "torch_auto": phases["infer-kayan-torch-auto"],
                                "onnx_int8": phases["infer-kayan-onnx-int8"]}},
        "encoder": phases.get("encoder"),
    }
    report["measures"] = measures(phases, args.encoder)
    report["total_wall_seconds"] = round(time.perf_counter() - started, 1)
    written = write_outputs(report, args.out, stem)
    print("\n" + markdown(report))
    print(f"total {report['total_wall_seconds']:.0f} s; wrote {', '.join(str(p) for p in written)}")
