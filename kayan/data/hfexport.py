"""``kayan data export``: any corpus as a 🤗 DatasetDict folder that the ecosystem reads as it is.

The folder holds one parquet file per split under ``data/`` (the Hub's layout, so
``datasets.load_dataset("parquet", data_dir=DIR)`` and ``load_dataset(DIR)`` both find the
splits), with columns ``id``, ``tokens`` and ``ner_tags`` (a ``ClassLabel`` sequence, as WikiANN
and CoNLL-2003 store it: what transformers' ``run_ner.py`` expects), and a ``README.md`` dataset
card holding the features, the counts per split and the sha256 of every source file. Tags are the
IOB2 tags Kayan reads (repairs applied and listed in the card); a dev split is named ``validation``.
A ``.kayan-output`` marker names the folder an export: ``--overwrite`` replaces an export, and never
a folder holding the source corpus or one that is not an export (:mod:`kayan.outputs`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from kayan import outputs
from kayan.console import quiet_datasets
from kayan.data import corpora, hfdata
from kayan.data.dataset import CorpusSplit
from kayan.data.schemes import entity_counts, label_list

_FIX = "choose another --to folder"
_LICENSES = {"CC BY 4.0": "cc-by-4.0", "CC BY-SA 4.0": "cc-by-sa-4.0", "CC BY-SA 3.0": "cc-by-sa-3.0"}


def _split_name(ref: str, dataset_name: str) -> str:
    """``train``/``validation``/``test`` for an exported split (a file or dataset gives ``train``)."""
    if hfdata.is_dataset_ref(ref):
        split = dataset_name.rpartition(":")[2]
    else:
        name, split = corpora.parse_ref(ref)
        split = split if name in corpora.REGISTRY else "train"
    split = split or "train"
    return "validation" if split in ("valid", "dev", "val") else split


def _card(ref: str, loaded: Mapping[str, object], features, license_id: str) -> str:
    """The dataset card: YAML metadata (configs, features, split sizes) and the counts in Markdown."""
    header = {
        "license": license_id, "language": ["ar"], "task_categories": ["token-classification"],
        "task_ids": ["named-entity-recognition"], "pretty_name": f"{ref} (exported by Kayan)",
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"data/{s}-*"} for s in loaded]}],
        "dataset_info": {"features": features._to_yaml_list()},  # split sizes: the table below
    }
    lines = ["---", yaml.safe_dump(header, allow_unicode=True, sort_keys=False).rstrip(), "---", "",
             f"# {ref}", "", f"Exported by `kayan data export {ref}`: word-level IOB2 tags in `ner_tags` "
             "(a `ClassLabel` sequence), words in `tokens`.", "",
             "| split | sentences | tokens | " + " | ".join(_types(loaded)) + " |",
             "| --- | ---: | ---: |" + " ---: |" * len(_types(loaded))]
    for split, dataset in loaded.items():
        counts = entity_counts((s.tags for s in dataset.sentences), mode="strict")
        lines.append(f"| {split} | {len(dataset.sentences):,} | {sum(len(s) for s in dataset.sentences):,} | "
                     + " | ".join(f"{counts.get(t, 0):,}" for t in _types(loaded)) + " |")
    lines += ["", "## Source files", "", "| split | file | sha256 |", "| --- | --- | --- |"]
    for split, dataset in loaded.items():
        lines += [f"| {split} | `{os.path.basename(path)}` | `{digest}` |" for path, digest in dataset.files.items()]
    notes = [f"- {split}: {note}" for split, d in loaded.items() for note in d.report.notes()]
    if notes:
        lines += ["", "## What reading the source changed", "", *notes]
    return "\n".join(lines) + "\n"


def _types(loaded: Mapping[str, object]) -> list[str]:
    return sorted({t for d in loaded.values() for t in entity_counts((s.tags for s in d.sentences), mode="strict")})


def export(ref: str, out: str | os.PathLike, *, root: str | None = None, verify: bool = True,
           overwrite: bool = False, columns: Mapping[str, str] | None = None) -> dict:
    """Write ``ref`` (a registry corpus, a split, a CoNLL file or a dataset) as a DatasetDict folder.

    Args:
        ref: ``anercorp`` (every split), ``anercorp:test``, a file path, a dataset reference.
        out: the folder to write (built under a temporary name and swapped in); never a folder holding a
            source file, nor a non-empty one that is not an export (:func:`kayan.outputs.check_replaceable`).
        root: the corpora folder (default ``$KAYAN_DATA_DIR``).
        verify: check source files against the registry's sha256.
        overwrite: replace an export already at ``out``.
        columns: a source dataset's column names (``data.columns``).

    Returns:
        ``{"out": ..., "splits": {split: sentences}, "labels": [...]}``.
    """
    import datasets

    out = Path(out)
    outputs.check_replaceable(out, outputs.DATASET, inputs=outputs.ref_paths([ref]), overwrite=overwrite, fix=_FIX)
    loaded: dict[str, CorpusSplit] = {}
    for each in corpora.split_refs(ref):
        dataset = corpora.load_split(each, root=root, verify=verify, columns=columns)
        loaded.setdefault(_split_name(each, dataset.name), dataset)
    sources = [*outputs.ref_paths([ref]), *(Path(path) for dataset in loaded.values() for path in dataset.files)]
    names = label_list(s.tags for d in loaded.values() for s in d.sentences)
    features = datasets.Features({"id": datasets.Value("string"), "tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(datasets.ClassLabel(names=names))})
    name, _ = corpora.parse_ref(ref)
    license_id = _LICENSES.get(corpora.REGISTRY[name].license, "other") if name in corpora.REGISTRY else "other"
    with quiet_datasets(), outputs.folder(out, outputs.DATASET, inputs=sources, overwrite=overwrite, fix=_FIX) as tmp:
        for split, dataset in loaded.items():
            rows = {"id": [str(i) for i in range(len(dataset.sentences))],
                    "tokens": [list(s.words) for s in dataset.sentences],
                    "ner_tags": [[names.index(t) for t in s.tags] for s in dataset.sentences]}
            (tmp / "data").mkdir(exist_ok=True)
            datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp / "data" / f"{split}-00000-of-00001.parquet"))
        (tmp / "README.md").write_text(_card(ref, loaded, features, license_id), encoding="utf-8")
    return {"out": str(out), "splits": {s: len(d.sentences) for s, d in loaded.items()}, "labels": names}


def check_round_trip(ref: str, out: str | os.PathLike, *, root: str | None = None, verify: bool = True) -> list[str]:
    """Read the export back (``parquet:OUT:SPLIT``) and list every sentence that differs from the source."""
    problems = []
    for each in corpora.split_refs(ref):
        source = corpora.load_split(each, root=root, verify=verify)
        split = _split_name(each, source.name)
        back = corpora.load_split(f"parquet:{out}:{split}")
        pairs: Sequence = list(zip(source.sentences, back.sentences))
        if len(source.sentences) != len(back.sentences):
            problems.append(f"{split}: {len(source.sentences)} sentences in the source, {len(back.sentences)} exported")
        problems += [f"{split} row {i}: differs" for i, (a, b) in enumerate(pairs) if (a.words, a.tags) != (b.words, b.tags)]
    return problems
