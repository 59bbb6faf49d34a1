"""Kayan against the plain transformers recipe on ANERcorp: test F1, training and inference speed, memory.

The plain recipe is the one a user writes from the transformers token-classification guide, written
out in this script: ``AutoModelForTokenClassification`` + ``Trainer`` +
``DataCollatorForTokenClassification``, the tag on the first subword of each word (-100 on the
others), ``truncation=True, max_length=512`` (or the encoder's limit when smaller), no dev set, the
last checkpoint, seqeval's default mode. Kayan runs its own recipe (``configs/anercorp-*.yaml``)
through ``kayan.training.train``: windows instead of truncation, length-grouped batches, and the best
checkpoint on a dev block carved from the end of train (so Kayan trains on 90% of the sentences the
plain recipe trains on). Both start from the same encoder folder with the recipe config's epochs,
seed, learning rate, batch size, scheduler, warmup and weight decay; the test split is never used for
selection.

Measured, each phase in its own subprocess (its peak memory is that process's ``ru_maxrss``):

* test F1, seqeval default mode (= conlleval), every test word counted: a word the plain recipe's
  truncation cut off is predicted ``O``; the number of cut words is reported;
* training throughput: non-padding subword tokens / training seconds (``summary.json``'s definition:
  Kayan's seconds leave out its dev evaluations; the plain recipe has none), and the phase's wall time;
* inference on the test split, in words per second (``scripts/bench_predict.py``'s functions): plain
  ``transformers.pipeline`` on the plain recipe's model, Kayan's Predictor with PyTorch and with ONNX
  int8 on Kayan's package (``kayan package`` + ``kayan export --onnx --quantize int8``).

Everything runs on the CPU (children see no GPU), with each library's default thread count unless
``--threads N`` sets PyTorch's and onnxruntime's for every phase alike: on a machine where other work
holds cores, two threads fighting over one core slow small models down many times over (a tiny-model
training step went from 0.05 s to 1.5 s here), so the ratios then measure the contention, not the
recipes; ``--threads 1`` avoids that. Each phase records its CPU seconds / wall seconds (the cores it
really got) and the load average around it.

Ratios are Kayan / plain; the targets (F1 not lower, training ≥ 1.5×, inference ≥ 3× with PyTorch and
≥ 5× with ONNX int8) are printed beside them with met / missed, never used to tune anything.

Usage (from the repository root; $KAYAN_DATA_DIR or ../shared/data must hold ANERcorp)::

    python scripts/benchmark.py --quick               # tiny encoder, 1 epoch, first 1000 train sentences, full
                                                      #   test split: ~75 s with --threads 1, ~3.7 min without,
                                                      #   on 2 CPU cores shared with a training job
    python scripts/benchmark.py --encoder tiny        # configs/anercorp-tiny.yaml, all of train: ~30-60 min
    python scripts/benchmark.py --encoder me5-small   # multilingual-e5-small (models/me5-small), its recipe's
                                                      #   3 epochs: about 3-5 hours on 2 CPU cores, 6 GB RAM
    python scripts/benchmark.py --encoder me5-small --train-sentences 200 --epochs 1   # its path: ~13 min

The test split is tagged in full either way, so inference throughput and memory are measured on all
25,008 test words even in the short runs; F1 needs the full recipes (a few hundred steps at least).

Outputs go to ``--out`` (default ``scripts/results/``): ``benchmark-ENCODER[-quick].json`` (numbers,
machine, command, versions, settings), ``.md`` (a table for the README) and ``.png`` (the throughputs;
needs matplotlib, skipped with a note without it). Scratch files (encoder, run folders, packages,
per-phase logs) go to ``--work`` (default ``train/benchmark/ENCODER[-quick]``, ignored by git).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KAYAN_SHARED_DIR", REPO.parent / "shared"))
RECIPES = {"tiny": "configs/anercorp-tiny.yaml", "me5-small": "configs/anercorp-me5-small.yaml"}
ME5_FOLDER = REPO / "models" / "me5-small"
TRAIN_REF, TEST_REF = "anercorp:train", "anercorp:test"
QUICK_SENTENCES = 1000  # --quick trains on the first 1000 ANERcorp train sentences (~29k words)
PLAIN_MAX_LENGTH = 512  # the guide's truncation length (lowered to the encoder's limit when smaller)
PARITY_SENTENCES = 200  # dev sentences `kayan export` checks ONNX against PyTorch on
PHASES = ("encoder", "plain-train", "kayan-train", "kayan-package",
          "infer-pipeline", "infer-kayan-torch", "infer-kayan-onnx-int8")
PHASE_KEYS = ("wall_seconds", "cpu_seconds", "cores_used", "peak_rss_mb", "load_average_1min")
VERSIONED = ("kayan", "torch", "transformers", "tokenizers", "accelerate", "onnxruntime", "onnx", "seqeval", "numpy")


# ---------------------------------------------------------------------------------------------
# The plain recipe: pure helpers (tested in tests/test_benchmark.py)

def align_labels(word_ids: Sequence[int | None], tags: Sequence[str], label2id: dict[str, int]) -> list[int]:
    """Subword labels the guide's way: a word's first subword carries its tag, the rest get -100.

    Args:
        word_ids: the tokenizer's ``word_ids()`` for one (possibly truncated) sentence.
        tags: the sentence's word tags.
        label2id: tag → label id.

    >>> align_labels([None, 0, 0, 1, None], ["B-PERS", "O"], {"O": 0, "B-PERS": 1})
    [-100, 1, -100, 0, -100]
    """
    labels, previous = [], None
    for word in word_ids:
        labels.append(-100 if word is None or word == previous else label2id[tags[word]])
        previous = word
    return labels


def word_tags(word_ids: Sequence[int | None], predicted: Sequence[int], n_words: int,
              id2label: dict[int, str]) -> list[str]:
    """One tag per word from one sentence's subword predictions, every word included.

    A word takes its first subword's label; a word the truncation cut off (no subword left) is
    predicted ``O``, so its entities count as missed.

    >>> word_tags([None, 0, 0, 1, None], [0, 1, 2, 0, 0], 3, {0: "O", 1: "B-LOC", 2: "I-LOC"})
    ['B-LOC', 'O', 'O']
    """
    tags, seen = ["O"] * n_words, set()
    for position, word in enumerate(word_ids):
        if word is not None and word not in seen:
            seen.add(word)
            tags[word] = id2label[int(predicted[position])]
    return tags


def cut_words(word_ids: Sequence[int | None], n_words: int) -> int:
    """How many words of a sentence the truncation dropped entirely.

    >>> cut_words([None, 0, 1, 1, None], 5)
    3
    """
    return n_words - len({word for word in word_ids if word is not None})


def plain_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], kept: Sequence[int]) -> dict:
    """seqeval default-mode F1 on every word, and on the kept words only (what the recipe itself reports).

    Args:
        gold: the gold tags of every test sentence.
        predicted: the predicted tags of every word (cut words predicted ``O``).
        kept: the number of words truncation kept in each sentence.

    >>> plain_scores([["B-PERS", "O", "B-LOC"]], [["B-PERS", "O", "O"]], [2])
    {'test_f1': 0.6667, 'test_f1_kept_words_only': 1.0}
    """
    from seqeval.metrics import f1_score

    every = f1_score([list(g) for g in gold], [list(p) for p in predicted])
    kept_only = f1_score([list(g[:k]) for g, k in zip(gold, kept)], [list(p[:k]) for p, k in zip(predicted, kept)])
    return {"test_f1": round(float(every), 4), "test_f1_kept_words_only": round(float(kept_only), 4)}


def plain_labels(data_tags: set[str], model_label2id: dict[str, int]) -> list[str]:
    """The label list: the encoder's own label map when it covers the data's tags (the guide
    reconciles them), else the data's tags sorted.

    >>> plain_labels({"O", "B-LOC"}, {"O": 0, "B-LOC": 1, "I-LOC": 2})
    ['O', 'B-LOC', 'I-LOC']
    >>> plain_labels({"O", "B-LOC"}, {"LABEL_0": 0, "LABEL_1": 1})
    ['B-LOC', 'O']
    """
    if data_tags <= set(model_label2id):
        return sorted(model_label2id, key=model_label2id.get)
    return sorted(data_tags)


# ---------------------------------------------------------------------------------------------
# The plain recipe: training and test scoring (runs in its own process)

def tokenize(tokenizer, sentences, label2id: dict[str, int], max_length: int) -> tuple[list[dict], list[list]]:
    """Features (input ids, mask, first-subword labels) and word ids of each sentence, truncated."""
    encoded = tokenizer([list(s.words) for s in sentences], is_split_into_words=True,
                        truncation=True, max_length=max_length)
    features, word_ids = [], []
    for i, sentence in enumerate(sentences):
        ids = encoded.word_ids(i)
        item = {key: encoded[key][i] for key in encoded.keys()}
        item["labels"] = align_labels(ids, sentence.tags, label2id)
        features.append(item)
        word_ids.append(ids)
    return features, word_ids


def plain_arguments(settings: dict, output_dir: Path):
    """The recipe's TrainingArguments: the shared hyperparameters, no evaluation, a save per epoch."""
    import transformers

    return transformers.TrainingArguments(
        output_dir=str(output_dir), learning_rate=settings["learning_rate"], num_train_epochs=settings["epochs"],
        per_device_train_batch_size=settings["batch_size"], per_device_eval_batch_size=settings["eval_batch_size"],
        lr_scheduler_type=settings["scheduler"], warmup_steps=settings["warmup_ratio"],
        weight_decay=settings["weight_decay"], seed=settings["seed"], eval_strategy="no", save_strategy="epoch",
        logging_steps=50, report_to="none", disable_tqdm=True, use_cpu=settings.get("device", "cpu") == "cpu", dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",  # counted as Kayan counts them; changes no step
    )


def padding_fraction(trainer) -> float:
    """Share of padding positions in one epoch of the trainer's batches."""
    real = total = 0
    for batch in trainer.get_train_dataloader():
        real, total = real + int(batch["attention_mask"].sum()), total + batch["attention_mask"].numel()
    return round(1 - real / total, 4) if total else 0.0


def plain_test(trainer, tokenizer, test, label2id: dict[str, int], max_length: int, predictions: Path | None = None) -> dict:
    """Tag the test split with the trained (last) model and score every word; write the tags to
    ``predictions`` (token gold predicted, what ``kayan compare`` reads) when given."""
    features, word_ids = tokenize(tokenizer, test, label2id, max_length)
    logits = trainer.predict(features).predictions
    id2label = {i: tag for tag, i in label2id.items()}
    predicted = [word_tags(ids, row.argmax(-1), len(s.words), id2label) for ids, row, s in zip(word_ids, logits, test)]
    cut = [cut_words(ids, len(s.words)) for ids, s in zip(word_ids, test)]
    scores = plain_scores([s.tags for s in test], predicted, [len(s.words) - c for s, c in zip(test, cut)])
    if predictions is not None:
        from kayan.atomic import write_text
        from kayan.evaluation import predictions_text

        write_text(predictions, predictions_text(test, predicted))
    return {**scores, "test_words_cut": sum(cut), "test_sentences_cut": sum(c > 0 for c in cut)}


def train_plain(settings: dict, work: Path) -> dict:
    """The plain recipe end to end: tokenize with truncation, train, keep the last model, score test."""
    import transformers

    from kayan.data import corpora

    started = time.perf_counter()
    train, test = corpora.load(settings["train_ref"]).sentences, corpora.load(TEST_REF).sentences
    encoder = settings["encoder_folder"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(encoder)
    max_length = min(PLAIN_MAX_LENGTH, tokenizer.model_max_length)
    labels = plain_labels({t for s in train for t in s.tags}, transformers.AutoConfig.from_pretrained(encoder).label2id)
    label2id = {tag: i for i, tag in enumerate(labels)}
    transformers.set_seed(settings["seed"])
    model = transformers.AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id, ignore_mismatched_sizes=True)
    features, word_ids = tokenize(tokenizer, train, label2id, max_length)
    trainer = transformers.Trainer(
        model=model, args=plain_arguments(settings, work / "plain" / "checkpoints"), train_dataset=features,
        data_collator=transformers.DataCollatorForTokenClassification(tokenizer), processing_class=tokenizer)
    result = trainer.train()
    trainer.save_model(str(work / "plain" / "model"))
    seconds, tokens = result.metrics["train_runtime"], trainer.state.num_input_tokens_seen
    return {
        **plain_test(trainer, tokenizer, test, label2id, max_length, work / "plain" / "test_predictions.txt"),
        "max_length": max_length,
        "train_sentences": len(train),
        "train_words_cut": sum(cut_words(ids, len(s.words)) for ids, s in zip(word_ids, train)),
        "train_tokens": tokens, "train_seconds": round(seconds, 2), "train_tokens_per_second": round(tokens / seconds, 1),
        "padding_fraction": padding_fraction(trainer), "inner_seconds": round(time.perf_counter() - started, 2),
    }


# ---------------------------------------------------------------------------------------------
# The Kayan side: the library's own train / package / export (each in its own process)

def kayan_overrides(settings: dict, work: Path) -> list[str]:
    """``--set`` overrides that point the recipe config at the shared encoder, data and settings."""
    return [
        f"model.name={json.dumps(settings['encoder_folder'])}", f"data.train={json.dumps([settings['train_ref']])}",
        f"data.test={json.dumps([TEST_REF])}", f"training.epochs={settings['epochs']}", f"training.seed={settings['seed']}",
        f"training.learning_rate={settings['learning_rate']}", f"training.batch_size={settings['batch_size']}",
        f"output.dir={json.dumps(str(work))}", "output.run_name=kayan",
    ]


def train_kayan(settings: dict, work: Path) -> dict:
    """``kayan train`` on the recipe config, as a user runs it (dev carved from train, best checkpoint)."""
    from kayan.config import load_config
    from kayan.training import train

    config = load_config(REPO / settings["config"], kayan_overrides(settings, work))
    summary = train(config, overwrite=True)
    keys = ("test_f1", "test_f1_strict", "best_dev_f1", "steps", "epochs", "train_tokens", "train_seconds",
            "train_tokens_per_second", "padding_fraction", "wall_seconds", "peak_memory_mb", "data_notes")
    return {key: summary[key] for key in keys} | {"window": config.training.window, "stride": config.training.stride}


def package_kayan(settings: dict, work: Path) -> dict:
    """``kayan package`` the run, then ``kayan export --onnx --quantize int8`` (with its parity check)."""
    from kayan.inference.export import export_onnx
    from kayan.inference.packaging import package

    folder = package(work / "kayan", work / "kayan-package", overwrite=True)
    # force: the benchmark reports the int8 F1 loss (kept below) rather than stopping on it
    report = export_onnx(folder, quantize="int8", limit=PARITY_SENTENCES, force=True, threads=settings["threads"])
    kept = ("data", "torch", "onnx", "onnx-int8", "passed")
    return {"package": str(folder), "onnx_parity": {key: report[key] for key in kept if key in report}}


def build_encoder(settings: dict, work: Path) -> dict:
    """The tiny encoder, built once (WordPiece on the train words + a fresh small BERT) and saved."""
    import transformers

    from kayan.data import corpora
    from kayan.config import load_config
    from kayan.model.modeling import build_model
    from kayan.data.schemes import label_list

    config = load_config(REPO / settings["config"])
    train = corpora.load(TRAIN_REF).sentences
    transformers.set_seed(settings["seed"])
    model, tokenizer = build_model(config.model, labels=label_list(s.tags for s in train),
                                   train_words=(w for s in train for w in s.words), window=config.training.window)
    folder = Path(settings["encoder_folder"])
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return {"folder": str(folder), "vocab_size": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters())}


def infer(settings: dict, work: Path, backend: str) -> dict:
    """Words per second tagging the test split: ``pipeline`` on the plain model, or Kayan's Predictor."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_predict

    from kayan.data import corpora

    sentences = [list(s.words) for s in corpora.load(TEST_REF).sentences]
    lines, batch = [" ".join(words) for words in sentences], settings["inference_batch_size"]
    if backend == "pipeline":
        seconds, entities, note = bench_predict.bench_pipeline(work / "plain" / "model", lines, batch, settings["threads"])
    else:
        seconds, entities, note = bench_predict.bench_predictor(
            work / "kayan-package", "\n".join(lines), "\n".join(lines[:8]), backend, batch, settings["threads"])
    words = sum(map(len, sentences))
    return {"backend": backend, "words": words, "seconds": round(seconds, 3), "words_per_second": round(words / seconds, 1),
            "entities": entities, "note": note}


PHASE_FUNCTIONS = {
    "encoder": build_encoder, "plain-train": train_plain, "kayan-train": train_kayan, "kayan-package": package_kayan,
    "infer-pipeline": lambda s, w: infer(s, w, "pipeline"), "infer-kayan-torch": lambda s, w: infer(s, w, "torch"),
    "infer-kayan-onnx-int8": lambda s, w: infer(s, w, "onnx-int8"),
}


def limit_threads(threads: int) -> None:
    """The same CPU thread count for every phase: PyTorch's pool here (training, export); the inference
    phases pass ``threads`` to ``kayan.load``, which sets onnxruntime's intra-op pool too."""
    from kayan.model.backends import set_threads

    set_threads(threads)


def run_child(phase: str, work: Path) -> None:
    """The body of a phase subprocess: run it and write its result, with this process's peak RSS."""
    import warnings

    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    settings = json.loads((work / "settings.json").read_text(encoding="utf-8"))
    if settings["threads"]:
        limit_threads(settings["threads"])
    result = PHASE_FUNCTIONS[phase](settings, work)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)  # vs wall time: the cores it really got
    (work / f"{phase}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The parent: settings, phases, ratios, reports

def settings_for(args: argparse.Namespace, work: Path) -> dict:
    """Everything both recipes share, from the Kayan recipe config and the command line."""
    from kayan.config import load_config

    config = load_config(REPO / RECIPES[args.encoder])
    t = config.training
    return {
        "encoder": args.encoder, "config": RECIPES[args.encoder], "quick": args.quick,
        "encoder_folder": str(work / "encoder" if args.encoder == "tiny" else ME5_FOLDER),
        "epochs": args.epochs or (1 if args.quick else t.epochs), "seed": t.seed if args.seed is None else args.seed,
        "learning_rate": t.learning_rate, "batch_size": t.batch_size, "eval_batch_size": t.eval_batch_size,
        "scheduler": t.scheduler, "warmup_ratio": t.warmup_ratio, "weight_decay": t.weight_decay,
        "train_sentences": args.train_sentences or (QUICK_SENTENCES if args.quick else None),
        "train_ref": TRAIN_REF, "test_ref": TEST_REF, "inference_batch_size": args.batch_size,
        "plain": {"max_length": PLAIN_MAX_LENGTH, "dev": None, "checkpoint": "last", "sampling": "random"},
        "kayan": {"window": t.window, "stride": t.stride, "dev_fraction": config.data.dev_fraction,
                  "select_best": t.select_best, "early_stopping_patience": t.early_stopping_patience,
                  "group_by_length": t.group_by_length, "onnx_parity_sentences": PARITY_SENTENCES},
        "tiny_shape": vars(config.model.tiny) if args.encoder == "tiny" else None, "device": "cpu",
        "threads": args.threads,  # None: each library's default (one per core)
    }


def prepare_work(work: Path, settings: dict) -> None:
    """A fresh scratch folder, the settings the children read, and the training prefix when asked."""
    from kayan.data import corpora

    if work.exists():
        if any(work.iterdir()) and not (work / "settings.json").is_file():
            raise SystemExit(f"{work} holds files this script did not write; choose another --work folder")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if settings["train_sentences"]:
        sentences = corpora.load(TRAIN_REF).sentences[: settings["train_sentences"]]
        path = work / f"anercorp-train-first-{len(sentences)}.txt"
        path.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(s.words, s.tags)) + "\n" for s in sentences),
                        encoding="utf-8")
        settings["train_ref"] = str(path)
    if settings["encoder"] == "me5-small" and not (ME5_FOLDER / "config.json").is_file():
        raise SystemExit(f"{ME5_FOLDER} is missing; build it: "
                         f"python {SHARED}/tools/offline-encoder/build_me5_small.py models/me5-small")
    (work / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")


def run_phase(phase: str, work: Path, index: int, total: int) -> dict:
    """Run one phase in a fresh Python process (no GPU visible); its log goes to WORK/logs/PHASE.log."""
    (work / "logs").mkdir(exist_ok=True)
    log = work / "logs" / f"{phase}.log"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
    threads = json.loads((work / "settings.json").read_text(encoding="utf-8"))["threads"]
    if threads:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    print(f"[{index}/{total}] {phase} ...", end=" ", flush=True)
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        code = subprocess.call([sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--work", str(work)],
                               stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    seconds = time.perf_counter() - started
    if code:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-25:])
        raise SystemExit(f"failed (status {code}); the end of {log}:\n{tail}")
    result = json.loads((work / f"{phase}.json").read_text(encoding="utf-8"))
    result["wall_seconds"] = round(seconds, 1)
    result["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # before, after: other work
    result["cores_used"] = round(result["cpu_seconds"] / seconds, 2)
    print(f"{seconds:.1f} s, {result['cores_used']:.1f} cores used, peak {result['peak_rss_mb']:.0f} MB, "
          f"load {load_before:.1f} → {os.getloadavg()[0]:.1f}", flush=True)
    return result


def measures(phases: dict) -> list[dict]:
    """The compared quantities: plain value, Kayan value, Kayan / plain, target and met / missed."""
    p, k = phases["plain-train"], phases["kayan-train"]
    pipe, torch_, int8 = phases["infer-pipeline"], phases["infer-kayan-torch"], phases["infer-kayan-onnx-int8"]
    rows = [
        ("test_f1", "test F1 (seqeval default, every test word)", p["test_f1"], k["test_f1"], 1.0, "{:.4f}"),
        ("train_tokens_per_second", "training throughput (non-padding subwords/s)",
         p["train_tokens_per_second"], k["train_tokens_per_second"], 1.5, "{:,.0f}"),
        ("train_wall_seconds", "training phase wall time (s)", p["wall_seconds"], k["wall_seconds"], None, "{:,.1f}"),
        ("train_peak_rss_mb", "training peak memory (MB RSS)", p["peak_rss_mb"], k["peak_rss_mb"], None, "{:,.0f}"),
        ("torch_words_per_second", "inference, PyTorch: pipeline vs Kayan (words/s)",
         pipe["words_per_second"], torch_["words_per_second"], 3.0, "{:,.0f}"),
        ("onnx_int8_words_per_second", "inference, ONNX int8: pipeline vs Kayan (words/s)",
         pipe["words_per_second"], int8["words_per_second"], 5.0, "{:,.0f}"),
        ("torch_peak_rss_mb", "inference peak memory, PyTorch (MB RSS)",
         pipe["peak_rss_mb"], torch_["peak_rss_mb"], None, "{:,.0f}"),
        ("onnx_int8_peak_rss_mb", "inference peak memory, ONNX int8 (MB RSS)",
         pipe["peak_rss_mb"], int8["peak_rss_mb"], None, "{:,.0f}"),
    ]
    return [compare(*row) for row in rows]


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
        f"{report['date']}, `{report['command']}`, {report['total_wall_seconds']:.0f} s in all; {m['cpu_model']}, "
        f"{m['usable_cores']} cores, {m['ram_gb']} GB RAM; 1-minute load average {min(loads):.1f}–{max(loads):.1f} "
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
    int8 = by_key["onnx_int8_words_per_second"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    panels = ((left, "training: subword tokens / s", ["plain recipe", "Kayan"], [train["plain"], train["kayan"]]),
              (right, "inference: words / s", ["pipeline", "Kayan\nPyTorch", "Kayan\nONNX int8"],
               [torch_["plain"], torch_["kayan"], int8["kayan"]]))
    for axis, title, names, values in panels:
        bars = axis.bar(names, values, color=["#9e9e9e"] + ["#1f77b4"] * (len(values) - 1))
        axis.bar_label(bars, labels=[f"{v:,.0f}\n({v / values[0]:.1f}×)" for v in values], fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.set_ylim(0, max(values) * 1.25)
    s = report["settings"]
    threads = f", {s['threads']} thread(s) per phase" if s.get("threads") else ""
    fig.suptitle(f"Kayan vs the plain transformers recipe — ANERcorp, {s['encoder']}, {s['epochs']:g} epoch(s), "
                 f"{report['machine']['usable_cores']} CPU cores{threads}", fontsize=10)
    fig.tight_layout()
    partial = path.with_name(path.stem + ".partial.png")
    fig.savefig(partial, dpi=120)
    os.replace(partial, path)
    return True


def machine() -> dict:
    """CPU model, cores, RAM and load of this machine."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else "MemTotal: 0 kB"
    ram_kb = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemTotal")))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": cpu, "logical_cores": os.cpu_count(), "usable_cores": cores, "ram_gb": round(ram_kb / 2**20, 1),
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
        path = out / f"{stem}{suffix}"
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
        written.append(path)
    if draw_chart(report, out / f"{stem}.png"):
        written.append(out / f"{stem}.png")
    return written


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="See the module docstring for what is measured and how.")
    parser.add_argument("--encoder", choices=sorted(RECIPES), default="tiny",
                        help="tiny: built once from ANERcorp train words (configs/anercorp-tiny.yaml); "
                             "me5-small: models/me5-small (configs/anercorp-me5-small.yaml)")
    parser.add_argument("--quick", action="store_true",
                        help=f"1 epoch on the first {QUICK_SENTENCES} train sentences "
                             "(under 5 minutes on 2 CPU cores with tiny)")
    parser.add_argument("--epochs", type=float, help="override the recipe's epochs (both recipes)")
    parser.add_argument("--train-sentences", type=int, help="train on the first N ANERcorp train sentences (both recipes)")
    parser.add_argument("--seed", type=int, help="override the recipe's seed (both recipes)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads of every phase (PyTorch and onnxruntime); default: the libraries' choice, one "
                             "per core. Where other work holds cores, 1 avoids the oversubscription that otherwise "
                             "dominates the timings")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="inference batch size: pipeline inputs / Predictor windows")
    parser.add_argument("--out", type=Path, default=REPO / "scripts" / "results",
                        help="folder for the JSON, Markdown and PNG (default: scripts/results)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: train/benchmark/ENCODER[-quick]); replaced")
    parser.add_argument("--redraw", type=Path, metavar="JSON",
                        help="only rewrite the Markdown table and the chart from a result JSON this script wrote")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if (SHARED / "data").is_dir():
        os.environ.setdefault("KAYAN_DATA_DIR", str(SHARED / "data"))
    stem = f"benchmark-{args.encoder}" + ("-quick" if args.quick else "")
    work = (args.work or REPO / "train" / "benchmark" / stem.removeprefix("benchmark-")).resolve()
    if args.phase:
        return run_child(args.phase, work)
    if args.redraw:
        report = json.loads(args.redraw.read_text(encoding="utf-8"))
        written = write_outputs(report, args.redraw.parent, args.redraw.stem)
        return print(f"wrote {', '.join(str(p) for p in written)}")
    started, date = time.perf_counter(), datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    host = machine()
    settings = settings_for(args, work)
    prepare_work(work, settings)
    todo = [phase for phase in PHASES if phase != "encoder" or args.encoder == "tiny"]
    phases = {phase: run_phase(phase, work, i, len(todo)) for i, phase in enumerate(todo, 1)}
    report = {
        "date": date, "command": " ".join(["python", *sys.argv]), "machine": host, "versions": versions(),
        "settings": settings, "phases": {name: {key: r[key] for key in PHASE_KEYS} for name, r in phases.items()},
        "plain": {"train": phases["plain-train"], "inference": phases["infer-pipeline"]},
        "kayan": {"train": phases["kayan-train"], "package": phases["kayan-package"],
                  "inference": {"torch": phases["infer-kayan-torch"], "onnx_int8": phases["infer-kayan-onnx-int8"]}},
        "encoder": phases.get("encoder"),
    }
    report["measures"] = measures(phases)
    report["total_wall_seconds"] = round(time.perf_counter() - started, 1)
    written = write_outputs(report, args.out, stem)
    print("\n" + markdown(report))
    print(f"total {report['total_wall_seconds']:.0f} s; wrote {', '.join(str(p) for p in written)}")


if __name__ == "__main__":
    main()
