"""Tagging an archive three ways, timed on one input in one run: `kayan predict --out` on 1 and 2 workers, and Ray.

    python scripts/bench_archive.py MODEL [--input FILE | --repeat 4] [--rounds 2] [--backend torch] [--shard-size N]
                                          [--no-ray] [--out FILE]

The input is FILE (plain text, one document per line) or, by default, ANERcorp test's sentences, words
joined by spaces, one sentence per line, repeated ``--repeat`` times (4: 3,700 documents, 100,032 words),
written to a temporary folder. The same input goes through four paths, each a process of its own as a
user runs it:

a. ``kayan predict MODEL INPUT --out DIR --workers 1`` (PyTorch's default threads: one per core);
b. the same with ``--threads 1``;
c. ``--workers 2 --threads 1``;
d. Ray: a Python process that starts a local ``ray.init(num_cpus=2)``, reads the input
   (:func:`kayan.inference.archive.read_documents`, into ``ray.data.from_items``), tags it with
   :func:`kayan.scale.tag_dataset` on 2 actors × 1 thread and writes the records as JSON lines.

The paths run in turns, ``--rounds`` rounds (every other round in reverse order, so that a drift in the
machine's load falls on all alike); the table gives each round and the median. Words/s is the input's
words over the process's wall seconds: interpreter start, imports, model loading, reading and writing
included; for Ray, ``ray.init`` and ``ray.shutdown`` are left out and reported apart. "Start-up
excluded" takes off the start-up, measured as the same path on the input's first 2 documents
(``--shard-size 1``, so that both workers start; for Ray a 2-row dataset after ``ray.init``, in the
same process), and its 2 documents' words. Every output must hold the same entities and offsets per
document as the first (a)'s (scores may differ in the 4th decimal: other sentences share a batch).
A shard is a worker's unit of work: with kayan predict's 1,000 documents, the default input's 4
shards split 2,000 / 1,700 between 2 workers, which caps their speed-up at 1.85×; ``--shard-size``
(for (a)-(c) alike) shows what finer shards give.
The machine (CPU model, instruction sets and kind, as scripts/benchmark.py records them) and the
load average before and after each process go with the numbers; ``--out FILE`` writes everything as
JSON (refused where FILE exists and this script did not write it). A comparison is one run on an idle
machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

from benchmark import SHARED  # noqa: E402  (scripts/ on the path)
from benchmark.report import machine, versions  # noqa: E402
from kayan.atomic import write_text  # noqa: E402

PATHS = {  # key: (what the table calls it, kayan predict's options; None: Ray)
    "a": ("--workers 1, default threads", ["--workers", "1"]),
    "b": ("--workers 1 --threads 1", ["--workers", "1", "--threads", "1"]),
    "c": ("--workers 2 --threads 1", ["--workers", "2", "--threads", "1"]),
    "d": ("Ray tag_dataset, 2 actors × 1 thread", None),
}
STARTUP_DOCUMENTS = 2
SCORE_TOLERANCE = 1e-3  # scores are rounded to 4 decimals; batching other sentences together moves the 4th
MARK = "bench_archive"  # the key that says a JSON file is this script's


# The input: FILE, or ANERcorp test repeated; its documents and words.

def default_input(folder: Path, repeat: int) -> Path:
    """ANERcorp test's sentences, words joined by spaces, one per line, ``repeat`` times over."""
    if (SHARED / "data").is_dir():  # as scripts/bench_distill.py finds the corpora
        os.environ.setdefault("KAYAN_DATA_DIR", str(SHARED / "data"))
    from kayan.data import corpora

    lines = [" ".join(s.words) for s in corpora.load_split("anercorp:test").sentences]
    path = folder / f"anercorp-test-x{repeat}.txt"
    path.write_text("".join(line + "\n" for line in lines * repeat), encoding="utf-8")
    return path


def documents(path: Path | str) -> list[tuple[str, str]]:
    """``(source, text)`` of each document of a plain-text input as ``kayan predict --out`` names them (one per
    line; a line it reads in pieces joined again)."""
    from kayan.inference.archive import read_documents

    found, pieces = [], []
    for piece in read_documents([str(path)]):
        pieces.append(piece.text)
        if piece.last:
            found.append((piece.source, "".join(pieces)))
            pieces = []
    return found


def head(path: Path, count: int, folder: Path) -> Path:
    """The first ``count`` documents of ``path``, as a file of their own: the start-up runs' input."""
    target = folder / f"first-{count}.txt"
    target.write_text("".join(text + "\n" for _, text in documents(path)[:count]), encoding="utf-8")
    return target


# The paths, each one process.

def _environment() -> dict:
    """This process's environment, with the repository first on PYTHONPATH (Ray's workers inherit it)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def run_process(command: list[str], log: Path) -> float:
    """Run ``command`` (its output into ``log``); its wall seconds. Exits with the log's tail if it fails."""
    with open(log, "w", encoding="utf-8") as handle:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, env=_environment(), stdout=handle, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{log.read_text(encoding='utf-8')[-3000:]}")
    return seconds


def run_cli(key: str, model: str, source: Path, startup: Path, work: Path, options: list[str]) -> dict:
    """Path a, b or c (with ``options`` too): the start-up run, then the whole input; wall seconds of each, and the
    output's shards."""
    def command(path: Path, out: Path) -> list[str]:
        return [sys.executable, "-m", "kayan.cli", "predict", model, str(path), "--out", str(out), *options, *PATHS[key][1]]

    before = os.getloadavg()
    startup_s = run_process([*command(startup, work / "startup"), "--shard-size", "1"], work / "startup.log")
    shutil.rmtree(work / "startup")
    middle = os.getloadavg()
    wall = run_process(command(source, work / "out"), work / "run.log")
    return {"wall_s": wall, "startup_s": startup_s, "load_before": before, "load_between": middle,
            "load_after": os.getloadavg(), "records": sorted((work / "out").glob("shard-*.jsonl"))}


def run_ray(model: str, source: Path, startup: Path, work: Path, backend: str) -> dict:
    """Path d: :func:`ray_child` in a process of its own; its wall seconds less Ray's start and end."""
    times = work / "times.json"
    before = os.getloadavg()
    wall = run_process([sys.executable, str(Path(__file__).resolve()), "--ray-child", model, str(source), str(startup),
                        str(work / "records.jsonl"), str(times), backend], work / "run.log")
    inside = json.loads(times.read_text(encoding="utf-8"))
    return {"wall_s": wall - inside["init_s"] - inside["startup_s"] - inside["shutdown_s"], "process_wall_s": wall,
            "tag_s": inside["tag_s"], "startup_s": inside["startup_s"], "ray_init_s": inside["init_s"],
            "ray_shutdown_s": inside["shutdown_s"], "load_before": before, "load_after": os.getloadavg(),
            "records": [work / "records.jsonl"]}


def ray_child(model: str, source: str, startup: str, records: str, times: str, backend: str) -> None:
    """Path d's process: Ray started (timed apart), a 2-row start-up run, the whole input tagged into ``records``."""
    start = time.perf_counter()
    import ray

    from kayan.scale import tag_dataset

    def tagged(path: str, **options):
        rows = [{"source": name, "text": text} for name, text in documents(path)]
        return tag_dataset(ray.data.from_items(rows), model, actors=2, threads=1, backend=backend, **options)

    found = {"import_s": time.perf_counter() - start}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    found["init_s"] = time.perf_counter() - start - found["import_s"]
    try:
        clock = time.perf_counter()
        tagged(startup, batch_size=1).take_all()
        found["startup_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        with open(records, "w", encoding="utf-8", newline="\n") as handle:
            for row in tagged(source).iter_rows():
                handle.write(row["record"] + "\n")
        found["tag_s"] = time.perf_counter() - clock
    finally:
        clock = time.perf_counter()
        ray.shutdown()
        found["shutdown_s"] = time.perf_counter() - clock
    Path(times).write_text(json.dumps(found), encoding="utf-8")


# The outputs: the same entities and offsets per document.

def read_records(files: list[Path]) -> dict[str, dict]:
    """Each document's record, by source; exits when a source comes twice."""
    found: dict[str, dict] = {}
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["source"] in found:
                raise SystemExit(f"{file}: document {record['source']} written twice")
            found[record["source"]] = record
    return found


def differences(reference: dict[str, dict], records: dict[str, dict]) -> dict:
    """How ``records`` differ from ``reference``: the first document whose entities or offsets differ (or that
    is missing or extra), and the largest score difference.

    >>> one = {"f:1": {"source": "f:1", "entities": [{"type": "LOC", "start": 0, "end": 4, "score": 0.9}]}}
    >>> near = {"f:1": {"source": "f:1", "entities": [{"type": "LOC", "start": 0, "end": 4, "score": 0.9004}]}}
    >>> differences(one, near)["same"], round(differences(one, near)["max_score_difference"], 4)
    (True, 0.0004)
    >>> differences(one, {"f:1": {"source": "f:1", "entities": []}})["first_difference"]
    'f:1'
    >>> differences(one, {})["first_difference"]
    'f:1 missing'
    """
    if reference.keys() != records.keys():
        missing, extra = sorted(reference.keys() - records.keys()), sorted(records.keys() - reference.keys())
        first = f"{missing[0]} missing" if missing else f"{extra[0]} extra"
        return {"same": False, "first_difference": first, "max_score_difference": None}
    largest = 0.0
    for source, expected in reference.items():
        got = records[source]
        if _without_scores(got) != _without_scores(expected):
            return {"same": False, "first_difference": source, "max_score_difference": None}
        largest = max([largest, *(abs(a["score"] - b["score"]) for a, b in zip(got["entities"], expected["entities"]))])
    return {"same": largest < SCORE_TOLERANCE, "first_difference": None, "max_score_difference": largest}


def _without_scores(record: dict) -> dict:
    return {**record, "entities": [{k: v for k, v in e.items() if k != "score"} for e in record["entities"]]}


# Rounds, the table, the JSON file.

def rates(run: dict, words: int, startup_words: int) -> dict:
    """Words/s of one run, start-up included and excluded (``None`` where the start-up took longer than the run).

    >>> rates({"wall_s": 10.0, "startup_s": 2.0}, 1000, 8)
    {'words_per_second': 100.0, 'words_per_second_startup_excluded': 124.0}
    """
    body = run.get("tag_s", run["wall_s"]) - run["startup_s"]
    return {"words_per_second": words / run["wall_s"],
            "words_per_second_startup_excluded": (words - startup_words) / body if body > 0 else None}


def summary(runs: list[dict], keys: list[str]) -> list[dict]:
    """Per path: the median over rounds of wall seconds, start-up and both words/s, with ratios to (a) and (b)."""
    rows = []
    for key in keys:
        mine = [r for r in runs if r["path"] == key]
        row = {"path": key, "name": PATHS[key][0], "rounds_words_per_second": [r["words_per_second"] for r in mine]}
        for field in ("wall_s", "startup_s", "words_per_second", "words_per_second_startup_excluded"):
            values = [r[field] for r in mine if r[field] is not None]
            row[field] = statistics.median(values) if values else None
        rows.append(row)
    for row in rows:
        for base in ("a", "b"):
            reference = next((r for r in rows if r["path"] == base), None)
            for field, suffix in (("words_per_second", ""), ("words_per_second_startup_excluded", "_startup_excluded")):
                ok = reference and row[field] and reference[field]
                row[f"ratio_to_{base}{suffix}"] = row[field] / reference[field] if ok else None
    return rows


def table(rows: list[dict]) -> str:
    """The Markdown table of :func:`summary`'s rows."""
    def number(value, form="{:,.0f}"):
        return "–" if value is None else form.format(value)

    lines = ["| path | wall s | words/s | × (a) | × (b) | start-up s | words/s, start-up excluded | × (a) | × (b) "
             "| words/s per round |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        ratios = [number(r[f"ratio_to_{b}{s}"], "{:.2f}×") for s in ("", "_startup_excluded") for b in ("a", "b")]
        lines.append(f"| ({r['path']}) {r['name']} | {number(r['wall_s'], '{:.1f}')} | {number(r['words_per_second'])} "
                     f"| {ratios[0]} | {ratios[1]} | {number(r['startup_s'], '{:.1f}')} "
                     f"| {number(r['words_per_second_startup_excluded'])} | {ratios[2]} | {ratios[3]} "
                     f"| {', '.join(number(x) for x in r['rounds_words_per_second'])} |")
    return "\n".join(lines)


def check_out(path: Path | None) -> None:
    """Refuse an --out that is a folder or a file this script did not write (it is replaced only then)."""
    if path is None or not path.exists():
        return
    try:
        ours = path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("benchmark") == MARK
    except (ValueError, UnicodeDecodeError, AttributeError):
        ours = False
    if not ours:
        raise SystemExit(f"{path} is not a result this script wrote; choose another --out file")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 1 or more")
    return int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a packaged model folder (or run folder)")
    parser.add_argument("--input", type=Path,
                        help="a plain-text file, one document per line (default: ANERcorp test repeated)")
    parser.add_argument("--repeat", type=_positive, default=4,
                        help="times ANERcorp test is repeated in the default input (default 4)")
    parser.add_argument("--rounds", type=_positive, default=2, help="rounds of the paths in turns (default 2)")
    parser.add_argument("--backend", default="torch", choices=("auto", "torch", "onnx", "onnx-int8"),
                        help="kayan's --backend for every path (default torch)")
    parser.add_argument("--shard-size", type=_positive, help="kayan predict's --shard-size for (a)-(c) (default: its own, "
                        "1,000 documents: 4 shards of ANERcorp test × 4, so 2 workers tag 2,000 and 1,700 documents)")
    parser.add_argument("--no-ray", action="store_true", help="leave path (d) out (it is left out anyway without ray)")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    return parser.parse_args(argv)


def one_round(number: int, keys: list[str], args, inputs: dict, work: Path) -> list[dict]:
    """Each path once (reversed every other round), its output checked against the first (a)'s."""
    runs = []
    for key in keys if number % 2 == 0 else keys[::-1]:
        folder = work / f"round{number + 1}-{key}"
        folder.mkdir()
        if PATHS[key][1] is None:
            run = run_ray(args.model, inputs["source"], inputs["startup"], folder, args.backend)
        else:
            options = ["--backend", args.backend, *(["--shard-size", str(args.shard_size)] if args.shard_size else [])]
            run = run_cli(key, args.model, inputs["source"], inputs["startup"], folder, options)
        records = read_records(run.pop("records"))
        if "reference" not in inputs:  # round 1 starts with (a)
            inputs["reference"] = records
        check = differences(inputs["reference"], records)
        runs.append({"round": number + 1, "path": key, **run, **rates(run, inputs["words"], inputs["startup_words"]),
                     "output": check})
        shutil.rmtree(folder)
        print(f"round {number + 1} ({key}) {PATHS[key][0]}: {run['wall_s']:.1f} s, "
              f"{runs[-1]['words_per_second']:,.0f} words/s; same entities as (a): {check['same']}; "
              f"load {run['load_before'][0]:.2f} → {run['load_after'][0]:.2f}", flush=True)
    return runs


def main() -> None:
    if sys.argv[1:2] == ["--ray-child"]:
        return ray_child(*sys.argv[2:])
    args = parse_args()
    check_out(args.out)  # before anything is measured
    if not Path(args.model).is_dir():
        raise SystemExit(f"{args.model}: no such folder; give a packaged model (kayan package) or a run folder")
    keys = [k for k in PATHS if PATHS[k][1] is not None or not args.no_ray]
    if "d" in keys and importlib_missing("ray"):
        print("(no ray: path (d) left out; pip install -e '.[scale]')")
        keys.remove("d")
    work = Path(tempfile.mkdtemp(prefix="kayan-bench-archive-"))
    try:
        source = args.input.resolve() if args.input else default_input(work, args.repeat)
        texts = [text for _, text in documents(source)]
        inputs = {"source": source, "startup": head(source, STARTUP_DOCUMENTS, work),
                  "words": sum(len(text.split()) for text in texts),
                  "startup_words": sum(len(text.split()) for text in texts[:STARTUP_DOCUMENTS])}
        import torch  # path (a)'s threads: PyTorch's default

        described = {"path": str(args.input or f"ANERcorp test × {args.repeat}"), "documents": len(texts),
                     "words": inputs["words"], "bytes": source.stat().st_size, "torch_default_threads": torch.get_num_threads()}
        computer = machine()
        print(f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, {' '.join(sys.argv)}; "
              f"{json.dumps(computer)}\ninput: {json.dumps(described, ensure_ascii=False)}", flush=True)
        runs = [run for number in range(args.rounds) for run in one_round(number, keys, args, inputs, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish(args, runs, keys, described, computer)


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


def finish(args, runs: list[dict], keys: list[str], described: dict, computer: dict) -> None:
    """Print the table and the target's ratio; write the JSON file; exit 1 where an output differs from (a)'s."""
    rows = summary(runs, keys)
    print(f"\nwords/s: the input's {described['words']:,} words / wall seconds; medians of {args.rounds} round(s); "
          f"backend {args.backend}; shard size {args.shard_size or 'kayan predict default'}; "
          f"load average now {os.getloadavg()[0]:.2f}\n{table(rows)}")
    two = next((r for r in rows if r["path"] == "c"), None)
    if two:
        print(f"issue 23's target, 2 workers ≥ 1.8× one worker's words/s (2 idle cores): "
              f"{two['ratio_to_a']:.2f}× (a), {two['ratio_to_b']:.2f}× (b)")
    same = all(r["output"]["same"] is not False for r in runs)
    print("outputs: the same entities and offsets per document in every run" if same else
          "outputs DIFFER: " + "; ".join(f"round {r['round']} ({r['path']}): {r['output']}" for r in runs
                                          if r["output"]["same"] is False))
    if args.out:
        result = {"benchmark": MARK, "argv": sys.argv, "machine": computer, "versions": versions(), "input": described,
                  "backend": args.backend, "shard_size": args.shard_size, "rounds": args.rounds, "rows": rows,
                  "runs": runs, "outputs_same": same}
        write_text(args.out, json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
