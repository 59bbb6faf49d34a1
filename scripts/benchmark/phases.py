"""One benchmark phase, run in its own process so that its peak memory (``ru_maxrss``) is its own.

    PYTHONPATH=scripts python -m benchmark.phases PHASE WORK

reads ``WORK/settings.json`` (written by ``benchmark.run``) and writes ``WORK/PHASE.json``.
"""

from __future__ import annotations

import json
import resource
import sys
import warnings
from pathlib import Path

import transformers

import bench_predict  # scripts/ is on the path (run.py puts it on PYTHONPATH)
from kayan.atomic import write_text
from kayan.config import load_config
from kayan.data import corpora
from kayan.data.schemes import label_list
from kayan.inference.export import export_onnx
from kayan.inference.packaging import package
from kayan.model.backends import set_threads
from kayan.model.modeling import build_model
from kayan.training import train

from . import PARITY_SENTENCES, REPO, TEST_REF, TRAIN_REF
from .plain import train_plain


def kayan_overrides(settings: dict, work: Path) -> list[str]:
    """``--set`` overrides that point the recipe config at the shared encoder, data and settings."""
    return [
        f"model.name={json.dumps(settings['encoder_folder'])}", f"data.train={json.dumps([settings['train_ref']])}",
        f"data.test={json.dumps([TEST_REF])}", f"training.epochs={settings['epochs']}", f"training.seed={settings['seed']}",
        f"training.learning_rate={settings['learning_rate']}", f"training.batch_size={settings['batch_size']}",
        f"output.dir={json.dumps(str(work))}", "output.run_name=kayan",
        f"training.precision={settings.get('precision', 'auto')}",
    ]


def train_kayan(settings: dict, work: Path) -> dict:
    """``kayan train`` on the recipe config, as a user runs it (dev carved from train, best checkpoint)."""
    config = load_config(REPO / settings["config"], kayan_overrides(settings, work))
    summary = train(config, overwrite=True)
    keys = ("test_f1", "test_f1_strict", "best_dev_f1", "steps", "epochs", "train_tokens", "train_seconds",
            "train_tokens_per_second", "padding_fraction", "wall_seconds", "peak_memory_mb", "data_notes", "precision")
    return {key: summary[key] for key in keys} | {"window": config.training.window, "stride": config.training.stride}


def package_kayan(settings: dict, work: Path) -> dict:
    """``kayan package`` the run, then ``kayan export --onnx --quantize int8`` (with its parity check)."""
    folder = package(work / "kayan", work / "kayan-package", overwrite=True)
    # force: the benchmark reports the int8 F1 loss (kept below) rather than stopping on it
    report = export_onnx(folder, quantize="int8", limit=PARITY_SENTENCES, force=True, threads=settings["threads"])
    kept = ("data", "torch", "onnx", "onnx-int8", "passed")
    return {"package": str(folder), "onnx_parity": {key: report[key] for key in kept if key in report}}


def build_encoder(settings: dict, work: Path) -> dict:
    """The tiny encoder, built once (WordPiece on the train words + a fresh small BERT) and saved."""
    config = load_config(REPO / settings["config"])
    train = corpora.load_split(TRAIN_REF).sentences
    transformers.set_seed(settings["seed"])
    model, tokenizer = build_model(config.model, labels=label_list(s.tags for s in train),
                                   train_words=(w for s in train for w in s.words), window=config.training.window)
    folder = Path(settings["encoder_folder"])
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return {"folder": str(folder), "vocab_size": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters())}


def infer(settings: dict, work: Path, backend: str, precision: str = "fp32") -> dict:
    """Words per second tagging the test split: ``pipeline`` on the plain model, or Kayan's Predictor
    (``precision``: PyTorch's, see :func:`kayan.load`)."""
    sentences = [list(s.words) for s in corpora.load_split(TEST_REF).sentences]
    lines, batch = [" ".join(words) for words in sentences], settings["inference_batch_size"]
    if backend == "pipeline":
        seconds, entities, note = bench_predict.bench_pipeline(work / "plain" / "model", lines, batch, settings["threads"])
    else:
        seconds, entities, note = bench_predict.bench_predictor(
            work / "kayan-package", "\n".join(lines), "\n".join(lines[:8]), backend, batch, settings["threads"], precision)
    words = sum(map(len, sentences))
    return {"backend": backend, "words": words, "seconds": round(seconds, 3), "words_per_second": round(words / seconds, 1),
            "entities": entities, "note": note}


FUNCTIONS = {  # the keys are benchmark.PHASES, in order
    "encoder": build_encoder, "plain-train": train_plain, "kayan-train": train_kayan, "kayan-package": package_kayan,
    "infer-pipeline": lambda s, w: infer(s, w, "pipeline"), "infer-kayan-torch": lambda s, w: infer(s, w, "torch"),
    "infer-kayan-torch-auto": lambda s, w: infer(s, w, "torch", s.get("precision", "auto")),
    "infer-kayan-onnx-int8": lambda s, w: infer(s, w, "onnx-int8"),
}


def run(phase: str, work: Path) -> None:
    """The body of a phase subprocess: run it and write its result, with this process's peak RSS."""
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    settings = json.loads((work / "settings.json").read_text(encoding="utf-8"))
    if settings["threads"]:
        set_threads(settings["threads"])  # PyTorch's pool (training, export); inference passes threads on
    result = FUNCTIONS[phase](settings, work)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)  # vs wall time: the cores it really got
    write_text(work / f"{phase}.json", json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in FUNCTIONS:
        raise SystemExit(f"usage: python -m benchmark.phases {{{','.join(FUNCTIONS)}}} WORK")
    run(sys.argv[1], Path(sys.argv[2]))
