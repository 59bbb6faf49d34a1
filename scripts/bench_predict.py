"""Words per second tagging ANERcorp test text with a package: pipeline vs Predictor (PyTorch, ONNX).

The same sentences (ANERcorp test, words joined by spaces) are tagged by:

* ``transformers.pipeline("token-classification", aggregation_strategy="first")`` on the package,
  one sentence string per input, ``batch_size`` set (it truncates sentences longer than the
  window; the count is printed);
* the Predictor with PyTorch, on the running text (one sentence per line), in float32 and in
  bfloat16 (``precision="bf16"``: fast only on CPUs with AVX512-BF16 or AMX);
* the Predictor with ONNX (float32 and int8), when ``kayan export MODEL --onnx --quantize int8`` has
  written them.

All of them are loaded first (with ``--threads`` CPU threads: PyTorch's pool and the onnxruntime
session's, through ``kayan.load(..., threads=N)``) and warmed up on a few sentences; then they are
timed in turns, ``--repeat`` rounds, so that on a shared machine each sees the same load; the best
round of each counts (the others only had less CPU). The load average is printed before and after.

    python scripts/bench_predict.py models/NAME [--limit N] [--batch-size 32] [--threads N] [--repeat 3] [--data REF]

The sentences come from kayan's corpus registry (``--data``, default ``anercorp:test``; a CoNLL file
path works too), under ``$KAYAN_DATA_DIR`` or ``--data-dir`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

from kayan.data import corpora

DEFAULT_DATA = Path(os.environ.get("KAYAN_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def pipeline_runner(model: Path, lines: list[str], batch_size: int, threads: int | None = None):
    """The plain transformers pipeline, one sentence string per input: a warmed-up call → (entities, note)."""
    import transformers

    from kayan.model.backends import set_threads

    set_threads(threads)
    ner = transformers.pipeline("token-classification", model=str(model), aggregation_strategy="first", device="cpu")
    ner(lines[:8], batch_size=batch_size)
    truncated = sum(len(ner.tokenizer(line)["input_ids"]) > ner.tokenizer.model_max_length for line in lines)
    note = f"{truncated} sentences truncated at {ner.tokenizer.model_max_length} subwords"
    return lambda: (sum(len(r) for r in ner(lines, batch_size=batch_size)), note)


def predictor_runner(model: Path, text: str, warmup: str, backend: str, batch_size: int, threads: int | None = None,
                     precision: str = "fp32"):
    """The Kayan Predictor on the running text: a warmed-up call → (entities, note)."""
    import kayan

    predictor = kayan.load(model, backend=backend, batch_size=batch_size, threads=threads, precision=precision)
    predictor.predict(warmup)
    note = f"precision {predictor.model.settings()['precision']}" if backend == "torch" else ""
    return lambda: (len(predictor.predict(text)), note)


def bench_pipeline(model: Path, lines: list[str], batch_size: int, threads: int | None = None):
    """The plain transformers pipeline, timed once: (seconds, entities, note)."""
    seconds, (entities, note) = timed(pipeline_runner(model, lines, batch_size, threads))
    return seconds, entities, note


def bench_predictor(model: Path, text: str, warmup: str, backend: str, batch_size: int, threads: int | None = None,
                    precision: str = "fp32"):
    """The Kayan Predictor on the running text, timed once: (seconds, entities, note)."""
    seconds, (entities, note) = timed(predictor_runner(model, text, warmup, backend, batch_size, threads, precision))
    return seconds, entities, note


def load_average() -> str:
    """The 1-minute load average (what else runs on the machine), or ``?`` where it is unknown."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a folder written by `kayan package`")
    parser.add_argument("--limit", type=int, help="use only the first N test sentences")
    parser.add_argument("--batch-size", type=int, default=32, help="pipeline inputs / Predictor windows per batch")
    parser.add_argument("--data", default="anercorp:test", help="corpus split or CoNLL file to tag (default anercorp:test)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the folder holding the registry's corpora")
    parser.add_argument("--threads", type=int, help="CPU threads of every backend (default: each library's, one per physical core)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds, backends in turns; the best round counts (default 3)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    sentences = [list(s.words) for s in corpora.load_split(args.data, root=args.data_dir).sentences[:args.limit]]
    lines = [" ".join(words) for words in sentences]
    text, warmup = "\n".join(lines), "\n".join(lines[:8])
    n_words = sum(map(len, sentences))
    print(f"{len(sentences)} sentences, {n_words} words; batch size {args.batch_size}; threads {args.threads or 'default'}; "
          f"model {args.model}; load average {load_average()}")

    runners = {"transformers pipeline": pipeline_runner(args.model, lines, args.batch_size, args.threads),
               "Predictor, PyTorch": predictor_runner(args.model, text, warmup, "torch", args.batch_size, args.threads),
               "Predictor, PyTorch bf16": predictor_runner(args.model, text, warmup, "torch", args.batch_size, args.threads, "bf16")}
    for backend, file in (("onnx", "model.onnx"), ("onnx-int8", "model.int8.onnx")):
        if (args.model / "onnx" / file).is_file():
            runners[f"Predictor, ONNX {backend[5:] or 'fp32'}"] = predictor_runner(args.model, text, warmup, backend, args.batch_size, args.threads)
        else:
            print(f"(no onnx/{file}: run `kayan export {args.model} --onnx --quantize int8` to bench it)")
    rounds: dict[str, list[float]] = {name: [] for name in runners}
    results = {}
    for _ in range(max(1, args.repeat)):
        for name, run in runners.items():
            seconds, results[name] = timed(run)
            rounds[name].append(seconds)

    base = min(rounds["transformers pipeline"])
    print(f"\n{'backend':<24}{'seconds':>9}{'words/s':>10}{'vs pipeline':>13}{'entities':>10}  rounds (s); note")
    for name, (entities, note) in results.items():
        seconds = min(rounds[name])
        spread = " ".join(f"{s:.2f}" for s in rounds[name])
        print(f"{name:<24}{seconds:>9.2f}{n_words / seconds:>10.0f}{base / seconds:>12.2f}x{entities:>10}  {spread}; {note}")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
