"""One split's sentences as read (:class:`CorpusSplit`), and the dev block carved from a train-only source.

Both readers of corpora, CoNLL files (:mod:`kayan.data.corpora`) and 🤗 datasets (:mod:`kayan.data.hfdata`),
return a :class:`CorpusSplit` and carve dev the same way (:func:`carve`): a source that ships no dev split
gets one cut deterministically from train (:func:`dev_indices`), so test data never serves model
selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from kayan.data.conll import ReadReport
from kayan.data.sentence import Sentence
from kayan.errors import KayanError

DEFAULT_DEV_FRACTION = 0.1
DEV_SPLITS = ("end", "spread")  # how a dev split is carved from train (data.dev_split)
SPREAD_BLOCKS = 10  # "spread": dev is the tail of each of this many equal parts of train


@dataclass
class CorpusSplit:
    """Sentences of one split of a corpus (or of a file, or of a 🤗 dataset), in IOB2, with what reading them did.

    ``raw_tags`` are the tags as the files have them (after typo fixes, before scheme repair),
    so statistics can count entities both as conlleval reads them and in strict IOB2.
    """

    name: str
    sentences: list[Sentence]
    raw_tags: list[tuple[str, ...]]
    report: ReadReport
    scheme: str
    files: dict[str, str]
    note: str = ""


def carve_dev(sentences: Sequence[Sentence], fraction: float = DEFAULT_DEV_FRACTION,
              how: str = "end") -> tuple[list[Sentence], list[Sentence]]:
    """Split train into (train, dev), both in file order: see :func:`dev_indices`.

    >>> train, dev = carve_dev([Sentence((str(i),), ("O",)) for i in range(10)], 0.2)
    >>> [s.words[0] for s in train], [s.words[0] for s in dev]
    (['0', '1', '2', '3', '4', '5', '6', '7'], ['8', '9'])
    """
    dev = set(dev_indices(len(sentences), fraction, how))
    return ([s for i, s in enumerate(sentences) if i not in dev], [s for i, s in enumerate(sentences) if i in dev])


def dev_indices(n: int, fraction: float = DEFAULT_DEV_FRACTION, how: str = "end") -> list[int]:
    """Which of ``n`` training sentences form the carved dev split, in order.

    ``end``: the contiguous last ``fraction``. ``spread``: the train file is cut into
    :data:`SPREAD_BLOCKS` equal parts and dev is the last ``fraction`` of each, so dev covers the
    whole span of the corpus (a news corpus drifts: its last block is the part nearest the test
    split) while each dev piece is still a contiguous run of sentences, which keeps most articles
    whole and dev text out of train's neighbouring sentences.

    >>> dev_indices(10, 0.2), dev_indices(100, 0.1, "spread")[:4], len(dev_indices(100, 0.1, "spread"))
    ([8, 9], [9, 19, 29, 39], 10)
    """
    if not 0 < fraction < 1:
        raise KayanError(f"data.dev_fraction is {fraction}; it must be between 0 and 1 (e.g. 0.1)")
    if how not in DEV_SPLITS:
        raise KayanError(f"data.dev_split is {how!r}; choose one of: {', '.join(DEV_SPLITS)}")
    n_dev = max(1, round(n * fraction))
    if n_dev >= n:
        raise KayanError(f"cannot carve a dev split from {n} training sentence(s); give a dev file")
    if how == "end" or n < SPREAD_BLOCKS:
        return list(range(n - n_dev, n))
    bounds = [round(n * b / SPREAD_BLOCKS) for b in range(SPREAD_BLOCKS + 1)]
    picked: list[int] = []
    for block, (start, stop) in enumerate(zip(bounds, bounds[1:])):
        take = round(n_dev * (block + 1) / SPREAD_BLOCKS) - round(n_dev * block / SPREAD_BLOCKS)
        picked += range(stop - take, stop)
    return picked


def _subset(dataset: CorpusSplit, indices: Sequence[int], name: str, note: str) -> CorpusSplit:
    """Some of a dataset's sentences, in order (the report still describes the whole files)."""
    return CorpusSplit(name, [dataset.sentences[i] for i in indices], [dataset.raw_tags[i] for i in indices],
                       dataset.report, dataset.scheme, dataset.files, note)


def carve(dataset: CorpusSplit, split: str, dev_fraction: float, hold_out_dev: bool, dev_split: str = "end") -> CorpusSplit:
    """Apply the dev carving to a train-only source: ``dev`` is carved from it; ``train`` may leave it out."""
    if split != "dev" and not hold_out_dev:
        return dataset
    total = len(dataset.sentences)
    dev = dev_indices(total, dev_fraction, dev_split)
    note = f"dev = last {len(dev)} of {total} train sentences ({dev_fraction:.0%})"
    if dev_split == "spread":
        note = f"dev = {len(dev)} of {total} train sentences ({dev_fraction:.0%}), the last ones of each tenth of the file"
    if split == "dev":
        return _subset(dataset, dev, dataset.name, note)
    chosen = set(dev)
    return _subset(dataset, [i for i in range(total) if i not in chosen], dataset.name, "train without the carved " + note)
