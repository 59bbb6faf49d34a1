"""A distillation student: a copy of a fine-tuned encoder that keeps some of its layers.

The student starts from the teacher's weights (embeddings, the kept encoder layers, the classifier
head), so it shares the teacher's tokenizer, labels and input windows and begins close to it;
:mod:`kayan.training.distill` then trains it on the teacher's soft targets. Layers are found by
their weight names (``encoder.layer.N.``, as BERT, RoBERTa, XLM-R and ELECTRA name them), so any
such encoder works without a per-architecture table.
"""

from __future__ import annotations

import copy
import re

import transformers

from kayan.errors import KayanError

_LAYER_KEY = re.compile(r"^(.*\.layers?\.)(\d+)(\..*)$")


def evenly_spaced_layers(total: int, keep: int) -> list[int]:
    """Which of ``total`` layers a student of ``keep`` layers takes: evenly spaced, the last always kept.

    >>> evenly_spaced_layers(12, 6), evenly_spaced_layers(12, 4), evenly_spaced_layers(2, 1), evenly_spaced_layers(3, 3)
    ([1, 3, 5, 7, 9, 11], [2, 5, 8, 11], [1], [0, 1, 2])
    """
    if not 1 <= keep <= total:
        raise ValueError(f"keep must be between 1 and {total}, not {keep}")
    return [round((i + 1) * total / keep) - 1 for i in range(keep)]


def renamed_layers(state: dict, kept: list[int]) -> dict:
    """The weights of ``state`` with the ``kept`` layers renumbered 0, 1, ... and the other layers left out.

    >>> sorted(renamed_layers({"e.w": 0, "enc.layer.0.w": 1, "enc.layer.1.w": 2}, [1]).items())
    [('e.w', 0), ('enc.layer.0.w', 2)]
    """
    new_index = {old: new for new, old in enumerate(kept)}
    renamed = {}
    for key, value in state.items():
        match = _LAYER_KEY.match(key)
        if match is None:
            renamed[key] = value
        elif int(match.group(2)) in new_index:
            renamed[f"{match.group(1)}{new_index[int(match.group(2))]}{match.group(3)}"] = value
    return renamed


def layer_subset(model, layers: int | None):
    """A new model holding ``model``'s weights with ``layers`` of its encoder layers (None: all of them).

    Args:
        model: a fine-tuned ``AutoModelForTokenClassification`` model (left unchanged).
        layers: how many encoder layers the student keeps (:func:`evenly_spaced_layers`).

    Raises:
        KayanError: ``layers`` exceeds the model's layers (names ``distill.layers``).
    """
    total = model.config.num_hidden_layers
    if layers is None or layers == total:
        return copy.deepcopy(model).train()
    if not 1 <= layers <= total:
        raise KayanError(f"config key distill.layers is {layers}; the teacher has {total} encoder layers: "
                         f"give 1 to {total} (or null for all)")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = layers
    student = transformers.AutoModelForTokenClassification.from_config(config)
    kept = evenly_spaced_layers(total, layers)
    student.load_state_dict(renamed_layers(model.state_dict(), kept), strict=True)  # every weight accounted for
    return student.train()
