"""Train only the word-embedding rows the training data uses.

multilingual-e5-small keeps 96M of its 118M parameters in a 250,037-row word embedding, and the
windows of ANERcorp train use about 20,000 of those rows. A row that never appears in a batch gets
a zero gradient at every step; AdamW then never moves it (its moments stay zero, so its update is
0 / (0 + eps)) as long as no weight decay applies to it. Yet full training still keeps a gradient
and two moments for every row and updates all of them at every step.

:class:`UsedRowsEmbedding` replaces the word embedding during training: its only trainable
parameter is the used rows; the rest of the matrix is a frozen buffer (the pretrained tensor,
not a copy), read for ids outside the used set (dev or test words). So training is the same as
full training, to float tolerance, while the optimizer holds 1/10 of the state. Its state dict
holds the whole matrix under the usual ``weight`` key, so every checkpoint and the saved model are
ordinary Hugging Face weights, and loading a checkpoint (resume, best-model selection) refills
both parts.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn


class UsedRowsEmbedding(nn.Module):
    """A word embedding whose trainable rows are ``row_ids``; other ids read the frozen matrix.

    >>> full = nn.Embedding(6, 2, padding_idx=0)
    >>> used = UsedRowsEmbedding(full, [0, 2, 3])
    >>> used.trained.shape, bool(torch.equal(used(torch.tensor([[2, 5]])), full(torch.tensor([[2, 5]]))))
    (torch.Size([3, 2]), True)
    """

    def __init__(self, embedding: nn.Embedding, row_ids: Iterable[int]):
        super().__init__()
        weight = embedding.weight.detach()
        rows = torch.tensor(sorted(set(int(i) for i in row_ids)), dtype=torch.long, device=weight.device)
        position = torch.full((weight.shape[0],), -1, dtype=torch.long, device=weight.device)
        position[rows] = torch.arange(len(rows), device=weight.device)
        # Non-persistent buffers: they move with .to(device) but never enter the state dict.
        self.register_buffer("frozen", weight, persistent=False)
        self.register_buffer("row_ids", rows, persistent=False)
        self.register_buffer("position", position, persistent=False)
        self.trained = nn.Parameter(weight[rows].clone())
        pad = embedding.padding_idx
        # Like nn.Embedding, the padding row gets no gradient.
        self.padding_idx = int(position[pad]) if pad is not None and position[pad] >= 0 else None
        self.num_embeddings, self.embedding_dim = weight.shape

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        position = self.position[input_ids]
        inside = position >= 0
        trained = F.embedding(position.clamp(min=0), self.trained, padding_idx=self.padding_idx)
        if bool(inside.all()):
            return trained
        return torch.where(inside.unsqueeze(-1), trained, F.embedding(input_ids, self.frozen))

    def full_weight(self) -> torch.Tensor:
        """The whole matrix with the trained rows written back (in place: no second copy)."""
        with torch.no_grad():
            self.frozen[self.row_ids] = self.trained.detach()
        return self.frozen

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        destination[prefix + "weight"] = self.full_weight() if keep_vars else self.full_weight().detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        key = prefix + "weight"
        if key not in state_dict:
            missing_keys.append(key)
            return
        weight = state_dict[key]
        if tuple(weight.shape) != tuple(self.frozen.shape):
            error_msgs.append(f"size mismatch for {key}: checkpoint {tuple(weight.shape)}, model {tuple(self.frozen.shape)}")
            return
        with torch.no_grad():
            self.frozen.copy_(weight)
            self.trained.copy_(self.frozen[self.row_ids])

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, trained rows={len(self.row_ids)}"


def used_rows_only(training) -> bool:
    """Whether a run trains only the used rows (``training.embedding_rows``): ``auto`` does so where it is
    exact, with no weight decay (see the module docstring)."""
    return training.embedding_rows == "used" or (training.embedding_rows == "auto" and training.weight_decay == 0)


def freeze_unused_rows(model, row_ids: Iterable[int]) -> UsedRowsEmbedding:
    """Swap ``model``'s word embedding for one that trains only ``row_ids``, the others frozen; returns the new module."""
    embedding = model.get_input_embeddings()
    if not isinstance(embedding, nn.Embedding):
        raise TypeError(f"expected an nn.Embedding as the input embedding, found {type(embedding).__name__}")
    used = UsedRowsEmbedding(embedding, row_ids)
    model.set_input_embeddings(used)
    return used


def restore_full_embedding(model) -> None:
    """Put back an ordinary nn.Embedding holding the trained matrix (after training)."""
    used = model.get_input_embeddings()
    if not isinstance(used, UsedRowsEmbedding):
        return
    pad = int(used.row_ids[used.padding_idx]) if used.padding_idx is not None else None
    embedding = nn.Embedding(used.num_embeddings, used.embedding_dim, padding_idx=pad, _weight=used.full_weight(),
                             device=used.frozen.device)
    model.set_input_embeddings(embedding)
