"""PyTorch precision: fp32 (the scores of record), bf16 autocast, and auto (bf16 where the device has it natively)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
import torch

import kayan
from kayan.cli import main
from kayan.errors import KayanError
from kayan.model import backends
from kayan.model.backends import TorchBackend, cpu_has_bf16, resolve_precision
from kayan.model.modelref import load_torch
from tests.conftest import fast_config


def test_unknown_precision_is_refused_with_the_choices(built):
    with pytest.raises(KayanError, match=r"precision 'fp64' is unknown; use one of: fp32, bf16, auto"):
        kayan.load(built["package"], precision="fp64")


def test_auto_means_bf16_only_where_the_device_has_it(monkeypatch):
    monkeypatch.setattr(backends, "native_bf16", lambda device_type: device_type == "cuda")
    assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("bf16", "cpu") == "bf16"  # asked for by name: given, native or not


def test_cpu_flags_are_read_from_x86_and_arm_lines():
    assert cpu_has_bf16("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    assert cpu_has_bf16("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert not cpu_has_bf16("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n")  # AVX512 alone: emulated
    assert not cpu_has_bf16("model name\t: bf16 in a name is not a flag\n")


def test_bf16_logits_are_close_to_fp32_but_really_bf16(built):
    model, tokenizer = load_torch(built["noisy"], "cpu")
    encoded = tokenizer(["قال محمد في بيروت إن الاجتماع انتهى", "وزار عمان"], padding=True, return_tensors="np")
    ids, mask = encoded["input_ids"].astype(np.int64), encoded["attention_mask"].astype(np.int64)
    exact = TorchBackend(model).logits(ids, mask)
    fast = TorchBackend(model, precision="bf16").logits(ids, mask)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert not np.array_equal(fast, exact)  # the products really ran in bfloat16
    scale = np.abs(exact).max()
    assert np.abs(fast - exact).max() < 0.05 * scale  # bfloat16 keeps 8 bits of mantissa: about 1% per product
    assert next(model.parameters()).dtype.is_floating_point and next(model.parameters()).dtype.itemsize == 4  # weights stay fp32


def test_fp32_scoring_ignores_the_autocast_that_mixed_precision_training_wraps_around_forward(built):
    import accelerate

    model, tokenizer = load_torch(built["noisy"], "cpu")
    encoded = tokenizer(["قال محمد في بيروت إن الاجتماع انتهى"], return_tensors="np")
    ids, mask = encoded["input_ids"].astype(np.int64), encoded["attention_mask"].astype(np.int64)
    exact = TorchBackend(model).logits(ids, mask)
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # as TrainingArguments does before each Trainer
    try:
        wrapped = accelerate.Accelerator(mixed_precision="bf16", cpu=True).prepare_model(model)  # what Trainer(bf16=True) does
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert not np.array_equal(wrapped(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.detach().numpy(),
                              exact)  # its forward now runs in bfloat16
    assert np.array_equal(TorchBackend(wrapped).logits(ids, mask), exact)  # the dev and test scores of a bf16 run are fp32's
    assert not np.array_equal(TorchBackend(wrapped, precision="bf16").logits(ids, mask), exact)


def test_predictor_in_bf16_tags_nearly_as_fp32(built):
    from tests.tiny_package import sample_words

    sentences = sample_words()[:40]
    exact = kayan.load(built["noisy"], backend="torch")
    fast = kayan.load(built["noisy"], backend="torch", precision="bf16")
    assert fast.model.settings()["precision"] == "bf16" and exact.model.settings()["precision"] == "fp32"
    exact_tags, _ = exact.model.tag(sentences)
    fast_tags, _ = fast.model.tag(sentences)
    words = sum(len(s) for s in exact_tags)
    same = sum(a == b for s, t in zip(exact_tags, fast_tags) for a, b in zip(s, t))
    assert same / words > 0.9, f"{same} of {words} tags agree"


def test_cli_evaluate_reports_the_precision_it_ran(built, capsys):
    assert main(["evaluate", str(built["package"]), "--data", "sample:test", "--precision", "bf16", "--json", "--bootstrap", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["precision"] == "bf16"


def test_cli_predict_refuses_an_unknown_precision(built, capsys):
    assert main(["predict", str(built["package"]), "--precision", "fp8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --precision: invalid choice: 'fp8' (choose from 'fp32', 'bf16', 'auto')" in err


def test_training_precision_auto_resolves_and_is_recorded(tmp_path, monkeypatch):
    from kayan.training import train

    monkeypatch.setattr(backends, "native_bf16", lambda device_type: True)
    summary = train(fast_config(tmp_path, "training.epochs=1", "training.precision=auto"))
    assert summary["precision"] == "bf16" and summary["precision_note"] is None
    assert json.loads((tmp_path / "quickstart" / "summary.json").read_text())["precision"] == "bf16"


def test_auto_on_a_cpu_without_native_bf16_says_once_that_fp32_was_used_and_why(tmp_path, monkeypatch, capsys):
    from kayan.cli import main

    monkeypatch.setattr(backends, "native_bf16", lambda device_type: False)
    config = tmp_path / "auto.yaml"
    config.write_text(yaml.safe_dump(fast_config(tmp_path, "training.epochs=1", "training.precision=auto").to_dict()))
    assert main(["train", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "quickstart" / "summary.json").read_text())
    assert summary["precision"] == "fp32" and "no native bf16 (AVX512-BF16 or AMX)" in summary["precision_note"]
    assert out.count("precision auto used fp32") == 1, out


def test_config_refuses_an_unknown_training_precision(tmp_path):
    with pytest.raises(KayanError, match=r"training.precision"):
        fast_config(tmp_path, "training.precision=fp64")


# What the child prints: the variable when torch starts to load during `kayan train` (a config that
# does not exist: the command loads torch, then stops), after the command, and after importing the library.
_ONEDNN_PROBE = """
import os, sys
from kayan.cli import main
seen = []
sys.addaudithook(lambda event, args: event == "import" and args[0] == "torch" and not seen
                 and seen.append(os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY")))
status = main(["train", "no-such-config.yaml"])
import kayan.model.backends, kayan.training.trainer
print(status, "torch" in sys.modules, seen, os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"))
"""


def test_kayan_train_bounds_the_onednn_cache_before_torch_loads_and_the_library_leaves_it_alone():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    ours = subprocess.run([sys.executable, "-c", _ONEDNN_PROBE], capture_output=True, text=True, env=env, check=True)
    theirs = subprocess.run([sys.executable, "-c", _ONEDNN_PROBE], capture_output=True, text=True, check=True,
                            env={**env, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "8"})
    assert ours.stdout.split("\n")[-2] == "2 True ['64'] None", ours.stderr  # 2: the config is missing
    assert theirs.stdout.split("\n")[-2] == "2 True ['8'] 8", theirs.stderr  # a value the user exported wins
