"""The training order: drawn from (seed, epoch) alone, windows of similar length batched together.

Kept here rather than taken from transformers. :func:`transformers.trainer_pt_utils.get_length_grouped_indices`
with ``mega_batch_mult=50`` draws the same order from the same generator, then swaps the longest window into
the first batch (so an out-of-memory shows at step 1). That swap is a no-op only when the first mega-batch
already holds a window of the greatest length; with more than one mega-batch (every ANERcorp run: 4,000+
windows, 1,600 a mega-batch at batch 32) it can move two windows between batches in any epoch, and then the
recipes' scores in the README (tiny ANERcorp test F1 39.78 / 41.59 / 42.44, me5-small 74.4) would no longer
reproduce to the digit. Its default multiplier also differs (fewer than 50 batches a mega-batch below 200 batches).
"""

from __future__ import annotations

from typing import Sequence

import torch

MEGA_BATCH = 50  # batches per mega-batch, the group sorted by length


def length_grouped_order(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[int]:
    """A shuffled order in which neighbouring batches hold windows of similar length.

    Shuffle, cut into mega-batches of 50 batches, sort each by length (longest first): batches pad
    little, yet their order and content still change every epoch.

    >>> order = length_grouped_order([1, 9, 2, 8], 2, torch.Generator().manual_seed(0))
    >>> sorted(order)
    [0, 1, 2, 3]
    """
    shuffled = torch.randperm(len(lengths), generator=generator).tolist()
    size = MEGA_BATCH * batch_size
    mega = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
    return [index for chunk in mega for index in sorted(chunk, key=lambda i: -lengths[i])]


class EpochSampler(torch.utils.data.Sampler):
    """Training order drawn from (seed, epoch) alone, never from the global RNG.

    So a run resumed in the middle of an epoch replays exactly the batches the interrupted run
    would have seen (the Trainer skips the ones already done), and the final scores match.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool):
        self.lengths, self.batch_size, self.seed, self.group = list(lengths), batch_size, seed, group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        if self.group:
            return iter(length_grouped_order(self.lengths, self.batch_size, generator))
        return iter(torch.randperm(len(self.lengths), generator=generator).tolist())
