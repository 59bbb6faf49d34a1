"""Layer-wise learning-rate decay (``training.layer_lr_decay``, off by default): lower layers learn slower.

A pretrained encoder's lower layers hold general features that fine-tuning should move least. With decay
``d`` < 1 the classifier head (and anything above the encoder) learns at the configured rate, the top
encoder layer at ``d`` times it, each layer below at ``d`` times the one above, and the embeddings at
``d`` times the lowest layer: for ``L`` layers, depth ``k`` (embeddings 0, layer ``i`` at ``i + 1``,
the head ``L + 1``) learns at ``lr · d^(L + 1 − k)``. The scheduler scales every group alike, so
warmup and decay keep these ratios.

:func:`depth` reads a parameter's depth from its name (BERT-style ``...embeddings.``,
``...encoder.layer.N.``, as every encoder Kayan trains names them); :func:`split_groups` splits the
Trainer's optimizer groups (weight decay on / off) by depth, so each keeps its own options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def depth(name: str, num_layers: int) -> int:
    """How far from the input a parameter sits: 0 for the embeddings, ``i + 1`` for encoder layer ``i``,
    ``num_layers + 1`` for the rest (the classifier head, a pooler).

    >>> [depth(n, 12) for n in ("bert.embeddings.word_embeddings.trained", "bert.encoder.layer.0.attention.self.query.weight",
    ...                          "bert.encoder.layer.11.output.dense.bias", "classifier.weight")]
    [0, 1, 12, 13]
    """
    if ".embeddings." in f".{name}":
        return 0
    found = _LAYER.search(name)
    return int(found.group(1)) + 1 if found else num_layers + 1


def rate_factor(depth_: int, num_layers: int, decay: float) -> float:
    """The learning rate's factor at ``depth_``: ``decay ** (num_layers + 1 - depth_)``.

    >>> rate_factor(13, 12, 0.9), round(rate_factor(12, 12, 0.9), 3), round(rate_factor(0, 12, 0.9), 3)
    (1.0, 0.9, 0.254)
    """
    return decay ** (num_layers + 1 - depth_)


def split_groups(groups: Sequence[Mapping], names: Mapping[int, str], num_layers: int, decay: float,
                 learning_rate: float) -> list[dict]:
    """The optimizer's parameter groups split by depth, each with its own ``lr``.

    Args:
        groups: the optimizer's groups (``params`` plus options such as ``weight_decay``).
        names: ``id(parameter)`` → its name in the model.
        num_layers: the encoder's layers.
        decay: ``training.layer_lr_decay``.
        learning_rate: the configured rate, the head's.

    >>> import torch
    >>> head, low = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    >>> split = split_groups([{"params": [head, low], "weight_decay": 0.0}],
    ...                      {id(head): "classifier.weight", id(low): "encoder.layer.0.dense.weight"}, 2, 0.5, 1e-3)
    >>> [(len(g["params"]), g["lr"], g["weight_decay"]) for g in split]
    [(1, 0.00025, 0.0), (1, 0.001, 0.0)]
    """
    result = []
    for group in groups:
        options = {key: value for key, value in group.items() if key not in ("params", "lr", "initial_lr")}
        by_depth: dict[int, list] = {}
        for parameter in group["params"]:
            by_depth.setdefault(depth(names[id(parameter)], num_layers), []).append(parameter)
        for k in sorted(by_depth):
            result.append({**options, "params": by_depth[k], "lr": learning_rate * rate_factor(k, num_layers, decay)})
    return result


def named_ids(named_parameters: Iterable) -> dict[int, str]:
    """``id(parameter)`` → name, for :func:`split_groups`."""
    return {id(parameter): name for name, parameter in named_parameters}
