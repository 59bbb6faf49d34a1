"""The benchmark's report: Kayan / plain ratios against their targets, the Markdown table, the chart,
the machine and the versions."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

from kayan.atomic import write_text

from . import REPO

PHASE_KEYS = ("wall_seconds", "cpu_seconds", "cores_used", "peak_rss_mb", "load_average_1min")
VERSIONED = ("kayan", "torch", "transformers", "tokenizers", "accelerate", "onnxruntime", "onnx", "seqeval", "numpy")


TARGETS = {  # Kayan / plain: the tiny model's from the first speed issue, me5-small's from issue 10
    "tiny": {"test_f1": 1.0, "train": 1.5, "torch": 3.0, "onnx_int8": 5.0},
    "me5-small": {"test_f1": 1.0, "train": 3.5, "torch": 3.0, "onnx_int8": 6.0},
}


def measures(phases: dict, encoder: str = "tiny") -> list[dict]:
    """The compared quantities: plain value, Kayan value, Kayan / plain, target and met / missed."""
    p, k = phases["plain-train"], phases["kayan-train"]
    pipe, torch_, int8 = phases["infer-pipeline"], phases["infer-kayan-torch"], phases["infer-kayan-onnx-int8"]
    target = TARGETS[encoder]
    rows = [
        ("test_f1", "test F1 (seqeval default, every test word)", p["test_f1"], k["test_f1"], target["test_f1"], "{:.4f}"),
        ("train_tokens_per_second", f"training throughput (non-padding subwords/s; Kayan in {k.get('precision', 'fp32')})",
         p["train_tokens_per_second"], k["train_tokens_per_second"], target["train"], "{:,.0f}"),
        ("train_wall_seconds", "training phase wall time (s)", p["wall_seconds"], k["wall_seconds"], None, "{:,.1f}"),
        ("train_peak_rss_mb", "training peak memory (MB RSS)", p["peak_rss_mb"], k["peak_rss_mb"], None, "{:,.0f}"),
        ("torch_words_per_second", "inference, PyTorch fp32: pipeline vs Kayan (words/s)",
         pipe["words_per_second"], torch_["words_per_second"], target["torch"], "{:,.0f}"),
    ]
    auto = phases.get("infer-kayan-torch-auto")
    if auto:  # benchmarks from before precision=auto have no such phase
        rows.append(("torch_auto_words_per_second", f"inference, PyTorch precision auto (here {_precision(auto)}): "
                     "pipeline vs Kayan (words/s)", pipe["words_per_second"], auto["words_per_second"], target["torch"], "{:,.0f}"))
    rows += [
        ("onnx_int8_words_per_second", "inference, ONNX int8: pipeline vs Kayan (words/s)",
         pipe["words_per_second"], int8["words_per_second"], target["onnx_int8"], "{:,.0f}"),
        ("torch_peak_rss_mb", "inference peak memory, PyTorch (MB RSS)",
         pipe["peak_rss_mb"], torch_["peak_rss_mb"], None, "{:,.0f}"),
        ("onnx_int8_peak_rss_mb", "inference peak memory, ONNX int8 (MB RSS)",
         pipe["peak_rss_mb"], int8["peak_rss_mb"], None, "{:,.0f}"),
    ]
    return [compare(*row) for row in rows]


def _precision(phase: dict) -> str:
    """What precision ``auto`` resolved to in an inference phase (its note says ``precision bf16``)."""
    return (phase.get("note") or "precision fp32").removeprefix("precision ")


def compare(key: str, label: str, plain: float, kayan: float, target: float | None, fmt: str) -> dict:
    """One measure: the ratio Kayan / plain, and whether Kayan meets ``target`` × plain.

    >>> compare("f1", "F1", 0.5, 0.6, 1.0, "{:.2f}")["met"], compare("speed", "words/s", 100, 290, 3.0, "{:.0f}")["met"]
    (True, False)
    >>> compare("f1", "F1", 0.0, 0.0, 1.0, "{:.2f}")["ratio"], compare("f1", "F1", 0.0, 0.0, 1.0, "{:.2f}")["met"]
    (None, None)
    """
    ratio = round(kayan / plain, 3) if plain else None
    met = None if target is None or not (plain or kayan) else kayan >= target * plain  # 0 vs 0: no verdict
    return {"key": key, "label": label, "plain": plain, "kayan": kayan, "ratio": ratio, "target": target, "met": met,
            "format": fmt}


def markdown(report: dict) -> str:
    """The README table: one line per measure, then the conditions."""
    lines = ["| measure | plain recipe | Kayan | Kayan / plain | target | |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for m in report["measures"]:
        ratio = "n/a" if m["ratio"] is None else f"{m['ratio']:.2f}×"
        target = f"≥ {m['target']:.1f}×" if m["target"] else ""
        verdict = ("n/a" if m["target"] else "") if m["met"] is None else ("met" if m["met"] else "missed")
        lines.append(f"| {m['label']} | {m['format'].format(m['plain'])} | {m['format'].format(m['kayan'])} | "
                     f"{ratio} | {target} | {verdict} |")
    return "\n".join(lines + [""] + [f"- {note}" for note in notes(report)]) + "\n"


def notes(report: dict) -> list[str]:
    """The conditions a reader needs beside the table."""
    s, p, k, m = report["settings"], report["plain"]["train"], report["kayan"]["train"], report["machine"]
    loads = [x for phase in report["phases"].values() for x in phase["load_average_1min"]]
    return [
        f"{report['date']}, `{report['command']}`, {report['total_wall_seconds']:.0f} s in all; {m['cpu_model']}"
        + (f" ({m['cpu_kind']}: {' '.join(m['cpu_flags'])})" if "cpu_kind" in m else "") + ", "
        + ("fp32-only mode (no bf16 anywhere), " if s.get("precision") == "fp32" else "")
        + f"{m['usable_cores']} cores, {m['ram_gb']} GB RAM; 1-minute load average {min(loads):.1f}–{max(loads):.1f} "
        "around the phases (above 1 means other work shared the cores and slowed some phases)",
        "cores each phase got (CPU / wall seconds): " + ", ".join(f"{name} {phase['cores_used']:.1f}"
                                                                   for name, phase in report["phases"].items()),
        f"encoder `{s['encoder']}` ({s['config']}), {s['epochs']:g} epoch(s), seed {s['seed']}, lr {s['learning_rate']}, "
        f"batch {s['batch_size']}, {s['scheduler']} schedule, warmup {s['warmup_ratio']}, weight decay {s['weight_decay']}",
        f"train: {p['train_sentences']} ANERcorp train sentences"
        + (f" (the first {s['train_sentences']})" if s["train_sentences"] else "")
        + f"; Kayan holds the last {s['kayan']['dev_fraction']:.0%} out as dev and keeps the best dev checkpoint, "
        "the plain recipe trains on all of them and keeps the last; test: all 925 ANERcorp test sentences",
        f"plain recipe: truncation at {p['max_length']} subwords cut {p['test_words_cut']} test words "
        f"({p['test_sentences_cut']} sentences; predicted O) and {p['train_words_cut']} train words; "
        f"F1 on the kept words only (what it reports itself): {p['test_f1_kept_words_only']:.4f}",
        f"padding in training batches: plain {p['padding_fraction']:.1%}, Kayan {k['padding_fraction']:.1%}; "
        f"Kayan window {s['kayan']['window']}, stride {s['kayan']['stride']}",
        f"inference: {report['plain']['inference']['words']} test words, batch size {s['inference_batch_size']}, "
        "pipeline on the plain model (aggregation `first`), Kayan's Predictor on its package; CPU only, "
        + (f"{s['threads']} thread(s) per phase" if s.get("threads") else "the libraries' default thread counts"),
    ] + (["1 epoch of a from-scratch tiny encoder on a train prefix finds almost no entities: --quick checks the "
          "path, speed and memory; F1 needs the full recipe"] if s["quick"] else [])


def draw_chart(report: dict, path: Path) -> bool:
    """A PNG of the training and inference throughputs; False (with a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed, so no chart; install it (pip install 'matplotlib>=3.8') and run again")
        return False
    by_key = {m["key"]: m for m in report["measures"]}
    train, torch_ = by_key["train_tokens_per_second"], by_key["torch_words_per_second"]
    int8, auto = by_key["onnx_int8_words_per_second"], by_key.get("torch_auto_words_per_second")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [2, 3]})
    names, values = ["pipeline", "Kayan\nPyTorch fp32"], [torch_["plain"], torch_["kayan"]]
    if auto:
        resolved = _precision(report["kayan"]["inference"]["torch_auto"])
        names, values = names + [f"Kayan\nPyTorch {resolved}"], values + [auto["kayan"]]
    trained = report["kayan"]["train"].get("precision", "fp32")
    panels = ((left, "training: subword tokens / s", ["plain recipe", f"Kayan ({trained})"], [train["plain"], train["kayan"]]),
              (right, "inference: words / s", names + ["Kayan\nONNX int8"], values + [int8["kayan"]]))
    for axis, title, names, values in panels:
        bars = axis.bar(names, values, color=["#9e9e9e"] + ["#1f77b4"] * (len(values) - 1))
        axis.bar_label(bars, labels=[f"{v:,.0f}\n({v / values[0]:.1f}×)" for v in values], fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.tick_params(axis="x", labelsize=8)
        axis.set_ylim(0, max(values) * 1.25)
    s = report["settings"]
    threads = f", {s['threads']} thread(s) per phase" if s.get("threads") else ""
    fig.suptitle(f"Kayan vs the plain transformers recipe — ANERcorp, {s['encoder']}, {s['epochs']:g} epoch(s), "
                 f"{report['machine']['usable_cores']} CPU cores{threads}", fontsize=10)
    fig.tight_layout()
    partial = path.with_name(path.stem + ".partial.png")  # kayan.atomic writes text; a PNG is bytes
    fig.savefig(partial, dpi=120)
    os.replace(partial, path)
    return True


# The instruction sets that decide Kayan's speed on a CPU: bf16 (precision auto), int8 dot products (ONNX int8).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_kind(flags: set[str]) -> str:
    """A short name for the class of CPU, as the README's per-machine columns name them.

    >>> cpu_kind({"avx2"}), cpu_kind({"avx2", "avx512f", "avx512_vnni"}), cpu_kind({"avx512f", "avx512_bf16"})
    ('AVX2', 'AVX512+VNNI', 'AVX512+BF16')
    """
    if flags & {"amx_bf16", "amx_int8"}:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512+BF16"
    if "avx512f" in flags:
        return "AVX512+VNNI" if "avx512_vnni" in flags else "AVX512"
    return "AVX2+VNNI" if "avx_vnni" in flags else ("AVX2" if "avx2" in flags else "other")


def machine() -> dict:
    """CPU model, its speed-relevant instruction sets, cores, RAM and load of this machine."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    flags = {f for line in info.splitlines() if line.split(":", 1)[0].strip() in ("flags", "Features")
             for f in line.split(":", 1)[1].split()}
    speed_flags = [f for f in SPEED_FLAGS if f in flags]
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else "MemTotal: 0 kB"
    ram_kb = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemTotal")))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": cpu, "cpu_flags": speed_flags, "cpu_kind": cpu_kind(flags), "logical_cores": os.cpu_count(), "usable_cores": cores, "ram_gb": round(ram_kb / 2**20, 1),
            "platform": platform.platform(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def versions() -> dict:
    """Python, the libraries both recipes run on, and the repository's commit."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    def git(*arguments: str) -> str:  # read-only queries
        return subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        found["git_commit"], found["git_dirty"] = git("rev-parse", "HEAD") or None, bool(git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError):
        found["git_commit"] = None
    return found


def write_outputs(report: dict, out: Path, stem: str) -> list[Path]:
    """The JSON file, the Markdown table and (with matplotlib) the chart, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in ((".json", json.dumps(report, ensure_ascii=False, indent=2) + "\n"), (".md", markdown(report))):
        text = text.replace(str(REPO) + os.sep, "")  # paths relative to the repository: the files get committed
        written.append(write_text(out / f"{stem}{suffix}", text))
    if draw_chart(report, out / f"{stem}.png"):
        written.append(out / f"{stem}.png")
    return written
