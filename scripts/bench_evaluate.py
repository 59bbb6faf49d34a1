"""Time evaluation on the ANERcorp test split against its targets: scoring a file, the bootstrap.

Writes a predictions file (the gold tags with seeded random flips, ill-formed sequences included)
to a temporary folder, then times, each the best of ``--repeat`` rounds:

* scoring the file as ``kayan evaluate --predictions FILE`` does (read, check, seqeval's scores in
  both modes, error analysis, the default 1,000-sample bootstrap); target under 2 s. The whole
  command in a fresh process (Python start and imports included) is timed beside it;
* 1,000 bootstrap samples of micro F1, the per-sentence counts included; target under 1 s;
* the two significance tests (1,000 samples each) and seqeval's ``classification_report`` alone.

    python scripts/bench_evaluate.py [--data-dir ../shared/data] [--samples 1000] [--repeat 3]

Without ANERcorp (``$KAYAN_DATA_DIR`` or ``../shared/data``) it says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from kayan import evaluation
from kayan.data import corpora
from kayan.errors import KayanError
from kayan.evaluation import metrics, significance

DEFAULT_DATA = Path(os.environ.get("KAYAN_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
SCORE_TARGET_S, BOOTSTRAP_TARGET_S = 2.0, 1.0


def corrupt(gold: list[list[str]], *, seed: int = 7, rate: float = 0.08) -> list[list[str]]:
    """Flip tags at random (to any label), so predictions hold ill-formed sequences too."""
    rng = random.Random(seed)
    labels = ["O"] + [f"{p}-{t}" for t in ("PERS", "LOC", "ORG", "MISC") for p in "BI"]
    return [[rng.choice(labels) if rng.random() < rate else tag for tag in tags] for tags in gold]


def best_of(repeat: int, call) -> tuple[float, object]:
    """The shortest of ``repeat`` timed calls (the others only had less CPU), and the last result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return min(times), result


def child_cpu(command: list[str]) -> float:
    """CPU seconds (user + system) a command takes: on a shared machine, steadier than its wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def line(label: str, seconds: float, target: float | None = None) -> None:
    verdict = "" if target is None else f"  target < {target:g} s: {'met' if seconds < target else 'MISSED'}"
    print(f"{label:<62} {seconds:7.3f} s{verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the folder holding ANERcorp-CamelLabSplits/")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap and significance resamples")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per timing; the best counts")
    args = parser.parse_args()

    try:
        gold = corpora.load_split("anercorp:test", root=args.data_dir).sentences
    except KayanError as error:
        print(f"ANERcorp test not available ({error}); nothing timed")
        return 0
    tags = [list(s.tags) for s in gold]
    pred, pred_b = corrupt(tags), corrupt(tags, seed=8)
    print(f"ANERcorp test: {len(gold)} sentences, {sum(map(len, tags))} words; {args.samples} resamples; "
          f"best of {args.repeat}; load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.txt"
        path.write_text(evaluation.predictions_text(gold, pred), encoding="utf-8")

        def score_file():  # what `kayan evaluate --predictions FILE` computes
            sentences, predicted = evaluation.read_predictions(path)
            evaluation.label_set_warning(sentences, predicted, source=str(path))
            return evaluation.evaluate(sentences, predicted, bootstrap_samples=args.samples, source=str(path))

        seconds, report = best_of(args.repeat, score_file)
        line("score a predictions file (both modes, errors, bootstrap)", seconds, SCORE_TARGET_S)
        command = [sys.executable, "-c", "import sys; from kayan.cli import main; sys.exit(main())",
                   "evaluate", "--predictions", str(path)]
        seconds, _ = best_of(args.repeat, lambda: subprocess.run(command, check=True, capture_output=True))
        cpu = min(child_cpu(command) for _ in range(args.repeat))
        line(f"  the same as a new process, imports included (CPU {cpu:.2f} s)", seconds)

    def bootstrap():
        counts = metrics.sentence_counts(tags, pred)
        return significance.bootstrap_f1(counts, samples=args.samples)

    seconds, (low, high) = best_of(args.repeat, bootstrap)
    line(f"{args.samples} bootstrap samples (per-sentence counts included)", seconds, BOOTSTRAP_TARGET_S)
    types = metrics.entity_types(tags, pred, pred_b)
    counts, counts_b = (metrics.sentence_counts(tags, p, types=types) for p in (pred, pred_b))
    line("paired bootstrap", best_of(args.repeat, lambda: significance.paired_bootstrap(
        counts, counts_b, samples=args.samples))[0])
    line("approximate randomization", best_of(args.repeat, lambda: significance.approximate_randomization(
        counts, counts_b, samples=args.samples))[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        line("seqeval classification_report alone, default mode", best_of(args.repeat, lambda: classification_report(
            tags, pred, output_dict=True))[0])
        line("seqeval classification_report alone, strict IOB2", best_of(args.repeat, lambda: classification_report(
            tags, pred, output_dict=True, mode="strict", scheme=IOB2))[0])
    print(f"micro F1 {100 * report['default']['micro']['f1']:.2f} (strict {100 * report['strict']['micro']['f1']:.2f}), "
          f"95% interval [{100 * low:.2f}, {100 * high:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
