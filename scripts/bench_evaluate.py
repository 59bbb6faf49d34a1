"""Time evaluation on the ANERcorp test split: scoring a predictions file, and the bootstrap.

Writes a predictions file (the gold tags with seeded random flips, ill-formed sequences included)
to a temporary folder, then times reading + aligning + scoring it (both modes, error analysis,
no bootstrap), the 1,000-sample bootstrap interval, and the two significance tests.

    python scripts/bench_evaluate.py [--test PATH] [--samples 1000]

Targets: scoring well under 2 s, the bootstrap well under 30 s.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from kayan import evaluation, metrics, significance
from kayan.sentence import Sentence

DEFAULT_TEST = Path(os.environ.get("KAYAN_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / (
    "data/ANERcorp-CamelLabSplits/ANERCorp_CamelLab_test.txt"
)


def read_gold(path: Path) -> list[Sentence]:
    """Read a two-column ``word tag`` file (enough for this benchmark)."""
    sentences, rows = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines() + [""], start=1):
        if line.strip():
            rows.append(line.split())
        elif rows:
            words, tags = zip(*((r[0], r[-1]) for r in rows))
            sentences.append(Sentence(words, tags, source=str(path), line=number - len(rows)))
            rows = []
    return sentences


def corrupt(gold: list[Sentence], *, seed: int = 7, rate: float = 0.08) -> list[list[str]]:
    """Flip tags at random (to any label), so predictions hold ill-formed sequences too."""
    rng = random.Random(seed)
    labels = ["O"] + [f"{p}-{t}" for t in ("PERS", "LOC", "ORG", "MISC") for p in "BI"]
    return [[rng.choice(labels) if rng.random() < rate else tag for tag in s.tags] for s in gold]


def timed(label: str, call):
    start = time.perf_counter()
    result = call()
    print(f"{label:<58} {time.perf_counter() - start:7.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", type=Path, default=DEFAULT_TEST, help="ANERcorp test file (word tag)")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()

    gold = read_gold(args.test)
    pred = corrupt(gold)
    print(f"{len(gold)} sentences, {sum(map(len, gold))} words; {args.samples} resamples")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.txt"
        path.write_text(evaluation.predictions_text(gold, pred), encoding="utf-8")

        def score_file():
            sentences, tags = evaluation.read_predictions(path)
            evaluation.check_alignment(gold, sentences, pred_path=path)
            return evaluation.evaluate(gold, tags, bootstrap_samples=0)

        report = timed("read + align + score file (both modes, error analysis)", score_file)
    tags = [list(s.tags) for s in gold]
    timed("metrics.score, default mode only", lambda: metrics.score(tags, pred))
    pred_b = corrupt(gold, seed=8)
    types = metrics.entity_types(tags, pred, pred_b)
    counts = timed("sentence_counts", lambda: metrics.sentence_counts(tags, pred, types=types))
    counts_b = metrics.sentence_counts(tags, pred_b, types=types)
    low, high = timed("bootstrap_f1", lambda: significance.bootstrap_f1(counts, samples=args.samples))
    timed("paired_bootstrap", lambda: significance.paired_bootstrap(counts, counts_b, samples=args.samples))
    timed("approximate_randomization",
          lambda: significance.approximate_randomization(counts, counts_b, samples=args.samples))
    micro = report["default"]["micro"]
    print(f"micro F1 {100 * micro['f1']:.2f} (strict {100 * report['strict']['micro']['f1']:.2f}), "
          f"95% interval [{100 * low:.2f}, {100 * high:.2f}]")


if __name__ == "__main__":
    main()
