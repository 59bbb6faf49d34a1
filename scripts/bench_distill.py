"""A teacher and its distilled student side by side in one run: test F1, words/s per backend, size.

    python scripts/bench_distill.py TEACHER_PACKAGE STUDENT_PACKAGE [--fp32-only] [--int8] [--onnx] [--threads N] [--repeat 5]

Each package is tagged on all of ANERcorp test (every word, seqeval default) and timed on the same
sentences as running text with Kayan's Predictor, after one warm-up call: PyTorch fp32, PyTorch bf16
(skipped with ``--fp32-only``, the path a CPU without native bf16 takes) and, with ``--int8``, ONNX
int8 (exported into each package first when it has none) and, with ``--onnx``, ONNX fp32. The plain ``transformers.pipeline`` on the
teacher package is the reference row, as in ``scripts/benchmark.py``. Every row is loaded and warmed
up first, then timed in turns for ``--repeat`` rounds; the median round counts and the range is shown
(two single-round runs of the same packages once disagreed by 1.5×). The machine (CPU kind and
instruction sets) and the load average go with the table: a comparison is one run on an idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

import bench_predict  # noqa: E402  (scripts/ on the path)
from kayan.atomic import write_text  # noqa: E402
from benchmark import SHARED  # noqa: E402
from benchmark.report import machine  # noqa: E402


def folder_mb(folder: Path, *, onnx: bool = False) -> float:
    """The package's size on disk (its onnx/ folder counted only when ``onnx``)."""
    files = [p for p in folder.rglob("*") if p.is_file() and (onnx or "onnx" not in p.relative_to(folder).parts)]
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)


def f1_on_test(package: Path, backend: str, precision: str) -> float:
    """F1 on every ANERcorp test word (seqeval default) of one package on one backend."""
    from kayan.evaluation.model_scoring import evaluate_model

    report, _, _ = evaluate_model(package, "anercorp:test", backend=backend, precision=precision, bootstrap_samples=0)
    return report["default"]["micro"]["f1"]


def timed_in_turns(runners: dict, repeat: int) -> dict[str, list[float]]:
    """Seconds of each warmed-up runner, ``repeat`` rounds with every runner once per round in turn,
    so that whatever else the machine does falls on all rows alike."""
    rounds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(max(1, repeat)):
        for name, run in runners.items():
            seconds, _ = bench_predict.timed(run)
            rounds[name].append(seconds)
    return rounds


def check_out(path: Path | None) -> None:
    """Refuse an --out that is a folder or a file this script did not write (it is replaced only then)."""
    if path is None or not path.exists():
        return
    try:
        ours = path.is_file() and {"argv", "machine", "rows"} <= set(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise SystemExit(f"{path} is not a result this script wrote; choose another --out file")


def rows_to_measure(args) -> list[dict]:
    """The table's rows, without numbers: system, package, backend, precision."""
    rows = [{"system": "pipeline (teacher package)", "package": args.teacher, "backend": "pipeline", "precision": "fp32"}]
    for name, package in (("teacher", args.teacher), ("student", args.student)):
        for precision in ["fp32"] if args.fp32_only else ["fp32", "bf16"]:
            rows.append({"system": name, "package": package, "backend": "torch", "precision": precision})
        for backend, asked in (("onnx", args.onnx), ("onnx-int8", args.int8)):
            if asked:
                rows.append({"system": name, "package": package, "backend": backend, "precision": "fp32"})
    return rows


def ensure_onnx(package: Path, threads: int | None) -> None:
    """Export ONNX (fp32 and int8) into the package when it has no int8 file."""
    if not (package / "onnx" / "model.int8.onnx").is_file():
        from kayan.inference.export import export_onnx

        # force: the table reports the int8 F1 loss rather than stopping on it (as scripts/benchmark.py)
        export_onnx(package, quantize="int8", force=True, threads=threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("student", type=Path)
    parser.add_argument("--fp32-only", action="store_true", help="no bf16 rows: what a CPU without native bf16 runs")
    parser.add_argument("--int8", action="store_true", help="also ONNX int8 of both packages (exported when missing)")
    parser.add_argument("--onnx", action="store_true", help="also ONNX fp32 of both packages (exported when missing)")
    parser.add_argument("--threads", type=int, help="PyTorch and onnxruntime threads (default: one per core)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds, rows in turns; the median counts (default 5)")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    check_out(args.out)  # before anything is measured
    if (SHARED / "data").is_dir():
        os.environ.setdefault("KAYAN_DATA_DIR", str(SHARED / "data"))
    from kayan.data import corpora

    lines = [" ".join(s.words) for s in corpora.load_split("anercorp:test").sentences]
    text, warmup, words = "\n".join(lines), "\n".join(lines[:8]), sum(len(x.split()) for x in lines)
    rows = rows_to_measure(args)
    runners = {}
    for i, row in enumerate(rows):
        if row["backend"] == "pipeline":
            runners[i] = bench_predict.pipeline_runner(row["package"], lines, 32, args.threads)
            row.update(f1=None, mb=folder_mb(row["package"]))
            continue
        if row["backend"] in ("onnx", "onnx-int8"):
            ensure_onnx(row["package"], args.threads)
        runners[i] = bench_predict.predictor_runner(row["package"], text, warmup, row["backend"], 32, args.threads, row["precision"])
        row.update(f1=f1_on_test(row["package"], row["backend"], row["precision"]),
                   mb=folder_mb(row["package"], onnx=row["backend"] != "torch"))
    load_before = os.getloadavg()[0]
    for i, seconds in timed_in_turns(runners, args.repeat).items():
        rows[i].update(words_per_second=round(words / statistics.median(seconds), 1),
                       rounds_words_per_second=[round(words / s, 1) for s in seconds])
    report(args, rows, load_before)


def report(args, rows: list[dict], load_before: float) -> None:
    """Print the table (median words/s of the rounds, their range) and write the JSON."""
    base = rows[0]["words_per_second"]
    teacher = next(r for r in rows if r["system"] == "teacher")
    print(f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, {' '.join(sys.argv)}; "
          f"load average {load_before:.1f} before timing, {os.getloadavg()[0]:.1f} after; {json.dumps(machine())}")
    print("| system | backend | test F1 | F1 vs teacher | words/s (median) | rounds | × pipeline | MB |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        f1 = "–" if r["f1"] is None else f"{100 * r['f1']:.2f}"
        loss = "–" if r["f1"] is None else f"{100 * (r['f1'] - teacher['f1']):+.2f}"
        spread = f"{min(r['rounds_words_per_second']):,.0f}–{max(r['rounds_words_per_second']):,.0f}"
        print(f"| {r['system']} | {r['backend']} {r['precision']} | {f1} | {loss} | {r['words_per_second']:,.0f} | {spread} | "
              f"{r['words_per_second'] / base:.2f}× | {r['mb']:,.0f} |")
    if args.out:
        rows = [dict(r, package=str(r["package"])) for r in rows]
        write_text(args.out, json.dumps({"argv": sys.argv, "machine": machine(), "load_average_before": load_before,
                                         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
