"""Which parts of the encoder the int8 export leaves in float32, chosen by measured sensitivity.

Dynamic int8 quantization loses F1 unevenly: a few matrix products whose inputs hold outliers (on
fine-tuned me5-small, FFN outputs above all) lose most of it. Keeping all of one kind in float32 costs
much speed, so :func:`kayan.inference.export.export_onnx` measures each **group** (one layer's
attention with its QKV projection, attention output, FFN input or FFN output; :func:`encoder_groups`)
alone in int8 on a slice of the parity data, ranks the groups by how far that moves the word
scores (:func:`word_kl`), and keeps the most sensitive ones in float32, fewest first, until the F1
loss on the whole parity data is within the limit (:func:`choose_float`).

Every candidate model is cut from two graphs made once, the float32 model and the fully quantized
one (:func:`mixed_model`): quantizing again per candidate would cost ~10 s each on me5-small.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

GELU_OPS = ("Gelu", "BiasGelu", "FastGelu", "QuickGelu")
KINDS = ("attention", "attention-output", "ffn-in", "ffn-output")
PROBE_WORDS = 2000  # words of the parity data each group's sensitivity is measured on


def encoder_groups(model, skip: Sequence[str] = ()) -> dict[str, list[str]]:
    """The quantizable nodes of an optimized encoder graph, grouped as ``layer.N/KIND`` (:data:`KINDS`).

    A layer starts at each fused ``Attention`` node (N counts them in graph order); a MatMul with a
    constant weight is ``attention-output`` when it reads the attention's output, ``ffn-in`` when a GELU
    reads its output, ``ffn-output`` when it reads a GELU's output. Any other quantizable node (or any
    node of a graph without fused attention) is a group of its own, named after the node.

    Args:
        model: an ``onnx.ModelProto`` after :func:`kayan.inference.export.optimize_graph`.
        skip: node names left out (the classifier head, which stays float32 anyway).

    Returns:
        Group name → node names, in graph order.
    """
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    groups: dict[str, list[str]] = {}
    layer = -1
    for node in graph.node:
        if node.name in skip or not (node.op_type == "Attention" or node.op_type == "MatMul" and node.input[1] in weights):
            continue
        layer += node.op_type == "Attention"
        kind = _kind(node, producers, consumers)
        groups.setdefault(f"layer.{layer}/{kind}" if kind and layer >= 0 else node.name, []).append(node.name)
    return groups


def _kind(node, producers: Mapping, consumers: Mapping) -> str | None:
    """The :data:`KINDS` entry of a quantizable node, from the ops around it (None: none of them)."""
    source = getattr(producers.get(node.input[0]), "op_type", None)
    readers = {reader.op_type for reader in consumers.get(node.output[0], [])}
    if node.op_type == "Attention":
        return "attention"
    if source == "Attention":
        return "attention-output"
    if readers & set(GELU_OPS):
        return "ffn-in"
    if source in GELU_OPS:
        return "ffn-output"
    return None


def _chain(float_node, producers: Mapping, stop: set[str]) -> list:
    """The int8 graph's nodes that replace ``float_node``: walking back from its outputs to tensors of the
    float32 graph (``stop``)."""
    todo, found = list(float_node.output), {}
    while todo:
        node = producers.get(todo.pop())
        if node is None or id(node) in found:
            continue
        found[id(node)] = node
        todo += [name for name in node.input if name and name not in stop]
    return list(found.values())


def mixed_model(float_model, int8_model, quantized: set[str]):
    """The float32 graph with the nodes named in ``quantized`` replaced by their int8 versions.

    ``int8_model`` is ``float_model`` quantized with those nodes (and maybe more) in int8; the
    quantizer keeps each node's output name, so its int8 nodes are found by walking back from it.

    Args:
        float_model: the float32 ``onnx.ModelProto``.
        int8_model: its quantized ``onnx.ModelProto``.
        quantized: names of float32 nodes to take in int8.

    Returns:
        A new ``onnx.ModelProto`` (the opsets and graph inputs/outputs of ``int8_model``).
    """
    import onnx

    producers = {out: node for node in int8_model.graph.node for out in node.output}
    order = {id(node): i for i, node in enumerate(int8_model.graph.node)}
    tensors = {i.name for i in float_model.graph.input} | {out for node in float_model.graph.node for out in node.output}
    nodes, seen = [], set()
    for node in float_model.graph.node:
        if node.name in quantized:
            swapped = sorted(_chain(node, producers, tensors - set(node.output)), key=lambda n: order[id(n)])
        else:
            swapped = [node]
        for each in swapped:
            if id(each) not in seen:
                seen.add(id(each))
                nodes.append(each)
    used = {name for node in nodes for name in node.input}
    initializers = {init.name: init for model in (float_model, int8_model) for init in model.graph.initializer if init.name in used}
    graph = onnx.helper.make_graph(nodes, float_model.graph.name, int8_model.graph.input, int8_model.graph.output,
                                   list(initializers.values()))
    return onnx.helper.make_model(graph, opset_imports=int8_model.opset_import, ir_version=int8_model.ir_version,
                                  producer_name=int8_model.producer_name)


def word_kl(expected: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> float:
    """Mean KL divergence of the tag distributions (softmax of word scores), ``expected`` to ``got``, per word.

    Unlike the largest logit difference it weighs every word, and a shift that leaves a confident tag
    confident counts little: it tracks what changes tags. Zero when nothing moved.

    >>> a = [np.array([[2.0, 0.0], [0.0, 0.0]])]
    >>> word_kl(a, a), round(word_kl(a, [np.array([[0.0, 2.0], [0.0, 0.0]])]), 4)
    (0.0, 0.7616)
    """
    rows = [(a, b) for a, b in zip(expected, got) if a.size]
    if not rows:
        return 0.0
    p, q = (np.concatenate([pair[i] for pair in rows]).astype(np.float64) for i in (0, 1))
    log_p = p - np.logaddexp.reduce(p, axis=1, keepdims=True)
    log_q = q - np.logaddexp.reduce(q, axis=1, keepdims=True)
    return float(max(0.0, (np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean()))


def probe_rows(lengths: Sequence[int], words: int = PROBE_WORDS) -> list[int]:
    """Indices of evenly spread sentences holding about ``words`` words (all of them when fewer).

    >>> probe_rows([10] * 10, words=30)
    [0, 4, 8]
    >>> probe_rows([5, 5], words=100)
    [0, 1]
    """
    step = max(1, -(-sum(lengths) // max(1, words)))
    return list(range(0, len(lengths), step))


def rank(sensitivity: Mapping[str, float]) -> list[str]:
    """Group names, most sensitive first (ties: in the given order).

    >>> rank({"layer.0/ffn-in": 0.1, "layer.0/ffn-output": 0.7, "layer.1/ffn-output": 0.3})
    ['layer.0/ffn-output', 'layer.1/ffn-output', 'layer.0/ffn-in']
    """
    return sorted(sensitivity, key=lambda name: -sensitivity[name])


def choose_float(ranked: Sequence[str], loss_of: Callable[[tuple[str, ...]], float], max_loss: float, *,
                 most: int) -> tuple[str, ...]:
    """Keep the first 1, 2, … of ``ranked`` in float32 until ``loss_of(kept) <= max_loss``.

    Args:
        ranked: group names, most sensitive first (:func:`rank`).
        loss_of: the F1 points lost with the given groups in float32 (it measures the model).
        max_loss: the most F1 points allowed.
        most: the most groups kept in float32 (beyond that, int8 would not pay).

    Returns:
        The groups kept: the first within the limit, else the last tried (``()`` when none was).

    >>> losses = {("a",): 0.9, ("a", "b"): 0.4, ("a", "b", "c"): 0.1}
    >>> choose_float(["a", "b", "c"], losses.__getitem__, 0.5, most=3)
    ('a', 'b')
    >>> choose_float(["a", "b", "c"], losses.__getitem__, 0.05, most=2)
    ('a', 'b')
    """
    kept: tuple[str, ...] = ()
    for count in range(1, min(most, len(ranked)) + 1):
        kept = tuple(ranked[:count])
        if loss_of(kept) <= max_loss:
            break
    return kept
