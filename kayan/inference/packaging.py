"""``kayan package RUN OUT``: a run's selected model as a standard Hugging Face folder anyone can load.

The package holds::

    config.json             the architecture and the label map (id2label / label2id)
    model.safetensors       the weights
    tokenizer.json, tokenizer_config.json   the tokenizer, with model_max_length = the window
    kayan.json              labels, scheme, window, stride, normalization, decoding, label map,
                            base model, training data (with sha256), test and dev scores, recipe,
                            versions, sha256 of the package's files
    README.md               the model card, generated from kayan.json
    .kayan-output           marks the folder as a package: ``--overwrite`` replaces a package and nothing else

It loads with ``kayan.load(OUT)`` (windows, normalization, offsets) and with plain
``transformers.pipeline("token-classification", model=OUT)``. The folder is built under a temporary
name and renamed into place at the end, so an interrupted package never looks complete.

``kayan package RUN OUT --prune-vocab REF ...`` keeps only the subword pieces (and word-embedding rows)
that the sample REFs and the model's own training data use (:mod:`kayan.model.vocabulary`): the sample
tokenizes exactly as before, and kayan.json's ``vocabulary`` records the sources, the pieces and bytes
before and after, and how many words of the model's test data now split otherwise.

``kayan package RUN RUN ... OUT`` writes an ensemble package instead (:func:`package_ensemble`): one
package per run under ``members/0``, ``members/1`` ..., a kayan.json that lists them (source run,
seed, dev and test F1) and a model card. ``kayan.load`` averages the members' word probabilities
(:mod:`kayan.model.ensemble`); plain transformers cannot load the ensemble, only each member.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from kayan import __version__, atomic, outputs
from kayan.data.schemes import label_types
from kayan.errors import KayanError
from kayan.files import sha256_of
from kayan.model import modelref, settings, vocabulary
from kayan.model.location import MEMBERS, locate
from kayan.model.settings import SCHEME, EnsembleInfo, EnsembleMember, ModelSettings, TrainingData
from kayan.run import RunFolder

PACKAGE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def scores_summary(report: Mapping | None) -> dict | None:
    """The scores a package keeps from a run's test_metrics.json (:func:`kayan.evaluation.evaluate`).

    >>> scores_summary({"source": "t.txt", "sentences": 2, "words": 9, "bootstrap": None,
    ...     "default": {"micro": {"f1": 0.5}, "macro": {"f1": 0.4}, "types": {}},
    ...     "strict": {"micro": {"f1": 0.45}}})["strict_micro"]
    {'f1': 0.45}
    """
    if not report:
        return None
    return {
        "source": report.get("source"), "refs": (report.get("data") or {}).get("refs"),
        "sentences": report.get("sentences"), "words": report.get("words"),
        "mode": "seqeval default (conlleval)", "micro": report["default"]["micro"],
        "macro": report["default"].get("macro"), "types": report["default"].get("types", {}),
        "strict_micro": report.get("strict", {}).get("micro"), "bootstrap": report.get("bootstrap"),
    }


def package_metadata(stored: ModelSettings, report: Mapping | None, summary: Mapping | None, recipe: Mapping,
                     label_map: Mapping[str, str]) -> ModelSettings:
    """kayan.json of a package: the model's settings plus its label map, scores, recipe and versions
    (the package's file digests are added once the files are written).

    Args:
        stored: the settings of the run's ``model/kayan.json``.
        report: the model's test scores, the run's ``test_metrics.json`` (or ``None``).
        summary: the run's ``summary.json`` (or ``None``).
        recipe: the training hyperparameters (:func:`kayan.model.settings.recipe_of`).
        label_map: the data's entity types renamed to the model's in training, which evaluation
            applies again (:func:`kayan.model.modelref.read_label_map`).

    >>> package_metadata(ModelSettings(labels=("O",), window=64), None, {"best_dev_f1": 0.8}, {}, {}).metrics
    {'test': None, 'dev': {'best_f1': 0.8}}
    """
    dev = {"best_f1": summary.get("best_dev_f1")} if summary else None
    # a package of an exported package: its onnx/ folder is not copied, so neither is its parity report
    return dataclasses.replace(stored, label_map=dict(label_map), metrics={"test": scores_summary(report), "dev": dev},
                               recipe=dict(recipe), package={"kayan_version": __version__, "format": 1}, onnx=None)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _scores_section(test: Mapping | None) -> list[str]:
    """The model card's test-score lines: micro with its bootstrap interval, then one row per type."""
    if not test:
        return ["No test split was scored for this run: evaluate it with `kayan evaluate MODEL --data CORPUS:SPLIT`."]
    micro, boot = test["micro"], test.get("bootstrap")
    interval = f" (95% bootstrap interval {_pct(boot['low'])}–{_pct(boot['high'])}, {boot['samples']} samples)" if boot else ""
    lines = [f"On {', '.join(test.get('refs') or [str(test.get('source'))])} ({test['sentences']} sentences, "
             f"{test['words']} words, every word scored), seqeval default mode (= conlleval):", "",
             f"- micro F1 **{_pct(micro['f1'])}**{interval}; precision {_pct(micro['precision'])}, recall {_pct(micro['recall'])}"]
    if test.get("strict_micro"):
        lines.append(f"- micro F1 in strict IOB2 mode: {_pct(test['strict_micro']['f1'])}")
    if test.get("macro"):
        lines.append(f"- macro F1: {_pct(test['macro']['f1'])}")
    lines += ["", "| type | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    for kind, row in sorted(test.get("types", {}).items()):
        lines.append(f"| {kind} | {_pct(row['precision'])} | {_pct(row['recall'])} | {_pct(row['f1'])} | {row['support']} |")
    if boot:
        lines += ["", "The bootstrap interval resamples test sentences; per-type scores have no interval."]
    return lines


def model_card(stored: ModelSettings, name: str) -> str:
    """The README.md of a package, generated from its kayan.json.

    >>> card = model_card(ModelSettings(labels=("O", "B-LOC", "I-LOC"), window=64, stride=16, base_model="tiny",
    ...                                 metrics={"test": None}), "demo")
    >>> card.splitlines()[7]
    '# demo'
    """
    types = label_types(stored.labels or ())
    data = stored.training_data or TrainingData()
    versions = stored.versions or {}
    recipe = stored.recipe or {}
    steps = ", ".join(stored.normalization or ()) or "none"
    lines = [
        "---", "language: ar", "library_name: transformers", "pipeline_tag: token-classification",
        "tags: [kayan, ner, arabic, token-classification]", "---", "",
        f"# {name}", "",
        f"Arabic named-entity recognition ({', '.join(types) or 'no entity types'}), fine-tuned from "
        f"`{stored.base_model or 'unknown'}` with Kayan {stored.kayan_version or __version__}.", "",
        "## Intended use", "",
        "Tagging entity mentions in Arabic text like the training data (see Data). With Kayan, raw text of any "
        "length, with character offsets into the original string:", "",
        "```python", "import kayan", f'model = kayan.load("{name}")',
        'for entity in model.predict("زار الرئيس بغداد."):',
        "    print(entity.text, entity.type, entity.start, entity.end, round(entity.score, 3))", "```", "",
        "Or with plain transformers (first-subword labels; see Known limits):", "",
        "```python", "from transformers import pipeline",
        f'ner = pipeline("token-classification", model="{name}", aggregation_strategy="first")', "```", "",
        "## Data", "",
        f"- train: {', '.join(data.train) or '-'}; dev: {', '.join(data.dev) or '-'}; test: {', '.join(data.test) or '-'}",
        f"- labels: {', '.join(stored.labels or ())} ({stored.scheme or SCHEME})",
    ]
    if stored.label_map:
        lines.append("- entity types renamed in training (data → model, applied again by `kayan evaluate`): "
                     + ", ".join(f"{k} → {v}" for k, v in stored.label_map.items()))
    for path, digest in sorted(data.files.items()):
        lines.append(f"- `{Path(path).name}` sha256 `{digest}`")
    lines += ["", "## Recipe", "",
              f"- base model `{stored.base_model}`; windows of {stored.window} subwords with a stride of "
              f"{stored.stride} (long sentences are windowed, never truncated)",
              f"- normalization: {steps}; decoding: {stored.decoding or 'first'}; "
              f"label all subwords: {bool(stored.label_all_subwords)}"]
    if stored.vocabulary:
        lines.append(_vocabulary_line(stored.vocabulary))
    if recipe:
        lines.append("- " + ", ".join(f"{k} {v}" for k, v in recipe.items()))
    lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines += ["", "## Test scores", "", *_scores_section((stored.metrics or {}).get("test")), "",
              "## Known limits", "", *_limits(stored, steps), ""]
    return "\n".join(lines)


def _vocabulary_line(record: Mapping) -> str:
    """The model card's line on a pruned vocabulary (``kayan package --prune-vocab``)."""
    check = record.get("check")
    held_out = (f"; {100 * check['changed_share']:.2f}% of the words of {', '.join(record['check_text'])} split otherwise "
                "than with the full vocabulary") if check else ""
    return (f"- vocabulary pruned to the {record['pieces_after']:,} of {record['pieces_before']:,} pieces that "
            f"{', '.join([*record['sample'], *record['training_data']])} use (and every single character): those texts "
            f"tokenize as before{held_out}")


def _limits(stored: ModelSettings, steps: str) -> list[str]:
    return [
        "- Scores hold for text like the training data (genre, dialect, spelling); expect lower scores elsewhere.",
        "- Only the types above are found; nested entities are not (one tag per word).",
        f"- The plain transformers pipeline truncates its input at {stored.window} subwords and does not apply "
        f"the normalization steps ({steps}); `kayan.load` windows long sentences and normalizes as in training.",
        "- Kayan splits sentences at line breaks and at . ! ? ؟ followed by a space; a one-letter word followed by a "
        "dot (an abbreviation such as د.) never ends a sentence.",
    ]


_FIX = "choose another OUT_DIR (e.g. models/NAME)"


def _check_target(located: Sequence[tuple[Path, RunFolder | None]], sources: Sequence[str | Path], out: Path,
                  overwrite: bool) -> list[Path]:
    """Refuse an OUT_DIR inside a model folder, or one that is not a new, empty or package folder
    (:func:`kayan.outputs.check_replaceable`: never a run, its parent, a source); returns the inputs it may not hold."""
    for model_dir, _ in located:
        if out.resolve() == model_dir.resolve() or model_dir.resolve() in out.resolve().parents:
            raise KayanError(f"{out}: the package cannot go inside the model folder it packages; {_FIX}")
    inputs = [*map(Path, sources), *(path for model_dir, run in located for path in (model_dir, run and run.path) if path)]
    outputs.check_replaceable(out, outputs.PACKAGE, inputs=inputs, overwrite=overwrite, fix=_FIX)
    return inputs


def package(source: str | Path, out: str | Path, *, overwrite: bool = False, prune_vocab: Sequence[str] = (),
            data_dir: str | None = None) -> Path:
    """Write a run's model as a package folder (see the module docstring); returns ``out``.

    Args:
        source: a run folder (``train/RUN``) or its ``model/`` folder.
        out: the package folder to write (atomically).
        overwrite: replace a package already at ``out`` (never anything else: :mod:`kayan.outputs`).
        prune_vocab: sample REFs (``CORPUS:SPLIT``, a CoNLL file, ``text:PATH``): keep only the pieces they
            and the model's training data use (:mod:`kayan.model.vocabulary`); empty: keep the vocabulary.
        data_dir: the folder holding the corpora the REFs name (default: ``$KAYAN_DATA_DIR``).

    Raises:
        KayanError: the source is not a Kayan model (no kayan.json), its files are missing or corrupt,
            its settings are inconsistent, or ``out`` is not a folder a package may go to: a package already
            there (without ``overwrite``), a file, the run or a folder holding it, anything else not empty
            (:func:`kayan.outputs.check_replaceable`); a sample REF cannot be read, or the tokenizer is
            neither Unigram nor WordPiece.
    """
    model_dir, run = locate(source)
    out = Path(out).expanduser()
    inputs = _check_target([(model_dir, run)], [source], out, overwrite)
    stored = _stored_settings(model_dir, run)
    texts = (vocabulary.sample_words(prune_vocab, stored.training_data, stored.normalization or (), root=data_dir)
             if prune_vocab else None)
    opened = modelref.open_model(model_dir, backend="torch", device="cpu")
    with outputs.folder(out, outputs.PACKAGE, inputs=inputs, overwrite=overwrite, fix=_FIX) as tmp:
        pruning = None
        if texts is not None:
            keep, check, sources = texts
            tokenizer, pruning = vocabulary.prune(opened.model, opened.tokenizer, keep, check)
            opened, pruning = dataclasses.replace(opened, tokenizer=tokenizer), {**sources, **pruning}
        _write_package(opened, run, tmp, out.name, pruning)
    return out


def _stored_settings(model_dir: Path, run: RunFolder | None) -> ModelSettings:
    """The model folder's kayan.json, checked; a folder without one was not written by `kayan train`."""
    stored = modelref.read_settings(model_dir, run)
    if stored is None:
        raise KayanError(f"{model_dir} has no kayan.json; package a model written by `kayan train` (train/RUN)")
    if stored.ensemble is not None:
        raise KayanError(f"{model_dir} is an ensemble package; give its runs instead: kayan package RUN RUN ... OUT")
    return stored


def _write_package(opened, run: RunFolder | None, folder: Path, title: str, pruning: dict | None = None) -> ModelSettings:
    """Write an opened model's package files into ``folder``; returns its kayan.json's settings.
    ``pruning``: the record of its pruned vocabulary, completed with the files' bytes before and after."""
    report = run.test_metrics(opened.folder) if run else None
    # summary.json scores the run's own models; a checkpoint has no score of its own there
    summary = run.summary() if run and not run.holds_checkpoint(opened.folder) else None
    recipe = settings.recipe_of(run.config() if run is not None else {})
    stored = package_metadata(opened.stored, report, summary, recipe, opened.label_map)
    with modelref.quiet_loading():
        opened.model.save_pretrained(str(folder))
        opened.tokenizer.model_max_length = opened.options.window
        opened.tokenizer.save_pretrained(str(folder))
    files = {name: sha256_of(folder / name) for name in PACKAGE_FILES if (folder / name).is_file()}
    stored = dataclasses.replace(stored, files=files, weights_sha256=files.get("model.safetensors"))  # verified on every load
    if pruning is not None:
        stored = dataclasses.replace(stored, vocabulary={**pruning, "bytes_before": _files_bytes(opened.folder),
                                                         "bytes_after": _files_bytes(folder)})
    settings.write(folder, stored)
    atomic.write_text(folder / "README.md", model_card(stored, title))
    return stored


def _files_bytes(folder: Path) -> int:
    """The size of a model folder's package files (weights, config, tokenizer)."""
    return sum((folder / name).stat().st_size for name in PACKAGE_FILES if (folder / name).is_file())


def pruning_summary(record: Mapping) -> str:
    """What ``kayan package --prune-vocab`` prints about a package's pruned vocabulary (kayan.json's ``vocabulary``).

    >>> print(pruning_summary({"pieces_before": 250002, "pieces_after": 30000, "bytes_before": 470e6, "bytes_after": 60e6,
    ...     "sample_words": 9, "check_text": ["anercorp:test"], "check": {"words": 8, "changed_words": 1, "changed_share": 0.125}}))
    vocabulary pruned: 250,002 -> 30,000 pieces; package files 470.0 -> 60.0 MB
    words of anercorp:test split otherwise than before: 1 of 8 (12.50%); the 9 words read (sample and training data) split as before
    """
    lines = [f"vocabulary pruned: {record['pieces_before']:,} -> {record['pieces_after']:,} pieces; package files "
             f"{record['bytes_before'] / 1e6:.1f} -> {record['bytes_after'] / 1e6:.1f} MB"]
    sample = f"the {record['sample_words']:,} words read (sample and training data) split as before"
    check = record.get("check")
    if check:
        lines.append(f"words of {', '.join(record['check_text'])} split otherwise than before: {check['changed_words']:,} "
                     f"of {check['words']:,} ({100 * check['changed_share']:.2f}%); {sample}")
    else:
        lines.append(f"no test data recorded in kayan.json to check unseen text on; {sample}")
    return "\n".join(lines)


def package_ensemble(sources: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> Path:
    """Write several runs' models as one ensemble package (see the module docstring); returns ``out``.

    The members must share the label list; their tokenizers, windows and normalization may differ.
    The ensemble decodes as the first run does (``--decoding`` overrides it when it is used).

    Args:
        sources: run folders (``train/RUN``, e.g. the ``seed-N`` runs of ``kayan train --seeds``) or
            their ``model/`` folders.
        out: the package folder to write (atomically).
        overwrite: replace a package already at ``out`` (never anything else: :mod:`kayan.outputs`).

    Raises:
        KayanError: as :func:`package`, or a run whose labels differ from the first run's.
    """
    if not sources:
        raise KayanError("an ensemble needs at least one run; give train/RUN folders")
    out = Path(out).expanduser()
    located = [locate(source) for source in sources]
    inputs = _check_target(located, sources, out, overwrite)
    labels, seen = [], {}
    for source, (model_dir, run) in zip(sources, located):
        stored = _stored_settings(model_dir, run)
        for key in (model_dir.resolve(), stored.weights_sha256):  # the same folder, or a copy of the same weights
            if key is not None and key in seen:
                raise KayanError(f"{source} is the same model as {seen[key]}; an ensemble of one model twice is that "
                                 "model: give each run once")
            seen[key] = source
        labels.append(list(stored.labels or ()))
        if labels[-1] != labels[0]:
            raise KayanError(f"{source}: labels {labels[-1]} differ from those of {sources[0]} ({labels[0]}); an ensemble's "
                             "runs must share one label list: leave it out, or train it on data with the same entity types")
    members = []
    with outputs.folder(out, outputs.PACKAGE, inputs=inputs, overwrite=overwrite, fix=_FIX) as tmp:
        for index, (source, (model_dir, run)) in enumerate(zip(sources, located)):
            opened = modelref.open_model(model_dir, backend="torch", device="cpu")
            path = f"{MEMBERS}/{index}"
            (tmp / path).mkdir(parents=True)
            members.append((path, str(source), _write_package(opened, run, tmp / path, f"{out.name}/{path}")))
        stored = ensemble_metadata(members)
        settings.write(tmp, stored)
        atomic.write_text(tmp / "README.md", ensemble_card(stored, out.name))
    return out


def ensemble_metadata(members: Sequence[tuple[str, str, ModelSettings]]) -> ModelSettings:
    """kayan.json of an ensemble package: the shared labels, the decoding, and each member's origin and scores.

    Args:
        members: ``(path in the package, source run, member's settings)`` per member, in order.

    >>> member = ModelSettings(labels=("O", "B-LOC", "I-LOC"), decoding="viterbi", recipe={"seed": 7},
    ...                        metrics={"test": {"micro": {"f1": 0.5}}, "dev": {"best_f1": 0.6}})
    >>> ensemble_metadata([("members/0", "train/a", member)]).ensemble.members
    (EnsembleMember(path='members/0', source='train/a', seed=7, dev_f1=0.6, test_f1=0.5),)
    """
    first = members[0][2]
    listed = tuple(EnsembleMember(path=path, source=source, seed=(each.recipe or {}).get("seed"),
                                  dev_f1=((each.metrics or {}).get("dev") or {}).get("best_f1"),
                                  test_f1=(((each.metrics or {}).get("test") or {}).get("micro") or {}).get("f1"))
                   for path, source, each in members)
    return ModelSettings(
        labels=first.labels, scheme=first.scheme or SCHEME, decoding=first.decoding or "first",
        ensemble=EnsembleInfo(combine="mean of the members' word probabilities, then decoding", members=listed),
        metrics={"test": None, "dev": None}, package={"kayan_version": __version__, "format": 1},
    )


def ensemble_card(stored: ModelSettings, name: str) -> str:
    """The README.md of an ensemble package, generated from its kayan.json.

    >>> card = ensemble_card(ModelSettings(labels=("O",), decoding="first", ensemble=EnsembleInfo(members=(
    ...     EnsembleMember(path="members/0", source="train/a", seed=1, dev_f1=0.5),))), "demo")
    >>> card.splitlines()[6]
    '# demo'
    """
    members = stored.ensemble.members
    lines = [
        "---", "language: ar", "library_name: kayan", "tags: [kayan, ner, arabic, token-classification, ensemble]", "---", "",
        f"# {name}", "",
        f"An ensemble of {len(members)} Kayan models with the same labels ({', '.join(stored.labels)}): each reads the "
        "text with its own tokenizer and settings, their word probabilities are averaged, and the average is decoded "
        f"({stored.decoding or 'first'}).", "",
        "```python", "import kayan", f'model = kayan.load("{name}")', 'print(model.predict("زار الرئيس بغداد."))', "```", "",
        f"`kayan evaluate {name} --data CORPUS:SPLIT` scores it. Plain `transformers.pipeline` cannot load the ensemble; "
        f"each member under `{MEMBERS}/` is a package of its own (with its model card) that it can load.", "",
        "| member | source run | seed | dev F1 | test F1 |", "| --- | --- | ---: | ---: | ---: |",
    ]
    for member in members:
        lines.append(f"| `{member.path}` | `{member.source}` | {'-' if member.seed is None else member.seed} | "
                     f"{_pct(member.dev_f1)} | {_pct(member.test_f1)} |")
    return "\n".join([*lines, ""])
