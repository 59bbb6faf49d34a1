"""Stage 1, data: corpora in, word-level IOB2 sentences out; raw text in, words with offsets out.

Modules (each starts with a docstring saying what it holds):
    :mod:`~kayan.data.sentence`  :class:`Sentence`, the one sentence type every stage reads and writes.
    :mod:`~kayan.data.schemes`   the one tag grammar: :func:`split_tag`, :func:`label_types`,
        :func:`label_list`, :func:`entities` (as seqeval reads them), the IOB2 transitions,
        :func:`to_iob2` (IOB1 and BIOES converted, every repair counted).
    :mod:`~kayan.data.conll`     :func:`read_conll` / :func:`write_conll`: CoNLL-style files, checked.
    :mod:`~kayan.data.dataset`   :class:`CorpusSplit` (one split as read) and the dev block carved from
        train (:func:`carve_dev`, :func:`dev_indices`).
    :mod:`~kayan.data.corpora`   the registry (:data:`REGISTRY`: files, sha256, scheme, license) and
        :func:`load_split`, the one loader behind every ``CORPUS:SPLIT``, file or dataset reference.
    :mod:`~kayan.data.hfdata`    🤗 dataset references read as corpora (``hf:``, ``parquet:``, ``json:``).
    :mod:`~kayan.data.hfexport`  ``kayan data export``: any corpus as a DatasetDict folder.
    :mod:`~kayan.data.arabic`    raw Arabic text → sentences and words with character offsets
        (:func:`tokenize_sentences`), and the normalization steps (:func:`normalize`).
    :mod:`~kayan.data.stats`     ``kayan data stats`` (:func:`corpus_stats`).
    :mod:`~kayan.data.labelmap`  entity types renamed by a label map: a tag sequence (:func:`map_types`),
        sentences (:func:`relabel`), as training and scoring both apply it.
    :mod:`~kayan.data.rundata`   a run's train, dev and test resolved from the config
        (:func:`load_run_data`), entity types renamed by its label map.

Nothing here imports torch or transformers; 🤗 ``datasets`` is imported only when a dataset is read
or written. The names below are imported from their modules on first use (:mod:`kayan.lazy`).
"""

from kayan.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "sentence": ["Sentence"],
    "schemes": ["OUTSIDE", "entities", "label_list", "label_types", "split_tag", "to_iob2"],
    "conll": ["ReadReport", "read_conll", "write_conll"],
    "dataset": ["CorpusSplit", "carve_dev", "dev_indices"],
    "corpora": ["REGISTRY", "load_split"],
    "arabic": ["Token", "normalize", "tokenize", "tokenize_sentences"],
    "stats": ["corpus_stats", "format_stats"],
    "labelmap": ["map_types", "relabel"],
    "rundata": ["RunData", "Split", "load_run_data"],
})
