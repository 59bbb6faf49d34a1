"""Which encoder groups int8 keeps in float32: the groups of an optimized graph, the candidate models cut
from the float32 and int8 graphs, and the greedy choice."""

from __future__ import annotations

import types

import numpy as np
import pytest

pytest.importorskip("onnxruntime", exc_type=ImportError, reason="onnxruntime is not installed: pip install 'kayan[onnx]'")
pytest.importorskip("onnx", exc_type=ImportError, reason="onnx is not installed: pip install 'kayan[onnx]'")

from kayan.inference import int8_choice  # noqa: E402
from kayan.inference.export import head_nodes, optimize_graph, quantize_int8, write_onnx  # noqa: E402
from kayan.model.backends import OnnxBackend  # noqa: E402

LAYERS = 2


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """A random 2-layer BERT tagger exported and optimized as `kayan export` does, and its int8 model."""
    import onnx
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64, num_labels=5)
    model = transformers.BertForTokenClassification(config).eval()
    folder = tmp_path_factory.mktemp("int8-choice")
    source = write_onnx(model, types.SimpleNamespace(unk_token_id=1, pad_token_id=0), folder / "model.onnx")
    optimize_graph(source, source, config)
    head = head_nodes(onnx.load(str(source)))
    quantize_int8(source, folder / "model.int8.onnx", excluded=head)
    return {"folder": folder, "head": head, "float": onnx.load(str(source)), "int8": onnx.load(str(folder / "model.int8.onnx"))}


def test_groups_follow_the_layers_of_the_optimized_graph(graphs):
    groups = int8_choice.encoder_groups(graphs["float"], skip=graphs["head"])
    assert graphs["head"] == ["/classifier/MatMul"]
    expected = {}
    for i in range(LAYERS):  # the exporter names each MatMul after its module; the fused attention after its order
        expected[f"layer.{i}/attention"] = [f"Attention_{i}"]
        expected[f"layer.{i}/attention-output"] = [f"/bert/encoder/layer.{i}/attention/output/dense/MatMul"]
        expected[f"layer.{i}/ffn-in"] = [f"/bert/encoder/layer.{i}/intermediate/dense/MatMul"]
        expected[f"layer.{i}/ffn-output"] = [f"/bert/encoder/layer.{i}/output/dense/MatMul"]
    assert groups == expected and list(groups) == list(expected)  # in graph order
    with_head = int8_choice.encoder_groups(graphs["float"])
    assert with_head["/classifier/MatMul"] == ["/classifier/MatMul"]  # not a kind: a group of its own


def _logits(model, path):
    import onnx

    onnx.save(model, str(path))
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 60, size=(3, 12))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    return OnnxBackend(path).logits(ids, mask)


def test_mixed_models_match_the_float32_and_the_int8_model(graphs, tmp_path):
    groups = int8_choice.encoder_groups(graphs["float"], skip=graphs["head"])
    every = {node for nodes in groups.values() for node in nodes}
    plain = {name: _logits(graphs[name], tmp_path / f"{name}.onnx") for name in ("float", "int8")}
    none = _logits(int8_choice.mixed_model(graphs["float"], graphs["int8"], set()), tmp_path / "none.onnx")
    every_int8 = _logits(int8_choice.mixed_model(graphs["float"], graphs["int8"], every), tmp_path / "all.onnx")
    assert np.array_equal(none, plain["float"]) and np.array_equal(every_int8, plain["int8"])
    assert not np.array_equal(plain["float"], plain["int8"])  # so the two checks above tell the models apart
    one = int8_choice.mixed_model(graphs["float"], graphs["int8"], set(groups["layer.1/ffn-output"]))
    ops = [node.op_type for node in one.graph.node]
    assert ops.count("MatMulInteger") == 1 and "QAttention" not in ops and ops.count("MatMul") == 3 * LAYERS  # 3 a layer and the head, one of them int8
    assert {init.name for init in one.graph.initializer} >= {node.input[1] for node in one.graph.node if node.op_type == "MatMul"}
    assert not np.array_equal(_logits(one, tmp_path / "one.onnx"), plain["float"])


def test_choose_float_keeps_the_fewest_most_sensitive_groups():
    sensitivity = {"a": 0.01, "b": 0.5, "c": 0.2, "d": 0.0}
    ranked = int8_choice.rank(sensitivity)
    assert ranked == ["b", "c", "a", "d"]
    calls = []

    def loss_of(kept):
        calls.append(kept)
        return {1: 1.0, 2: 0.45, 3: 0.1}.get(len(kept), 0.0)

    assert int8_choice.choose_float(ranked, loss_of, 0.5, most=4) == ("b", "c")
    assert calls == [("b",), ("b", "c")]  # stops at the first within the limit
    calls.clear()
    assert int8_choice.choose_float(ranked, loss_of, 0.01, most=2) == ("b", "c")  # never within: the last tried
    assert calls == [("b",), ("b", "c")]
    assert int8_choice.choose_float([], loss_of, 0.5, most=3) == ()


def test_word_kl_and_probe_rows():
    scores = [np.array([[3.0, 0.0, 0.0]]), np.zeros((0, 3)), np.array([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])]
    assert int8_choice.word_kl(scores, scores) == 0.0
    shifted = [s + 5.0 for s in scores]  # softmax ignores a shift: no tag can change
    assert int8_choice.word_kl(scores, shifted) == pytest.approx(0.0, abs=1e-12)
    confident = [np.array([[9.0, 0.0]])], [np.array([[7.0, 0.0]])]
    unsure = [np.array([[0.5, 0.0]])], [np.array([[-1.5, 0.0]])]
    assert int8_choice.word_kl(*confident) < int8_choice.word_kl(*unsure)  # the same logit shift, nearer a tag change
    assert int8_choice.word_kl([], []) == 0.0
    assert int8_choice.probe_rows([3, 1, 4, 1, 5, 9, 2, 6], words=10) == [0, 4]
    assert int8_choice.probe_rows([], words=10) == []
