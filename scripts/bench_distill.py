"""A teacher and its distilled student side by side in one run: test F1, words/s per backend, size.

    python scripts/bench_distill.py TEACHER_PACKAGE STUDENT_PACKAGE [--fp32-only] [--int8] [--threads N]

Each package is tagged on all of ANERcorp test (every word, seqeval default) and timed on the same
sentences as running text with Kayan's Predictor, after one warm-up call: PyTorch fp32, PyTorch bf16
(skipped with ``--fp32-only``, the path a CPU without native bf16 takes) and, with ``--int8``, ONNX
int8 (exported into the package first when it has none). The plain ``transformers.pipeline`` on the
teacher package is the reference row, as in ``scripts/benchmark.py``. The machine (CPU kind and
instruction sets) and the load average go with the table: a comparison is one run on an idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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


def measure(package: Path, backend: str, precision: str, lines: list[str], threads: int | None) -> dict:
    """F1 on every test word, and words/s tagging the test text, of one package on one backend."""
    from kayan.evaluation.model_scoring import evaluate_model

    report, _, _ = evaluate_model(package, "anercorp:test", backend=backend, precision=precision, bootstrap_samples=0)
    text = "\n".join(lines)
    seconds, _, note = bench_predict.bench_predictor(package, text, "\n".join(lines[:8]), backend, 32, threads, precision)
    words = sum(len(line.split()) for line in lines)
    return {"f1": report["default"]["micro"]["f1"], "words_per_second": round(words / seconds, 1), "note": note}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("student", type=Path)
    parser.add_argument("--fp32-only", action="store_true", help="no bf16 rows: what a CPU without native bf16 runs")
    parser.add_argument("--int8", action="store_true", help="also ONNX int8 of the student (exported when missing)")
    parser.add_argument("--threads", type=int, help="PyTorch and onnxruntime threads (default: one per core)")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    check_out(args.out)  # before anything is measured
    if (SHARED / "data").is_dir():
        os.environ.setdefault("KAYAN_DATA_DIR", str(SHARED / "data"))
    from kayan.data import corpora

    lines = [" ".join(s.words) for s in corpora.load_split("anercorp:test").sentences]
    rows = []
    seconds, (entities, note) = bench_predict.timed(bench_predict.pipeline_runner(args.teacher, lines, 32, args.threads))
    rows.append({"system": "pipeline (teacher package)", "backend": "transformers.pipeline fp32", "f1": None,
                 "words_per_second": round(sum(len(x.split()) for x in lines) / seconds, 1), "mb": folder_mb(args.teacher)})
    precisions = ["fp32"] if args.fp32_only else ["fp32", "bf16"]
    for name, package in (("teacher", args.teacher), ("student", args.student)):
        for precision in precisions:
            rows.append({"system": name, "backend": f"torch {precision}", "mb": folder_mb(package),
                         **measure(package, "torch", precision, lines, args.threads)})
    if args.int8:
        if not (args.student / "onnx" / "model.int8.onnx").is_file():
            from kayan.inference.export import export_onnx

            # force: the table reports the int8 F1 loss rather than stopping on it (as scripts/benchmark.py)
            export_onnx(args.student, quantize="int8", force=True, threads=args.threads)
        rows.append({"system": "student", "backend": "onnx int8", "mb": folder_mb(args.student, onnx=True),
                     **measure(args.student, "onnx-int8", "fp32", lines, args.threads)})
    base = rows[0]["words_per_second"]
    teacher = next(r for r in rows if r["system"] == "teacher")
    print(f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, "
          f"{' '.join(sys.argv)}; load average {os.getloadavg()[0]:.1f}; {json.dumps(machine())}")
    print("| system | backend | test F1 | F1 vs teacher | words/s | × pipeline | MB |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        f1 = "–" if r["f1"] is None else f"{100 * r['f1']:.2f}"
        loss = "–" if r["f1"] is None else f"{100 * (r['f1'] - teacher['f1']):+.2f}"
        print(f"| {r['system']} | {r['backend']} | {f1} | {loss} | {r['words_per_second']:,.0f} | "
              f"{r['words_per_second'] / base:.2f}× | {r['mb']:,.0f} |")
    if args.out:
        write_text(args.out, json.dumps({"argv": sys.argv, "machine": machine(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
