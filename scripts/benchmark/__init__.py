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
  ``transformers.pipeline`` on the plain recipe's model, Kayan's Predictor with PyTorch (float32, and
  ``precision="auto"``: bfloat16 on CPUs with AVX512-BF16 or AMX) and with ONNX int8 on Kayan's
  package (``kayan package`` + ``kayan export --onnx --quantize int8``).

Everything runs on the CPU (children see no GPU), with each library's default thread count unless
``--threads N`` sets PyTorch's and onnxruntime's for every phase alike: on a machine where other work
holds cores, two threads fighting over one core slow small models down many times over (a tiny-model
training step went from 0.05 s to 1.5 s here), so the ratios then measure the contention, not the
recipes; ``--threads 1`` avoids that. Each phase records its CPU seconds / wall seconds (the cores it
really got) and the load average around it. The report names the CPU and the instruction sets that
decide the speed-ups (AVX2, AVX512, VNNI, BF16, AMX: ``report.machine``), so a table says which kind
of machine it holds. ``--fp32`` is the fp32-only mode: Kayan trains and infers in float32 whatever
the CPU has, which is what ``precision: auto`` falls back to on CPUs without native bf16 (most
laptops, AMD before Zen 4, Intel before Sapphire Rapids); the results are named ``...-fp32``.

Ratios are Kayan / plain; the targets (``report.TARGETS``: F1 not lower for both encoders; tiny:
training ≥ 1.5×, inference ≥ 3× with PyTorch and ≥ 5× with ONNX int8; me5-small, issue 10: training
≥ 3.5×, PyTorch ≥ 3×, int8 ≥ 6×) are printed beside them with met / missed, never used to tune anything.

Usage (from the repository root; $KAYAN_DATA_DIR or ../shared/data must hold ANERcorp)::

    python scripts/benchmark.py --quick               # tiny encoder, 1 epoch, first 1000 train sentences, full
                                                      #   test split: ~75 s with --threads 1, ~3.7 min without,
                                                      #   on 2 CPU cores shared with a training job
    python scripts/benchmark.py --encoder tiny        # configs/anercorp-tiny.yaml, all of train: ~30-60 min
    python scripts/benchmark.py --encoder me5-small   # multilingual-e5-small (models/me5-small), its recipe's
                                                      #   6 epochs + refit: about 2 hours on 2 CPU cores (most
                                                      #   of it the plain recipe in float32), 8 GB RAM
    python scripts/benchmark.py --encoder me5-small --train-sentences 800 --epochs 1   # speed and memory: ~6 min

The test split is tagged in full either way, so inference throughput and memory are measured on all
25,008 test words even in the short runs; F1 needs the full recipes (a few hundred steps at least).

Outputs go to ``--out`` (default ``scripts/results/``): ``benchmark-ENCODER[-quick].json`` (numbers,
machine, command, versions, settings), ``.md`` (a table for the README) and ``.png`` (the throughputs;
needs matplotlib, skipped with a note without it). Scratch files (encoder, run folders, packages,
per-phase logs) go to ``--work`` (default ``train/benchmark/ENCODER[-quick]``, ignored by git).

Layout: ``run`` (this command: settings, phases in order, ratios), ``phases`` (one phase per
process: ``python -m benchmark.phases PHASE WORK`` with ``scripts/`` on the path), ``plain`` (the
plain recipe), ``report`` (ratios, Markdown, chart, machine). ``scripts/benchmark.py`` calls ``run``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("KAYAN_SHARED_DIR", REPO.parent / "shared"))
RECIPES = {"tiny": "configs/anercorp-tiny.yaml", "me5-small": "configs/anercorp-me5-small.yaml"}
ME5_FOLDER = REPO / "models" / "me5-small"
TRAIN_REF, TEST_REF = "anercorp:train", "anercorp:test"
QUICK_SENTENCES = 1000  # --quick trains on the first 1000 ANERcorp train sentences (~29k words)
PLAIN_MAX_LENGTH = 512  # the guide's truncation length (lowered to the encoder's limit when smaller)
PARITY_SENTENCES = 200  # dev sentences `kayan export` checks ONNX against PyTorch on
PHASES = ("encoder", "plain-train", "kayan-train", "kayan-package",  # in order; each runs in its own process
          "infer-pipeline", "infer-kayan-torch", "infer-kayan-torch-auto", "infer-kayan-onnx-int8")
