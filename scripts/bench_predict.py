"""Words per second tagging ANERcorp test text with a package: pipeline vs Predictor (PyTorch, ONNX).

The same sentences (ANERcorp test, words joined by spaces) are tagged by:

* ``transformers.pipeline("token-classification", aggregation_strategy="first")`` on the package,
  one sentence string per input, ``batch_size`` set (it truncates sentences longer than the
  window; the count is printed);
* the Predictor with PyTorch, on the running text (one sentence per line);
* the Predictor with ONNX (float32 and int8), when ``kayan export MODEL --onnx --quantize int8`` has
  written them.

Each is warmed up on a few sentences first, then timed once over all of them.

    python scripts/bench_predict.py models/NAME [--limit N] [--batch-size 32] [--test PATH]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

DEFAULT_TEST = Path(os.environ.get("KAYAN_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / (
    "data/ANERcorp-CamelLabSplits/ANERCorp_CamelLab_test.txt"
)


def read_sentences(path: Path, limit: int | None) -> list[list[str]]:
    """The words of a ``word tag`` file, sentence by sentence (blank lines between sentences)."""
    sentences, words = [], []
    for line in path.read_text(encoding="utf-8-sig").splitlines() + [""]:
        if line.strip():
            words.append(line.split()[0])
        elif words:
            sentences.append(words)
            words = []
    return sentences[:limit] if limit else sentences


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def bench_pipeline(model: Path, lines: list[str], batch_size: int):
    """The plain transformers pipeline, one sentence string per input."""
    import transformers

    ner = transformers.pipeline("token-classification", model=str(model), aggregation_strategy="first", device="cpu")
    ner(lines[:8], batch_size=batch_size)
    seconds, results = timed(lambda: ner(lines, batch_size=batch_size))
    truncated = sum(len(ner.tokenizer(line)["input_ids"]) > ner.tokenizer.model_max_length for line in lines)
    return seconds, sum(len(r) for r in results), f"{truncated} sentences truncated at {ner.tokenizer.model_max_length} subwords"


def bench_predictor(model: Path, text: str, warmup: str, backend: str, batch_size: int):
    """The Kayan Predictor on the running text."""
    import kayan

    predictor = kayan.load(model, backend=backend, batch_size=batch_size)
    predictor.predict(warmup)
    seconds, entities = timed(lambda: predictor.predict(text))
    return seconds, len(entities), ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a folder written by `kayan package`")
    parser.add_argument("--limit", type=int, help="use only the first N test sentences")
    parser.add_argument("--batch-size", type=int, default=32, help="pipeline inputs / Predictor windows per batch")
    parser.add_argument("--test", type=Path, default=DEFAULT_TEST, help="ANERcorp test file (word tag)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    sentences = read_sentences(args.test, args.limit)
    lines = [" ".join(words) for words in sentences]
    text, warmup = "\n".join(lines), "\n".join(lines[:8])
    n_words = sum(map(len, sentences))
    print(f"{len(sentences)} sentences, {n_words} words; batch size {args.batch_size}; model {args.model}")

    rows = [("transformers pipeline", bench_pipeline(args.model, lines, args.batch_size))]
    rows.append(("Predictor, PyTorch", bench_predictor(args.model, text, warmup, "torch", args.batch_size)))
    for backend, file in (("onnx", "model.onnx"), ("onnx-int8", "model.int8.onnx")):
        if (args.model / "onnx" / file).is_file():
            rows.append((f"Predictor, ONNX {backend[5:] or 'fp32'}", bench_predictor(args.model, text, warmup, backend, args.batch_size)))
        else:
            print(f"(no onnx/{file}: run `kayan export {args.model} --onnx --quantize int8` to bench it)")

    base = rows[0][1][0]
    print(f"\n{'backend':<24}{'seconds':>9}{'words/s':>10}{'vs pipeline':>13}{'entities':>10}  note")
    for name, (seconds, entities, note) in rows:
        print(f"{name:<24}{seconds:>9.2f}{n_words / seconds:>10.0f}{base / seconds:>12.2f}x{entities:>10}  {note}")


if __name__ == "__main__":
    main()
