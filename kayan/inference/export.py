"""ONNX export for fast CPU inference and its parity check (the ONNX backend is :class:`kayan.model.backends.OnnxBackend`, opened by :func:`~kayan.model.backends.open_onnx`).

``kayan export MODEL --onnx [--quantize int8]`` writes into the package folder::

    onnx/model.onnx        float32, dynamic batch and sequence axes (inputs: input_ids, attention_mask),
                           attention, LayerNorm, GELU and embeddings fused by onnxruntime's transformer optimizer
    onnx/model.int8.onnx   int8 weights (dynamic quantization, per channel) of the encoder's MatMul and
                           Attention nodes; embeddings and classifier head stay float32, and so do
                           the encoder groups the parity data shows most sensitive, where the F1
                           loss needs it (:mod:`kayan.inference.int8_choice`); if asked
    onnx/parity.json       the parity check, also stored in kayan.json under "onnx"
    onnx/.kayan-output     marks onnx/ as an export, which the next export replaces; an onnx/ that is a
                           file or holds anything else is refused (:mod:`kayan.outputs`)

The parity check tags a labelled split (by default the model's whole dev set, as kayan.json records
it) with PyTorch and with each ONNX model through the shared inference path of
:mod:`kayan.model.tagging`, once per backend (only the forward call differs), and reports each one's
micro F1, the largest absolute difference from PyTorch's word scores (the logits at each word's
scored subword, which decide its tag) and its time. The float32 model must match (largest
difference at most ``tolerance``, F1 within 0.001) and the int8 model may lose at most
``max_f1_loss`` F1 points (unless forced), or nothing is written. The export uses PyTorch's
TorchScript-based exporter (``dynamo=False``), which needs no extra package; the traced example batch
holds a padded row, so the attention-mask path is part of the graph. (optimum-onnx, the exporter of
Hugging Face, pins transformers < 4.58, so it cannot export with the transformers 5 Kayan uses.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from kayan import atomic, console, outputs
from kayan.data import corpora
from kayan.errors import KayanError
from kayan.evaluation.metrics import score
from kayan.inference import int8_choice
from kayan.model import modelref, settings
from kayan.model.backends import ONNX_FILES, onnx_runtime, open_onnx
from kayan.model.settings import TrainingData
from kayan.model.tagging import decode_scores, score_words, windows

OPSET = 17
TOLERANCE = 1e-3
F1_TOLERANCE = 1e-3
MAX_F1_LOSS = 0.5  # F1 points (of 100) the int8 model may lose against PyTorch on the parity data
FALLBACK_DATA = "sample:test"
QUANTIZED_OPS = ("MatMul", "Attention")  # the compute; Gather (embeddings) and the rest stay float32
VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


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
    # Traced with eager attention: its graph (and its mask) is what onnxruntime's optimizer fuses into
    # one Attention node; the SDPA graph is left as a dozen unfused nodes per layer, slower than PyTorch.
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer warnings
            torch.onnx.export(
                model, (), str(path), kwargs={"input_ids": ids, "attention_mask": mask},
                input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
            )
    finally:
        model.set_attn_implementation(previous)
        model.eval()
    return path


@contextlib.contextmanager
def _quiet():
    """Silence onnxruntime's tools while the block runs: their advice and statistics go to the root logger
    and warnings. The process's ``logging.disable`` level is put back after, whatever it was."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def optimize_graph(source: Path, target: Path, config) -> dict[str, int]:
    """Fuse attention, LayerNorm, GELU and embeddings (onnxruntime's transformer optimizer, BERT patterns).

    Only the portable fusions run here (``opt_level=0``); the session applies the rest for the CPU it
    runs on. Encoders whose graph matches no pattern are written unchanged.

    Args:
        source: the float32 model from :func:`write_onnx`.
        target: where the optimized model goes (may equal ``source``).
        config: the model's config (attention heads and hidden size).

    Returns:
        The fused operators and their counts, e.g. ``{"Attention": 12, "Gelu": 12, ...}``.
    """
    onnx_runtime()
    from onnxruntime.transformers.optimizer import optimize_model

    with _quiet():
        optimized = optimize_model(str(source), model_type="bert", num_heads=getattr(config, "num_attention_heads", 0) or 0,
                                   hidden_size=getattr(config, "hidden_size", 0) or 0, opt_level=0)
        optimized.save_model_to_file(str(target))
        fused = optimized.get_fused_operator_statistics()
    return {name: count for name, count in sorted(fused.items()) if count}


def head_nodes(model) -> list[str]:
    """Names of the MatMul/Gemm nodes nearest the graph's outputs (the classifier head), walking back.

    Args:
        model: an ``onnx.ModelProto``.
    """
    producers = {out: node for node in model.graph.node for out in node.output}
    todo, seen, found = [o.name for o in model.graph.output], set(), []
    while todo:
        node = producers.get(todo.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in ("MatMul", "Gemm"):
            found.append(node.name)
        else:
            todo += list(node.input)
    return found


def needs_reduce_range(flags: set[str] | None = None) -> bool:
    """Whether int8 weights need 7 bits here: x86 CPUs without VNNI saturate the u8×s8 products.

    >>> needs_reduce_range({"avx2", "avx512_vnni"}), needs_reduce_range({"avx2"}), needs_reduce_range(set())
    (False, True, False)
    """
    if flags is None:
        try:
            text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.partition(":")[2].split()}
    return "avx2" in flags and not flags & VNNI_FLAGS


def quantize_int8(source: Path, target: Path, *, excluded: Sequence[str]) -> dict:
    """Quantize a float32 ONNX model's weights to int8 (onnxruntime dynamic quantization).

    Per-channel int8 weights of the MatMul and (fused) Attention nodes, 7-bit where the CPU lacks
    VNNI (:func:`needs_reduce_range`); the embeddings (Gather, EmbedLayerNormalization) and the nodes
    ``excluded`` (the classifier head) stay float32: they cost little time and much of the accuracy.

    Args:
        source: the float32 model.
        target: the int8 model to write.
        excluded: names of nodes left in float32.

    Returns:
        The settings used: ``per_channel``, ``reduce_range``, ``op_types``.
    """
    onnx_runtime()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    settings = {"per_channel": True, "reduce_range": needs_reduce_range(), "op_types": list(QUANTIZED_OPS)}
    with _quiet():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=settings["reduce_range"], op_types_to_quantize=list(QUANTIZED_OPS),
                         nodes_to_exclude=list(excluded),  # fused contrib ops defeat shape inference: their outputs are float
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
    return settings


def parity(reference, backends: Mapping[str, object], tokenizer, sentences, options, id2label, *,
           cache: dict | None = None) -> dict:
    """Tag labelled sentences with a reference and other backends; compare word scores and F1.

    Each backend tags through :func:`kayan.model.tagging.score_words` and :func:`kayan.model.tagging.decode_scores`
    (what :func:`kayan.model.tagging.tag_words` runs), so the check measures the path users run.

    Args:
        reference: the PyTorch model (or backend) the others are compared with.
        backends: name → backend (:func:`~kayan.model.backends.open_onnx`).
        tokenizer: the model's tokenizer.
        sentences: :class:`~kayan.data.sentence.Sentence` objects with gold tags.
        options: the model's :class:`~kayan.model.tagging.TaggingOptions`.
        id2label: label id → tag.
        cache: a dict kept between calls on the same reference and sentences: the reference is
            then tagged once (export's int8 retry compares a second int8 model with it).

    Returns:
        ``sentences``, ``words``, ``windows``, then per backend (``torch`` first) its micro ``f1`` and
        ``seconds`` (tokenizing, forward passes and decoding); the others add ``max_abs_logit_diff``,
        ``word_kl`` (:func:`kayan.inference.int8_choice.word_kl`), ``tag_agreement`` and ``f1_delta``.
    """
    words = [list(s.words) for s in sentences]
    lengths = [len(w) for w in words]
    gold = [list(s.tags) for s in sentences]

    def run(engine):
        start = time.perf_counter()
        scores = score_words(engine, tokenizer, words, options, n_labels=len(id2label))
        tags, _ = decode_scores(scores, id2label, options.decoding)
        return scores, tags, round(time.perf_counter() - start, 3)

    cache = {} if cache is None else cache
    if "reference" not in cache:
        cache["reference"] = run(reference)
    expected, expected_tags, seconds = cache["reference"]
    f1 = score(gold, expected_tags)["micro"]["f1"]
    report: dict = {"sentences": len(sentences), "words": sum(lengths), "windows": len(windows(tokenizer, words, options)),
                    "decoding": options.decoding, "torch": {"f1": f1, "seconds": seconds}}
    for name, backend in backends.items():
        got, tags, seconds = run(backend)
        same = sum(a == b for x, y in zip(expected_tags, tags) for a, b in zip(x, y))
        diff = max((float(np.abs(a - b).max()) for a, b in zip(expected, got) if a.size), default=0.0)
        each_f1 = score(gold, tags)["micro"]["f1"]
        report[name] = {"f1": each_f1, "f1_delta": each_f1 - f1, "max_abs_logit_diff": diff,
                        "word_kl": int8_choice.word_kl(expected, got), "tag_agreement": same / max(1, sum(lengths)), "seconds": seconds}
    return report


def _parity_data(trained_on: TrainingData, data: str | None, limit: int | None) -> tuple[str, list]:
    """The labelled sentences of the parity check: ``data``, else the model's whole dev set (the refs
    kayan.json records, a carved dev block carved again the same way), else the sample's test split."""
    refs = [data] if data else list(trained_on.dev) or [FALLBACK_DATA]
    try:
        sentences = [s for ref in refs for s in corpora.load_split(ref).sentences]
    except KayanError:
        if data:
            raise
        refs, sentences = [FALLBACK_DATA], corpora.load_split(FALLBACK_DATA).sentences
    return ",".join(refs), list(sentences[:limit] if limit else sentences)


def seen_in_training(trained_on: TrainingData, ref: str) -> bool:
    """Whether every split of the parity data ``ref`` (comma-joined refs) was in the model's training
    data, as a refit model's dev set is: int8's F1 loss on it understates the loss on new text (on
    me5-small: 0.21 points on the dev it was refit on, 1.17 on test).

    >>> seen_in_training(TrainingData(train=("anercorp:train", "anercorp:dev")), "anercorp:dev")
    True
    >>> seen_in_training(TrainingData(train=("anercorp:train",)), "anercorp:dev")
    False
    """
    trained = set(trained_on.train)
    return bool(trained) and set(ref.split(",")) <= trained


def passed(report: Mapping, tolerance: float = TOLERANCE) -> bool:
    """Whether the float32 ONNX model matches PyTorch: logits within ``tolerance``, F1 within 0.001.

    >>> passed({"onnx": {"max_abs_logit_diff": 2e-6, "f1_delta": 0.0}})
    True
    """
    fp32 = report["onnx"]
    return fp32["max_abs_logit_diff"] <= tolerance and abs(fp32["f1_delta"]) <= F1_TOLERANCE


def int8_f1_loss(report: Mapping) -> float:
    """F1 points (of 100) the int8 model loses against PyTorch in a parity report (negative: it gains).

    >>> round(int8_f1_loss({"torch": {"f1": 0.6538}, "onnx-int8": {"f1": 0.6407}}), 2)
    1.31
    """
    return (report["torch"]["f1"] - report["onnx-int8"]["f1"]) * 100


def _int8_within(report: dict, files: dict, check, probe, *, head: list[str], max_f1_loss: float,
                 threads: int | None) -> dict:
    """The int8 row of the report. When int8 with only the head in float32 loses more than ``max_f1_loss``
    F1 points, each encoder group's sensitivity is measured on ``probe`` (a slice of the parity data)
    and the most sensitive groups are kept in float32, fewest first, until the loss is within the limit
    (:mod:`kayan.inference.int8_choice`); ``files["onnx-int8"]`` is then the last model tried."""
    row = dict(report["onnx-int8"], kept_float=["head"], excluded=list(head))
    loss = int8_f1_loss({"torch": report["torch"], "onnx-int8": row})
    attempts = [_attempt(row, loss)]
    if loss > max_f1_loss:
        candidates = _Candidates(files, head, threads)
        console.info(f"int8 with the head in float32 loses {loss:.2f} F1 points (more than {max_f1_loss}): measuring "
                     f"{len(candidates.groups)} encoder groups one by one on {probe.words} words of {report['data']}")
        sensitivity = candidates.sensitivity(probe)

        def loss_of(kept: tuple[str, ...]) -> float:
            nonlocal row, loss
            row = candidates.keep_float(kept, check)
            loss = int8_f1_loss({"torch": report["torch"], "onnx-int8": row})
            attempts.append(_attempt(row, loss))
            console.info(f"int8 with {_float_part(row)} in float32 loses {loss:.2f} F1 points")
            return loss

        ranked = int8_choice.rank({name: each["word_kl"] for name, each in sensitivity.items()})
        int8_choice.choose_float(ranked, loss_of, max_f1_loss, most=len(candidates.groups) // 2)
        row = dict(row, sensitivity=sensitivity)
    return dict(row, f1_loss_points=round(loss, 4), max_f1_loss=max_f1_loss, attempts=attempts)


def _attempt(row: Mapping, loss: float) -> dict:
    """One int8 model tried, as ``attempts`` lists it."""
    return {"kept_float": row["kept_float"], "f1": row["f1"], "f1_loss_points": round(loss, 4), "seconds": row["seconds"]}


class _Candidates:
    """int8 models with some encoder groups in float32, cut from the float32 and the fully quantized graph.

    Args:
        files: the export's files (``onnx``, and ``onnx-int8``: quantized with only ``head`` in float32,
            and where each candidate tried last is written).
        head: the classifier head's nodes.
        threads: the parity check's threads.
    """

    def __init__(self, files: Mapping[str, Path], head: list[str], threads: int | None):
        import onnx

        self.models = {name: onnx.load(str(files[name])) for name in ("onnx", "onnx-int8")}
        self.groups = int8_choice.encoder_groups(self.models["onnx"], skip=head)
        self.head, self.threads, self.target = list(head), threads, Path(files["onnx-int8"])

    def _measure(self, quantized: set[str], check, path: Path) -> dict:
        """Write the candidate with the ``quantized`` nodes in int8 to ``path``; its parity row from ``check``."""
        import onnx

        onnx.save(int8_choice.mixed_model(self.models["onnx"], self.models["onnx-int8"], quantized), str(path))
        return check({"onnx-int8": open_onnx(path, "onnx-int8", threads=self.threads)})["onnx-int8"]

    def sensitivity(self, probe) -> dict[str, dict]:
        """Per group, what it alone in int8 does to ``probe``'s word scores and tags."""
        path = self.target.with_name("candidate.onnx")
        try:
            rows = {name: self._measure(set(nodes), probe, path) for name, nodes in self.groups.items()}
        finally:
            path.unlink(missing_ok=True)
        return {name: {key: row[key] for key in ("word_kl", "tag_agreement", "f1_delta")} for name, row in rows.items()}

    def keep_float(self, kept: tuple[str, ...], check) -> dict:
        """The parity row of the int8 model with the groups ``kept`` in float32 (written to the int8 file)."""
        floats = [node for name in kept for node in self.groups[name]]
        quantized = {node for nodes in self.groups.values() for node in nodes} - set(floats)
        return dict(self._measure(quantized, check, self.target), kept_float=["head", *kept], excluded=[*self.head, *floats])


def export_onnx(path: str | Path, *, quantize: str | None = None, data: str | None = None, limit: int | None = None,
                batch_size: int = 32, tolerance: float = TOLERANCE, max_f1_loss: float = MAX_F1_LOSS,
                force: bool = False, threads: int | None = None) -> dict:
    """Export a packaged model to ONNX (and int8), check parity, record it; returns the parity report.

    Args:
        path: a folder written by ``kayan package`` (the ONNX files go into its ``onnx/``).
        quantize: ``None`` or ``"int8"``.
        data: ``CORPUS:SPLIT`` or a file for the parity check (default: the model's whole dev set as
            kayan.json records it, else ``sample:test``).
        limit: use only the first ``limit`` sentences of ``data``.
        batch_size: windows per forward call.
        tolerance: the largest absolute logit difference the float32 model may show.
        max_f1_loss: the most F1 points the int8 model may lose against PyTorch on the parity data.
        force: write the int8 model even when it loses more than ``max_f1_loss``.
        threads: CPU threads of the parity check's forward passes (default: one per physical core).

    Raises:
        KayanError: onnxruntime is missing, the folder is not a model, the data cannot be read, the
            float32 model fails the parity check, or the int8 model loses more than ``max_f1_loss``
            F1 points and ``force`` is not set (then nothing is written).
    """
    if quantize not in (None, "int8"):
        raise KayanError(f"--quantize {quantize!r} is not supported; use --quantize int8")
    if not max_f1_loss >= 0:
        raise KayanError(f"--max-f1-loss {max_f1_loss}: give F1 points >= 0 (default {MAX_F1_LOSS})")
    ort = onnx_runtime()
    import torch

    opened = _open_single(path, threads=threads, batch_size=batch_size)
    folder, stored, model = opened.folder, opened.stored, opened.model
    onnx_dir, data_paths = folder / "onnx", outputs.ref_paths([data])
    fix = f"move {onnx_dir} aside: kayan export writes its ONNX files there"
    outputs.check_replaceable(onnx_dir, outputs.ONNX, inputs=data_paths, overwrite=True, fix=fix)  # before the slow part
    trained_on = (stored.training_data if stored is not None else None) or TrainingData()
    ref, sentences = _parity_data(trained_on, data, limit)
    with outputs.folder(onnx_dir, outputs.ONNX, inputs=data_paths, overwrite=True, fix=fix) as tmp:
        files, fused, quantization = _write_files(model, opened.tokenizer, tmp, quantize=quantize)
        tagged: dict = {}  # the PyTorch pass over the parity data, done once for every check
        check = lambda backends, part=sentences, cache=tagged: parity(  # noqa: E731
            model, backends, opened.tokenizer, part, opened.options, opened.id2label, cache=cache)
        sessions = {name: open_onnx(file, name, threads=threads) for name, file in files.items()}
        report = {"data": ref, "data_seen_in_training": seen_in_training(trained_on, ref), **check(sessions),
                  "tolerance": tolerance, "opset": OPSET, "fused": fused, "torch_version": torch.__version__,
                  "onnxruntime_version": ort.__version__}
        report["passed"] = passed(report, tolerance)
        del sessions  # their memory, before int8's candidates load theirs
        _refuse_a_mismatch(folder, report)
        if quantize:
            probe = _Probe(check, [sentences[i] for i in int8_choice.probe_rows([len(s.words) for s in sentences])])
            report["onnx-int8"] = dict(quantization, **_int8_within(report, files, check, probe, head=quantization["excluded"],
                                                                    max_f1_loss=max_f1_loss, threads=threads), forced=force)
            _refuse_an_int8_loss(folder, report, max_f1_loss)
        report["files"] = {name: ONNX_FILES[name] for name in files}
        atomic.write_text(tmp / "parity.json", json.dumps(report, indent=2))
    if stored is not None:
        settings.write(folder, dataclasses.replace(stored, onnx=report))
    return report


class _Probe:
    """The parity check on a slice of the parity data (PyTorch tags it once): where sensitivity is measured."""

    def __init__(self, check, sentences: list):
        self.check, self.sentences, self.cache = check, sentences, {}
        self.words = sum(len(s.words) for s in sentences)

    def __call__(self, backends: Mapping[str, object]) -> dict:
        return self.check(backends, self.sentences, self.cache)


def _open_single(path: str | Path, *, threads: int | None, batch_size: int) -> modelref.OpenModel:
    """The PyTorch model to export, on the CPU; an ensemble package is refused (its members export one by one)."""
    opened = modelref.open_model(path, backend="torch", threads=threads, batch_size=batch_size, device="cpu")
    if not isinstance(opened, modelref.OpenModel):
        raise KayanError(f"{opened.folder} is an ensemble package; export each member instead: "
                         f"kayan export {opened.members[0].folder} --onnx (and the others)")
    return opened


def _write_files(model, tokenizer, folder: Path, *, quantize: str | None) -> tuple[dict[str, Path], dict[str, int], dict | None]:
    """The ONNX files in ``folder``: ``(files by backend name, fused node counts, the int8 quantization's settings)``."""
    files = {"onnx": write_onnx(model, tokenizer, folder / "model.onnx")}
    fused = optimize_graph(files["onnx"], files["onnx"], model.config)
    quantization = None
    if quantize:
        import onnx

        head = head_nodes(onnx.load(str(files["onnx"]), load_external_data=False))
        files["onnx-int8"] = folder / "model.int8.onnx"
        quantization = dict(quantize_int8(files["onnx"], files["onnx-int8"], excluded=head), excluded=head)
    return files, fused, quantization


def _refuse_a_mismatch(folder: Path, report: Mapping) -> None:
    """Fail when the float32 ONNX model does not match PyTorch (``report["passed"]``)."""
    if not report["passed"]:
        raise KayanError(f"{folder}: the ONNX export does not match PyTorch on {report['data']} (largest logit difference "
                         f"{report['onnx']['max_abs_logit_diff']:.2e}, F1 {report['onnx']['f1']:.4f} vs "
                         f"{report['torch']['f1']:.4f}); nothing written: report it with your torch version")


def _refuse_an_int8_loss(folder: Path, report: Mapping, max_f1_loss: float) -> None:
    """Fail when the int8 model loses more than ``max_f1_loss`` F1 points and was not forced."""
    int8 = report["onnx-int8"]
    if int8["f1_loss_points"] > max_f1_loss and not int8["forced"]:
        raise KayanError(f"{folder}: the int8 model loses {int8['f1_loss_points']:.2f} F1 points on {report['data']} "
                         f"({int8['f1']:.4f} vs {report['torch']['f1']:.4f}) even with {_float_part(int8)} in float32, more than "
                         f"--max-f1-loss {max_f1_loss}; nothing written: export without --quantize, or add --force to keep it anyway")


def format_parity(report: Mapping) -> str:
    """A short table of the parity report, for the terminal.

    >>> print(format_parity({"data": "sample:test", "sentences": 2, "words": 9, "windows": 2,
    ...     "torch": {"f1": 0.5, "seconds": 0.25}, "onnx": {"f1": 0.5, "max_abs_logit_diff": 1e-6, "tag_agreement": 1.0}}))
    parity on sample:test (2 sentences, 9 words, 2 windows)
    backend        F1  max |logit diff|  tag agreement  words/s
    torch      0.5000                 -              -       36
    onnx       0.5000          1.00e-06         1.0000        -
    """
    lines = [f"parity on {report['data']} ({report['sentences']} sentences, {report['words']} words, {report['windows']} windows)",
             f"{'backend':<10}{'F1':>7}{'max |logit diff|':>18}{'tag agreement':>15}{'words/s':>9}"]
    for name in ("torch", *predict_names(report)):
        row = report[name]
        diff = f"{row['max_abs_logit_diff']:.2e}" if "max_abs_logit_diff" in row else "-"
        agree = f"{row['tag_agreement']:.4f}" if "tag_agreement" in row else "-"
        speed = f"{report['words'] / row['seconds']:.0f}" if row.get("seconds") else "-"
        lines.append(f"{name:<10}{row['f1']:>7.4f}{diff:>18}{agree:>15}{speed:>9}")
    if "f1_loss_points" in report.get("onnx-int8", {}):
        int8 = report["onnx-int8"]
        lines.append(f"int8 ({_float_part(int8)} in float32) loses {int8['f1_loss_points']:.2f} F1 points "
                     f"(at most {int8['max_f1_loss']} allowed{'; forced' if int8['forced'] else ''})")
    if report.get("data_seen_in_training"):
        lines.append(f"note: the model was trained on {report['data']} (a refit model's dev set), so this check understates "
                     "what int8 loses on new text; check it on held-out sentences with --data CORPUS:SPLIT")
    return "\n".join(lines)


def _float_part(int8: Mapping) -> str:
    """What an int8 row keeps in float32, in words.

    >>> _float_part({"kept_float": ["head", "layer.3/ffn-output"]})
    'head, layer.3/ffn-output'
    """
    return ", ".join(int8.get("kept_float", ["head"]))


def predict_names(report: Mapping) -> list[str]:
    """The ONNX backends present in a parity report, in a fixed order."""
    return [name for name in ("onnx", "onnx-int8") if name in report]
