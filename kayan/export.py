"""ONNX export for fast CPU inference, its parity check, and the ONNX backend the Predictor runs.

``kayan export MODEL --onnx [--quantize int8]`` writes into the package folder::

    onnx/model.onnx        float32, dynamic batch and sequence axes (inputs: input_ids, attention_mask)
    onnx/model.int8.onnx   weights quantized to int8 (onnxruntime's dynamic quantization), if asked
    onnx/parity.json       the parity check, also stored in kayan.json under "onnx"

The parity check tags a labelled split with PyTorch and with each ONNX model through the very same
windows, batches and decoding (only the forward call differs: :class:`OnnxBackend`), and reports each
one's micro F1 and the largest absolute logit difference from PyTorch. The float32 model must match
(largest difference at most ``tolerance``, F1 within 0.001) or nothing is written; the int8 model's
numbers are reported as they are. The export uses PyTorch's TorchScript-based exporter
(``dynamo=False``), which needs no extra package; the traced example batch holds a padded row, so the
attention-mask path is part of the graph.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from kayan import atomic, modelref
from kayan.errors import KayanError

OPSET = 17
TOLERANCE = 1e-3
F1_TOLERANCE = 1e-3
FALLBACK_DATA = "sample:test"


def _runtime():
    """The onnxruntime module, or a KayanError that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise KayanError("ONNX needs onnxruntime and onnx; install them with: pip install 'kayan[onnx]'") from None
    return onnxruntime


class OnnxBackend:
    """The forward call of an exported model on onnxruntime (CPU), behind the backend interface.

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx`.
        threads: intra-op threads (default: onnxruntime's choice, one per core).
    """

    def __init__(self, path: str | Path, *, threads: int | None = None):
        ort = _runtime()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            raise KayanError(f"{path}: cannot load the ONNX model ({str(error).splitlines()[0][:200]}); "
                             "re-run `kayan export MODEL --onnx`") from None
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.path = Path(path)

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Logits of one padded batch, as a float32 numpy array."""
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return self.session.run(None, feeds)[0].astype(np.float32, copy=False)


def _example(tokenizer, vocab_size: int):
    """A two-row example batch whose second row is padded (so the mask path is traced)."""
    import torch

    token = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else min(5, vocab_size - 1)
    ids = torch.full((2, 8), token, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    ids[1, 5:] = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return ids, mask


def write_onnx(model, tokenizer, path: Path) -> Path:
    """Export a token-classification model to ONNX with dynamic batch and sequence axes.

    Args:
        model: the PyTorch model (moved to CPU, float32, eval mode).
        tokenizer: its tokenizer (for valid example ids).
        path: the ``.onnx`` file to write.
    """
    import torch

    model = model.to("cpu").float().eval()
    ids, mask = _example(tokenizer, model.config.vocab_size)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "logits")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer warnings
        torch.onnx.export(
            model, (), str(path), kwargs={"input_ids": ids, "attention_mask": mask},
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    """Quantize a float32 ONNX model's weights to int8 (onnxruntime dynamic quantization)."""
    _runtime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # its "consider pre-processing" advice goes to the root logger
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    return target


def _tags(features, logits, lengths, id2label, decoding) -> list[list[str]]:
    from kayan.decoding import decode
    from kayan.features import word_scores

    return [decode(s, id2label, method=decoding) for s in word_scores(features, logits, lengths)]


def parity(reference, backends: Mapping[str, object], tokenizer, sentences, options, id2label) -> dict:
    """Tag labelled sentences with a reference and other backends; compare logits and F1.

    Args:
        reference: the PyTorch model (or backend) the others are compared with.
        backends: name → backend (:class:`OnnxBackend`).
        tokenizer: the model's tokenizer.
        sentences: :class:`~kayan.sentence.Sentence` objects with gold tags.
        options: the model's :class:`~kayan.tagging.TaggingOptions`.
        id2label: label id → tag.

    Returns:
        ``sentences``, ``words``, ``windows``, then per backend (``torch`` first) its micro ``f1``;
        the others add ``max_abs_logit_diff``, ``tag_agreement`` and ``f1_delta``.
    """
    from kayan.features import encode
    from kayan.metrics import score
    from kayan.tagging import normalized, window_logits

    words = normalized([s.words for s in sentences], options.normalization)
    lengths = [len(w) for w in words]
    gold = [list(s.tags) for s in sentences]
    features = encode(words, tokenizer, window=options.window, stride=options.stride)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    run = lambda engine: window_logits(engine, features, pad_id=pad_id, batch_size=options.batch_size)  # noqa: E731
    expected = run(reference)
    expected_tags = _tags(features, expected, lengths, id2label, options.decoding)
    f1 = score(gold, expected_tags)["micro"]["f1"]
    report: dict = {"sentences": len(sentences), "words": sum(lengths), "windows": len(features),
                    "decoding": options.decoding, "torch": {"f1": f1}}
    for name, backend in backends.items():
        got = run(backend)
        tags = _tags(features, got, lengths, id2label, options.decoding)
        same = sum(a == b for x, y in zip(expected_tags, tags) for a, b in zip(x, y))
        diff = max((float(np.abs(a - b).max()) for a, b in zip(expected, got) if a.size), default=0.0)
        each_f1 = score(gold, tags)["micro"]["f1"]
        report[name] = {"f1": each_f1, "f1_delta": each_f1 - f1, "max_abs_logit_diff": diff,
                        "tag_agreement": same / max(1, sum(lengths))}
    return report


def _parity_data(meta: Mapping, data: str | None, limit: int | None) -> tuple[str, list]:
    """The labelled sentences of the parity check: ``data``, else the model's test split, else the sample."""
    from kayan import corpora

    refs = [data] if data else list((meta.get("training_data") or {}).get("test") or []) or [FALLBACK_DATA]
    try:
        sentences = [s for ref in refs for s in corpora.load(ref).sentences]
    except KayanError:
        if data:
            raise
        refs, sentences = [FALLBACK_DATA], corpora.load(FALLBACK_DATA).sentences
    return ",".join(refs), list(sentences[:limit] if limit else sentences)


def passed(report: Mapping, tolerance: float = TOLERANCE) -> bool:
    """Whether the float32 ONNX model matches PyTorch: logits within ``tolerance``, F1 within 0.001.

    >>> passed({"onnx": {"max_abs_logit_diff": 2e-6, "f1_delta": 0.0}})
    True
    """
    fp32 = report["onnx"]
    return fp32["max_abs_logit_diff"] <= tolerance and abs(fp32["f1_delta"]) <= F1_TOLERANCE


def export_onnx(path: str | Path, *, quantize: str | None = None, data: str | None = None, limit: int | None = None,
                batch_size: int = 32, tolerance: float = TOLERANCE) -> dict:
    """Export a packaged model to ONNX (and int8), check parity, record it; returns the parity report.

    Args:
        path: a folder written by ``kayan package`` (the ONNX files go into its ``onnx/``).
        quantize: ``None`` or ``"int8"``.
        data: ``CORPUS:SPLIT`` or a file for the parity check (default: the model's test split, else
            ``sample:test``).
        limit: use only the first ``limit`` sentences of ``data``.
        batch_size: windows per forward call.
        tolerance: the largest absolute logit difference the float32 model may show.

    Raises:
        KayanError: onnxruntime is missing, the folder is not a model, the data cannot be read, or the
            float32 model fails the parity check (then nothing is written).
    """
    from kayan import predict

    if quantize not in (None, "int8"):
        raise KayanError(f"--quantize {quantize!r} is not supported; use --quantize int8")
    ort = _runtime()
    import torch

    folder = modelref.model_folder(path)
    model, tokenizer = modelref.load_torch(folder, "cpu")
    meta = modelref.read_meta(folder)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    from kayan.modeling import position_limit

    options = modelref.tagging_options(folder, meta, id2label, position_limit(model.config, tokenizer), batch_size=batch_size)
    ref, sentences = _parity_data(meta, data, limit)
    with atomic.folder(folder / "onnx") as tmp:
        files = {"onnx": write_onnx(model, tokenizer, tmp / "model.onnx")}
        if quantize:
            files["onnx-int8"] = quantize_int8(files["onnx"], tmp / "model.int8.onnx")
        backends = {name: OnnxBackend(file) for name, file in files.items()}
        report = {"data": ref, **parity(model, backends, tokenizer, sentences, options, id2label),
                  "tolerance": tolerance, "opset": OPSET, "torch_version": torch.__version__,
                  "onnxruntime_version": ort.__version__}
        report["passed"] = passed(report, tolerance)
        if not report["passed"]:
            raise KayanError(f"{folder}: the ONNX export does not match PyTorch on {ref} (largest logit difference "
                             f"{report['onnx']['max_abs_logit_diff']:.2e}, F1 {report['onnx']['f1']:.4f} vs "
                             f"{report['torch']['f1']:.4f}); nothing written: report it with your torch version")
        report["files"] = {name: predict.ONNX_FILES[name] for name in files}
        atomic.write_text(tmp / "parity.json", json.dumps(report, indent=2))
    if meta:
        meta["onnx"] = report
        atomic.write_text(folder / modelref.KAYAN_JSON, json.dumps(meta, ensure_ascii=False, indent=2))
    return report


def format_parity(report: Mapping) -> str:
    """A short table of the parity report, for the terminal.

    >>> print(format_parity({"data": "sample:test", "sentences": 2, "words": 9, "windows": 2,
    ...     "torch": {"f1": 0.5}, "onnx": {"f1": 0.5, "max_abs_logit_diff": 1e-6, "tag_agreement": 1.0}}))
    parity on sample:test (2 sentences, 9 words, 2 windows)
    backend        F1  max |logit diff|  tag agreement
    torch      0.5000                 -              -
    onnx       0.5000          1.00e-06         1.0000
    """
    lines = [f"parity on {report['data']} ({report['sentences']} sentences, {report['words']} words, {report['windows']} windows)",
             f"{'backend':<10}{'F1':>7}{'max |logit diff|':>18}{'tag agreement':>15}"]
    for name in ("torch", *predict_names(report)):
        row = report[name]
        diff = f"{row['max_abs_logit_diff']:.2e}" if "max_abs_logit_diff" in row else "-"
        agree = f"{row['tag_agreement']:.4f}" if "tag_agreement" in row else "-"
        lines.append(f"{name:<10}{row['f1']:>7.4f}{diff:>18}{agree:>15}")
    return "\n".join(lines)


def predict_names(report: Mapping) -> list[str]:
    """The ONNX backends present in a parity report, in a fixed order."""
    return [name for name in ("onnx", "onnx-int8") if name in report]
