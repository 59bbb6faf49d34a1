"""Time kayan.data.arabic.tokenize on input built to make its rules rescan: it must stay linear.

The text repeats ``a.b``, ``د.`` and ``x@`` N times each (the runs that once made the e-mail and
abbreviation rules quadratic, before their lookbehinds). Each doubling of N should about double the
time (a ratio near 2; near 4 is quadratic); 20,000 repetitions should take under 2 s.

    python scripts/bench_tokenize.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

from kayan.data.arabic import tokenize

SIZES = (5_000, 10_000, 20_000, 40_000)
TARGET_SIZE, TARGET_S = 20_000, 2.0


def pathological(n: int) -> str:
    return "a.b" * n + " " + "د." * n + " " + "x@" * n


def best_time(text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        tokenize(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per size; the best counts")
    args = parser.parse_args()
    previous = None
    for n in SIZES:
        seconds = best_time(pathological(n), args.repeat)
        ratio = f"  x{seconds / previous:.2f} for twice the input" if previous else ""
        target = f"  target < {TARGET_S:g} s: {'met' if seconds < TARGET_S else 'MISSED'}" if n == TARGET_SIZE else ""
        print(f"{n:>7,} repetitions ({len(pathological(n)):>8,} characters) {seconds:7.3f} s{ratio}{target}")
        previous = seconds


if __name__ == "__main__":
    main()
