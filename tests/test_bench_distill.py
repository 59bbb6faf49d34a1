"""scripts/bench_distill.py without timing: which rows a run measures."""

from __future__ import annotations

import importlib.util
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("bench_distill_script", REPO / "scripts" / "bench_distill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rows_each_flag_adds():
    rows_to_measure = _script().rows_to_measure

    def rows(**flags):
        args = Namespace(teacher=Path("T"), student=Path("S"), **{"fp32_only": False, "int8": False, "onnx": False, **flags})
        return [(r["system"], r["backend"], r["precision"]) for r in rows_to_measure(args)]

    assert rows(fp32_only=True) == [("pipeline (teacher package)", "pipeline", "fp32"),
                                    ("teacher", "torch", "fp32"), ("student", "torch", "fp32")]
    assert rows(fp32_only=True, onnx=True, int8=True) == [
        ("pipeline (teacher package)", "pipeline", "fp32"),
        ("teacher", "torch", "fp32"), ("teacher", "onnx", "fp32"), ("teacher", "onnx-int8", "fp32"),
        ("student", "torch", "fp32"), ("student", "onnx", "fp32"), ("student", "onnx-int8", "fp32")]
    assert ("student", "torch", "bf16") in rows() and ("teacher", "onnx", "fp32") not in rows()
