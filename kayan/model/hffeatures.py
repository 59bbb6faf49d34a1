"""Tokenized windows through 🤗 ``datasets``: built with ``Dataset.map``, cached by fingerprint, memory-mapped.

:func:`window_dataset` turns sentences into the same windows as :func:`kayan.model.features.encode`
(it calls it, batch by batch, inside ``Dataset.map``), but stores them in an Arrow file named by
a fingerprint of everything the windows depend on: the words and tags, the tokenizer (its full
``tokenizer.json``), ``window``, ``stride``, ``label_all_subwords``, the label map, and the code
that builds them (:func:`code_digest`: the source of this module and of every Kayan module it
imports, directly or not, and the versions of the libraries that tokenize and store). A second run
with the same inputs and code opens that file instead of tokenizing again, and the windows of a
large corpus are memory-mapped from disk, not held in RAM; an edit to ``features.encode`` (or a
tokenizers upgrade) builds them anew instead of serving stale windows.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from kayan.console import quiet_datasets
from kayan.data.sentence import Sentence
from kayan.model.features import encode, to_dict

FORMAT = 3  # the columns' layout; the code that fills them is keyed by code_digest()
COLUMNS = ("input_ids", "attention_mask", "labels", "word_index", "sentence")
# The libraries whose code shapes the cached windows: tokenizers splits, datasets writes the Arrow file.
LIBRARIES = ("tokenizers", "transformers", "datasets")


def default_cache_dir() -> Path:
    """``$KAYAN_CACHE_DIR/windows``, else ``$XDG_CACHE_HOME/kayan/windows``, else ``~/.cache/kayan/windows``."""
    root = os.environ.get("KAYAN_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kayan"
    return Path(root) / "windows"


def _kayan_imports(path: Path) -> set[str]:
    """The ``kayan...`` modules a source file imports (at any depth of the file: function-local too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # ``from kayan.data import schemes``
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "kayan" or name.startswith("kayan.")}


@functools.cache
def code_digest(root: str = __name__) -> str:
    """A sha256 of the code that builds windows: ``root``'s source and every Kayan module it imports, transitively.

    Walked from the files (not from what happens to be imported), so a new helper that
    ``features.encode`` starts to call is keyed as soon as it is imported; the versions of
    :data:`LIBRARIES` are part of it too.
    """
    seen: dict[str, bytes] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        try:
            spec = importlib.util.find_spec(name) if name not in seen else None
        except ModuleNotFoundError:  # ``kayan.data.sentence.Sentence``: a name inside a module
            spec = None
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue  # a name imported from a module (a function), not a module: its module is walked
        source = Path(spec.origin)
        seen[name] = source.read_bytes()
        pending.extend(_kayan_imports(source) - set(seen))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + hashlib.sha256(seen[name]).digest())
    for library in LIBRARIES:
        digest.update(f"{library}=={importlib.metadata.version(library)}".encode())
    return digest.hexdigest()


def fingerprint(sentences: Sequence[Sentence], tokenizer: Any, *, window: int, stride: int,
                label2id: Mapping[str, int] | None, label_all_subwords: bool, context: int = 0,
                documents: Sequence[int] | None = None) -> str:
    """A sha256 of everything the windows depend on (hex, 64 characters)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": FORMAT, "code": code_digest(), "window": window, "stride": stride, "label2id": label2id,
                              "label_all_subwords": label_all_subwords, "context": context,
                              "documents": list(documents) if context and documents is not None else None},
                             sort_keys=True).encode())
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    for sentence in sentences:
        digest.update(json.dumps([sentence.words, sentence.tags], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _encode_batch(batch: dict, *, tokenizer, label2id, window, stride, label_all_subwords, context) -> dict:
    """``Dataset.map`` function: a batch of sentences (words, tags, index, document) → their windows."""
    sentences = [Sentence(tuple(w), tuple(t)) for w, t in zip(batch["words"], batch["tags"])]
    features = encode(sentences, tokenizer, label2id=label2id, window=window, stride=stride,
                      label_all_subwords=label_all_subwords, context=context, documents=batch["document"])
    inputs = [to_dict(f) for f in features]  # the model's inputs, as kayan.model.features writes them
    return {
        "input_ids": [row["input_ids"] for row in inputs],
        "attention_mask": [row["attention_mask"] for row in inputs],
        "labels": [row.get("labels", []) for row in inputs],
        "word_index": [f.word_index for f in features],
        "sentence": [batch["index"][f.sentence] for f in features],
    }


def window_dataset(sentences: Sequence[Sentence], tokenizer: Any, *, window: int = 512, stride: int = 128,
                   label2id: Mapping[str, int] | None = None, label_all_subwords: bool = False,
                   context: int = 0, documents: Sequence[int] | None = None,
                   cache_dir: str | os.PathLike | None = None, batch_size: int = 1000):
    """The windows of ``sentences`` as a memory-mapped :class:`datasets.Dataset`, cached by fingerprint.

    Args:
        sentences: the sentences (tags used when ``label2id`` is given).
        tokenizer: a fast transformers tokenizer.
        window: subwords per window, special tokens included.
        stride: subwords of context shared by consecutive windows.
        label2id: tag → id; ``None`` for unlabelled windows (``labels`` empty).
        label_all_subwords: label every subword of an owned word.
        context: subwords of neighbouring sentences on each side (:func:`kayan.model.features.encode`).
        documents: per sentence, its document (``None``: one document, in order).
        cache_dir: where the Arrow files live (default :func:`default_cache_dir`).
        batch_size: sentences per ``map`` batch.

    Returns:
        A dataset with columns ``input_ids``, ``attention_mask``, ``labels``, ``word_index`` and
        ``sentence`` (the index in ``sentences``), one row per window, in the order of
        :func:`kayan.model.features.encode`; ``dataset.info.description`` says whether it came from the cache.
    """
    import datasets

    key = fingerprint(sentences, tokenizer, window=window, stride=stride, label2id=label2id,
                      label_all_subwords=label_all_subwords, context=context, documents=documents)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"windows-{key}.arrow"
    if path.is_file():
        cached = datasets.Dataset.from_file(str(path))  # memory-mapped
        cached.info.description = f"cached: {path}"
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    source = datasets.Dataset.from_dict({
        "words": [list(s.words) for s in sentences], "tags": [list(s.tags) for s in sentences],
        "index": list(range(len(sentences))),
        "document": list(documents) if documents is not None else [0] * len(sentences)})
    if context:
        batch_size = max(1, len(sentences))  # context reads neighbouring sentences: one batch sees them all
    tmp = folder / f".windows-{key}.{os.getpid()}.arrow"
    with quiet_datasets():  # no progress bar: a first run prints what a cached one does
        built = source.map(
            _encode_batch, batched=True, batch_size=batch_size, remove_columns=source.column_names,
            fn_kwargs={"tokenizer": tokenizer, "label2id": dict(label2id) if label2id else None, "window": window,
                       "stride": stride, "label_all_subwords": label_all_subwords, "context": context},
            cache_file_name=str(tmp), new_fingerprint=key, desc="tokenizing windows")
    del built
    os.replace(tmp, path)  # a finished file under its final name only: a killed run leaves no half cache
    fresh = datasets.Dataset.from_file(str(path))
    fresh.info.description = f"built: {path}"
    return fresh
