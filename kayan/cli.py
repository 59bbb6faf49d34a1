"""The ``kayan`` command: a thin layer that parses arguments and calls the library.

Errors a user can cause (:class:`KayanError`) print one line and exit with status 2;
anything else is a bug and shows its traceback. The modules behind the commands that load torch
(or scikit-learn, through seqeval's metrics) are imported inside those commands, so ``kayan --help``,
``kayan data`` and ``kayan evaluate --predictions`` stay quick.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from kayan import __version__, console, diskspace, hubkernels
from kayan.checks import describe_range, in_range
from kayan.config import load_config
from kayan.data import corpora, hfexport
from kayan.data.stats import corpus_stats, format_stats
from kayan.errors import KayanError
from kayan.model.choices import BACKENDS, PRECISIONS
from kayan.model.decoding import DECODERS
from kayan.run import METRICS_LOG, MODEL, SELECTED_MODEL, SUMMARY, TRAIN_LOG, RunFolder

SEED_MAX = 2**32 - 1
# oneDNN (PyTorch's CPU kernels) keeps a compiled primitive, with its reordered weights, for every
# input shape it meets, up to 1,024 of them; windows of many lengths fill that cache, and a me5-small
# training run grew from 3.6 GB after 60 steps to 5.2 GB after 1,350. 64 primitives hold what a step
# needs: 200 steps ran at the same speed (88.7 s against 89.0 s) with a peak of 3.66 GB against 4.20.
# oneDNN reads the variable once, at its first use, and PyTorch has no call to change it later, so
# the command line sets it before any command loads PyTorch; a value the user exported wins. The
# library leaves os.environ alone: a program that trains through kayan.training.train sets it itself.
ONEDNN_CACHE = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and status 2, like Kayan's own errors."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _number(kind: type, low: float | None = None, high: float | None = None, *, low_open: bool = False):
    """An argparse ``type``: a ``kind`` (int or float) within the range, else a one-line usage error.

    >>> _number(int, 1)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 0 is out of range; it must be at least 1
    """
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not in_range(value):  # inf and nan are in no range: say what they are
            raise argparse.ArgumentTypeError(f"{text} is not a finite number; give one ({describe_range(low, high, low_open)}), "
                                             "or leave the option out for its default")
        if not in_range(value, low, high, low_open=low_open):
            raise argparse.ArgumentTypeError(f"{text} is out of range; it must be {describe_range(low, high, low_open)}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _data_stats(args: argparse.Namespace) -> None:
    """``kayan data stats``: counts for each named split or file (a corpus named alone: each of its splits)."""
    results = [corpus_stats(corpora.load_split(ref, root=args.data_dir, verify=not args.no_verify, dev_fraction=args.dev_fraction))
               for named in args.refs for ref in corpora.split_refs(named)]
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(format_stats(r) for r in results))


def _data_export(args: argparse.Namespace) -> None:
    """``kayan data export CORPUS --to DIR``: a DatasetDict folder (parquet, ClassLabel tags, card), read back and compared."""
    result = hfexport.export(args.ref, args.to, root=args.data_dir, verify=not args.no_verify, overwrite=args.overwrite)
    splits = ", ".join(f"{split} {n:,} sentences" for split, n in result["splits"].items())
    print(f"written: {result['out']} ({splits}; {len(result['labels'])} labels)")
    problems = hfexport.check_round_trip(args.ref, args.to, root=args.data_dir, verify=not args.no_verify)
    if problems:
        raise KayanError(f"{args.to}: the export does not read back as the source ({'; '.join(problems[:3])}); please report this bug")
    print(f"round trip: parquet:{args.to} reads back word for word and tag for tag; "
          f"load it with datasets.load_dataset('parquet', data_dir={str(args.to)!r})")


def _data_list(args: argparse.Namespace) -> None:
    """``kayan data list``: the corpus registry."""
    for corpus in corpora.REGISTRY.values():
        print(f"{corpus.name:<14} {', '.join(corpus.splits):<18} {corpus.license:<12.12} {corpus.description}")


def _train(args: argparse.Namespace) -> None:
    """``kayan train``: fine-tune as the config says; print where the run went and its scores."""
    from kayan.training.seeds import run_training  # torch: loaded only when a command trains

    config = load_config(args.config, args.overrides)
    if args.seeds and len(set(args.seeds)) < len(args.seeds):
        raise KayanError(f"--seeds {' '.join(map(str, args.seeds))}: a seed is repeated; give each seed once")
    summary = run_training(config, seeds=args.seeds, resume=args.resume, overwrite=args.overwrite)
    if args.seeds:
        _say_where_curves_are(*summary.get("runs", []))
        for key in ("dev_f1", "test_f1"):
            if summary.get(key):
                print(f"{key}: {summary[key]['mean']:.4f} ± {summary[key]['std']:.4f} over seeds {summary['seeds']}")
        return
    _say_where_curves_are(summary and summary["run_dir"])
    if summary:
        print(_train_summary(summary))


def _distill(args: argparse.Namespace) -> None:
    """``kayan distill TEACHER CONFIG``: ``kayan train CONFIG`` with ``distill.teacher`` set (kayan.training.distill)."""
    args.overrides = [*args.overrides, f"distill.teacher={json.dumps(args.teacher)}"]  # JSON is YAML: any path stays a string
    _train(args)


def _tune(args: argparse.Namespace) -> None:
    """``kayan tune``: search settings on dev, one run folder per trial; print the trials and the best recipe."""
    from kayan.training.tuning import trials_markdown, tune  # torch, through training

    config = load_config(args.config, args.overrides)
    result = tune(config, trials=args.trials, max_minutes=args.max_minutes, resume=args.resume,
                  overwrite=args.overwrite, out_dir=args.out_dir)
    print(trials_markdown(result["rows"], result["keys"]))
    done = f"{result['finished']} of {result['trials']} trials finished"
    if result["stopped"] == "time":
        done += f" (--max-minutes {args.max_minutes:g} reached; --resume continues)"
    print(f"\n{done}; table: {result['tune_dir']}/trials.csv, trials.md")
    best = result["best"]
    if best:
        print(f"best: {best['run_dir']} (dev F1 {best['dev_f1']:.4f}); recipe: {best['recipe']} "
              f"(kayan train {best['recipe']})")


def _train_summary(summary: dict) -> str:
    """The few lines ``kayan train`` ends with: scores and where everything went.

    >>> print(_train_summary({"run_dir": "train/q", "best_dev_f1": 0.5, "test_f1": None, "wall_seconds": 61}))
    best dev F1 0.5000; test F1 -  (1.0 min)
    run folder  train/q   (model/, metrics.jsonl, summary.json, train.log)
    >>> print(_train_summary({"run_dir": "r", "best_dev_f1": 0.5, "test_f1": 0.25, "wall_seconds": 2,
    ...                       "precision_note": "precision auto used fp32: ..."}))
    note: precision auto used fp32: ...
    best dev F1 0.5000; test F1 0.2500  (2 s)
    run folder  r   (model/, metrics.jsonl, summary.json, train.log, test_metrics.json)
    """
    dev, test = (("-" if summary.get(k) is None else f"{summary[k]:.4f}") for k in ("best_dev_f1", "test_f1"))
    seconds = summary.get("wall_seconds", 0)
    took = f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
    lines = [f"warning: {warning}" for warning in summary.get("data_warnings", [])]
    lines += [f"note: {summary['precision_note']}"] if summary.get("precision_note") else []
    lines.append(f"best dev F1 {dev}; test F1 {test}  ({took})")
    if summary.get("model") == "refit":
        lines.append(f"{MODEL}/ is refit on train + dev ({summary['refit_train_sentences']} sentences, "
                     f"{summary['selected_epochs']:.2f} epochs); the dev-selected model scored test F1 "
                     f"{summary['test_f1_dev_selected']:.4f} ({SELECTED_MODEL}/)")
    tested = [RunFolder(summary["run_dir"]).test_metrics_file().name] if summary.get("test_f1") is not None else []
    files = [f"{MODEL}/", METRICS_LOG, SUMMARY, TRAIN_LOG, *tested]
    lines.append(f"run folder  {summary['run_dir']}   ({', '.join(files)})")
    return "\n".join(lines)


def _say_where_curves_are(*run_dirs: str | None) -> None:
    """Say where each finished run's curves.png is (kayan.training draws it)."""
    for curves in (RunFolder(run_dir).curves for run_dir in run_dirs if run_dir):
        if curves.is_file():
            console.info(f"curves: {curves}")


def _label_map(pairs: Sequence[str] | None) -> dict[str, str] | None:
    """``["PER=PERS"]`` → ``{"PER": "PERS"}``."""
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source or not target:
            raise KayanError(f"--label-map {pair!r}: write DATA_TYPE=MODEL_TYPE, e.g. PER=PERS")
        mapping[source] = target
    return mapping


def _evaluate(args: argparse.Namespace) -> None:
    """``kayan evaluate``: score a model on a split, or an existing predictions file."""
    from kayan.evaluation.markdown import report_markdown  # scikit-learn, through seqeval's metrics
    from kayan.evaluation.systems import evaluate_system  # scikit-learn (torch only where a model is scored)

    _process_threads(args.threads)
    report = evaluate_system(
        args.model, data=args.data, predictions=args.predictions, out=args.out, html=args.html,
        label_map=_label_map(args.label_map), decoding=args.decoding, batch_size=args.batch_size, backend=args.backend,
        precision=args.precision, bootstrap_samples=args.bootstrap, seed=args.seed,
        warn=lambda warning: print(f"kayan: warning: {warning}", file=sys.stderr))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    print(report_markdown(report))
    if args.out:
        print(f"\nwritten: {args.out}/predictions.txt, metrics.json, report.md{', report.html' if args.html else ''}")


def _compare(args: argparse.Namespace) -> None:
    """``kayan compare A B --data``: both models on one split, with significance tests."""
    from kayan.evaluation.markdown import compare_markdown  # scikit-learn, through seqeval's metrics
    from kayan.evaluation.systems import compare_systems  # scikit-learn (torch only where a model is compared)

    _process_threads(args.threads)
    result = compare_systems(
        args.a, args.b, data=args.data, out=args.out, samples=args.samples, seed=args.seed,
        label_map=_label_map(args.label_map), decoding=args.decoding, batch_size=args.batch_size, backend=args.backend,
        precision=args.precision)
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else compare_markdown(result))


def _process_threads(threads: int | None) -> None:
    """--threads of evaluate and compare: PyTorch's threads in the command's whole process (the library
    functions leave the process's threads alone)."""
    if threads is not None:
        from kayan.model.backends import set_threads  # torch

        set_threads(threads)


def _add_backend(command: argparse.ArgumentParser, *, scores: bool) -> None:
    """--backend, one of :data:`kayan.model.choices.BACKENDS`, with the one default rule: a command that
    tags (predict, serve) runs ``auto``, as :func:`kayan.load` does; a command that scores (evaluate,
    compare) runs ``torch``, as :func:`~kayan.evaluation.model_scoring.evaluate_model` does, so that a
    model's scores do not change when ``kayan export`` adds ONNX files to its folder (fp32 ONNX is held
    to PyTorch's logits within a tolerance, not to its tags word for word)."""
    auto = "ONNX when MODEL/onnx/model.onnx exists and onnxruntime is installed, else PyTorch"
    if scores:
        default, text = "torch", ("torch (default for the commands that score: a score stays PyTorch's whatever files the "
                                  f"model folder holds; predict and serve default to auto), auto ({auto}), "
                                  "or kayan export's onnx / onnx-int8 file")
    else:
        default, text = "auto", (f"auto (default for the commands that tag: {auto}; evaluate and compare default to "
                                 "torch), torch, or kayan export's onnx / onnx-int8 file")
    command.add_argument("--backend", choices=BACKENDS, default=default, help=text)


def _add_precision(command: argparse.ArgumentParser) -> None:
    """--precision, one of :data:`kayan.model.choices.PRECISIONS`."""
    command.add_argument("--precision", choices=PRECISIONS, default="fp32",
                         help="PyTorch's arithmetic: fp32 (default, the scores of record), bf16 (about 2.5x faster on CPUs "
                              "with AVX512-BF16 or AMX, tags a little different) or auto (bf16 where the device has it natively)")


def _add_model_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--label-map", action="append", metavar="DATA=MODEL", help="rename a data entity type to the model's (repeatable)")
    command.add_argument("--decoding", choices=tuple(DECODERS), help="override the model's decoding")
    command.add_argument("--batch-size", type=_number(int, 1), default=32, help="windows per forward pass (default 32)")
    command.add_argument("--threads", type=_number(int, 1), help="CPU threads of the forward passes (default: one per physical core)")
    _add_backend(command, scores=True)
    _add_precision(command)
    command.add_argument("--seed", type=_number(int, 0, SEED_MAX), default=12345, help="seed of the bootstrap (default 12345)")
    command.add_argument("--json", action="store_true", help="print JSON instead of Markdown")


def _package(args: argparse.Namespace) -> None:
    """``kayan package RUN [RUN ...] OUT``: one run's model as a Hugging Face folder with kayan.json and a
    model card; several runs' models as one ensemble package."""
    from kayan.inference.packaging import package, package_ensemble, pruning_summary  # torch
    from kayan.model import settings  # kayan.json of the package just written (read only after packaging)

    if args.prune_vocab and len(args.runs) > 1:
        raise KayanError("--prune-vocab prunes one model: package the ensemble's runs without it, or give one run")
    if len(args.runs) == 1:
        out = package(args.runs[0], args.out, overwrite=args.overwrite, prune_vocab=args.prune_vocab or (),
                      data_dir=args.data_dir)
        if args.prune_vocab:
            print(pruning_summary(settings.read(out).vocabulary))
        print(f"package written: {out} (load it with kayan.load({str(out)!r}) or transformers.pipeline)")
    else:
        out = package_ensemble(args.runs, args.out, overwrite=args.overwrite)
        print(f"ensemble package written: {out} ({len(args.runs)} members; load it with kayan.load({str(out)!r}))")


def _predict(args: argparse.Namespace) -> None:
    """``kayan predict MODEL [FILE ...]``: one record per line of the files (of stdin when no file is given), as tagged."""
    if args.out:
        return _predict_archive(args)
    from kayan.inference.predict import load  # torch
    from kayan.inference.predict_io import progress_bar, read_pieces, write_predictions  # reading and writing records

    for option in ("workers", "text_field", "shard_size"):
        if getattr(args, option) is not None:
            raise KayanError(f"--{option.replace('_', '-')} goes with --out DIR (tagging an archive into shards); add --out DIR")
    predictor = load(args.model, backend=args.backend, decoding=args.decoding, batch_size=args.batch_size, threads=args.threads,
                     precision=args.precision)
    with progress_bar(enabled=sys.stderr.isatty()) as update:
        write_predictions(predictor, read_pieces(args.files, sys.stdin.buffer), sys.stdout, fmt=args.format, progress=update)


def _predict_archive(args: argparse.Namespace) -> None:
    """``kayan predict MODEL INPUT... --out DIR``: JSON-lines shards, resumable, on --workers processes."""
    from kayan.inference.bulk import SHARD_SIZE, Job, LoadOptions, tag_archive  # torch only where a model loads

    if not args.files or "-" in args.files:
        raise KayanError("--out tags files, not stdin (a rerun must read the same input again): name the input files")
    if args.format != "jsonl":
        raise KayanError(f"--out writes JSON lines: drop --format {args.format}")
    load = LoadOptions(backend=args.backend, decoding=args.decoding, batch_size=args.batch_size, threads=args.threads,
                       precision=args.precision)
    result = tag_archive(Job(args.model, list(args.files), Path(args.out), text_field=args.text_field,
                             shard_size=args.shard_size or SHARD_SIZE, workers=args.workers or 1, load=load))
    print(f"written: {args.out} ({result['documents']:,} documents in {result['shards']:,} shards, "
          f"{result['tagged']:,} tagged now)")


def _export(args: argparse.Namespace) -> None:
    """``kayan export MODEL --onnx``: ONNX (and int8) files in MODEL/onnx, with a parity check."""
    from kayan.inference.export import export_onnx, format_parity  # torch
    from kayan.model.location import model_folder  # where the export went

    if not args.onnx:
        raise KayanError("kayan export: name a format to export to: --onnx")
    report = export_onnx(args.model, quantize=args.quantize, data=args.data, limit=args.limit,
                         batch_size=args.batch_size, tolerance=args.tolerance, max_f1_loss=args.max_f1_loss,
                         force=args.force, threads=args.threads)
    print(format_parity(report))
    folder = model_folder(args.model)  # a run's export goes into its model/: say so
    changed = f"; parity recorded in {folder}/kayan.json (the model folder changed)" \
        if (folder / "kayan.json").is_file() else "; parity recorded in onnx/parity.json"
    print(f"written: {', '.join(report['files'].values())} in {folder / 'onnx'}{changed}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog="kayan", description="Arabic named-entity recognition on BERT-style encoders.")
    parser.add_argument("--version", action="version", version=f"kayan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(commands)
    _add_training_commands(commands)
    _add_scoring_commands(commands)
    _add_inference_commands(commands)
    _add_serve_command(commands)
    for name in ("train", "distill", "tune", "evaluate", "compare", "package", "predict", "export"):
        _add_console_options(commands.choices[name])
    return parser


def _add_data_commands(commands) -> None:
    """The data subcommand and its actions: stats, export, list."""
    data = commands.add_parser("data", help="inspect corpora").add_subparsers(dest="data_command", required=True, metavar="ACTION")
    stats = data.add_parser("stats", help="sentences, tokens, entities per type, lengths, repairs of a split or file")
    stats.add_argument("refs", nargs="+", metavar="CORPUS[:SPLIT]|FILE", help="e.g. anercorp:train, sample, path/to/file.txt")
    stats.add_argument("--json", action="store_true", help="print JSON for machines")
    stats.add_argument("--data-dir", help="folder holding the corpora (default: $KAYAN_DATA_DIR)")
    stats.add_argument("--dev-fraction", type=_number(float, 0, 0.99, low_open=True), default=0.1, help="size of a dev block carved from train (default 0.1)")
    stats.add_argument("--no-verify", action="store_true", help="read files whose sha256 differs from the registry")
    stats.set_defaults(func=_data_stats)
    export = data.add_parser("export", help="write a corpus as a 🤗 DatasetDict folder (parquet, ClassLabel tags, dataset card)")
    export.add_argument("ref", metavar="CORPUS[:SPLIT]|FILE|DATASET", help="e.g. anercorp (every split), sample:test, a CoNLL file")
    export.add_argument("--to", required=True, metavar="DIR", help="the folder to write")
    export.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    export.add_argument("--data-dir", help="folder holding the corpora (default: $KAYAN_DATA_DIR)")
    export.add_argument("--no-verify", action="store_true", help="read files whose sha256 differs from the registry")
    export.set_defaults(func=_data_export)
    listing = data.add_parser("list", help="the known corpora")
    listing.set_defaults(func=_data_list)


def _add_training_commands(commands) -> None:
    """The train, distill and tune subcommands."""
    train = commands.add_parser("train", help="fine-tune a model as a config file says; writes train/RUN/")
    train.add_argument("config", help="a YAML recipe, e.g. configs/quickstart.yaml")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set training.learning_rate=3e-5 (repeatable)")
    either = train.add_mutually_exclusive_group()  # continue a run, or replace it: never both
    either.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    either.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    train.add_argument("--seeds", type=_number(int, 0, SEED_MAX), nargs="+", help="train one run per seed and report mean ± std")
    train.set_defaults(func=_train)

    _add_distill_command(commands)

    tune = commands.add_parser("tune", help="search training settings on dev (Optuna), one run folder per trial; writes tune/RUN/")
    tune.add_argument("config", help="a YAML recipe; its tune: section is the space (default: around its own settings)")
    tune.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config key, e.g. --set training.epochs=3 (repeatable)")
    tune.add_argument("--trials", type=_number(int, 1), help="finished trials wanted in the study (default 20, or the previous run's)")
    tune.add_argument("--max-minutes", type=_number(float, 0, low_open=True), metavar="M", help="start no trial after M minutes")
    tune.add_argument("--out-dir", default="tune", metavar="DIR", help="folder holding tune folders (default tune)")
    again = tune.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the study; unfinished trials run again")
    again.add_argument("--overwrite", action="store_true", help="replace an existing tune folder")
    tune.set_defaults(func=_tune)


def _add_scoring_commands(commands) -> None:
    """The evaluate and compare subcommands."""
    evaluate = commands.add_parser("evaluate", help="score a model (run, checkpoint or package) on a split, or a predictions file")
    evaluate.add_argument("model", nargs="?", help="a run folder, checkpoint or packaged model")
    evaluate.add_argument("--data", help="CORPUS:SPLIT or a CoNLL file, e.g. anercorp:test")
    evaluate.add_argument("--predictions", help="score an existing `token gold predicted` file (conlleval's format); no model")
    evaluate.add_argument("--out", help="write predictions.txt, metrics.json and report.md into this folder (a new or empty one, "
                          "or an earlier evaluation folder, which is replaced)")
    evaluate.add_argument("--html", action="store_true",
                          help="also write OUT/report.html: sentences right-to-left with entities and errors marked, tables, heatmap")
    evaluate.add_argument("--bootstrap", type=_number(int, 0), default=1000, help="bootstrap samples for the F1 interval (0: none)")
    _add_model_options(evaluate)
    evaluate.set_defaults(func=_evaluate)

    compare = commands.add_parser("compare", help="score two models on one split and test their F1 difference")
    compare.add_argument("a", help="model A (run, checkpoint or package), or its predictions file (token gold predicted)")
    compare.add_argument("b", help="model B, or its predictions file")
    compare.add_argument("--data", help="CORPUS:SPLIT or a CoNLL file to tag the models on (not needed for two predictions files)")
    compare.add_argument("--samples", type=_number(int, 1), default=1000, help="resamples of the significance tests (default 1000)")
    compare.add_argument("--out", help="write compare.json, compare.md and compare.png into this folder (a new or empty one, "
                         "or an earlier comparison folder, which is replaced)")
    _add_model_options(compare)
    compare.set_defaults(func=_compare)


def _add_distill_command(commands) -> None:
    """The distill subcommand: kayan train with a teacher (kayan.training.distill)."""
    distill = commands.add_parser("distill", help="train a student on a teacher's soft targets (its config's distill: section); "
                                  "writes train/RUN/ as kayan train does")
    distill.add_argument("teacher", help="the teacher: a package, run folder or ensemble package, e.g. models/anercorp-ensemble")
    distill.add_argument("config", help="a YAML recipe with a distill: section, e.g. configs/anercorp-me5-small-distill.yaml")
    distill.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config key, e.g. --set distill.layers=4 (repeatable)")
    either = distill.add_mutually_exclusive_group()
    either.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    either.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    distill.set_defaults(func=_distill, seeds=None)


def _add_console_options(command: argparse.ArgumentParser) -> None:
    """--verbose / --quiet: what the terminal shows besides the command's output (kayan.console)."""
    group = command.add_mutually_exclusive_group()
    group.add_argument("--verbose", dest="console", action="store_const", const="verbose",
                       help="also show the libraries' log lines, warnings and progress bars")
    group.add_argument("--quiet", dest="console", action="store_const", const="quiet",
                       help="show only errors and the final result (no progress bar, no evaluation lines)")


def _add_inference_commands(commands) -> None:
    """The package, predict and export subcommands."""
    package = commands.add_parser("package", help="write a run's model as a Hugging Face folder with kayan.json and a model card; "
                                  "several runs: one ensemble package")
    package.add_argument("runs", nargs="+", metavar="RUN_DIR",
                         help="a run folder (train/RUN) or its model/ folder; give several (e.g. train/RUN/seed-*) for an "
                              "ensemble that averages their word probabilities")
    package.add_argument("out", metavar="OUT_DIR", help="the package folder to write, e.g. models/NAME")
    package.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
    package.add_argument("--prune-vocab", nargs="+", metavar="REF",
                         help="keep only the subword pieces (and embedding rows) that these texts and the model's own "
                              "training data use: CORPUS:SPLIT, a CoNLL file, or text:PATH (one document per line); "
                              "give it after OUT_DIR. Those texts tokenize as before; the share of the test data's "
                              "words that split otherwise is printed")
    package.add_argument("--data-dir", help="folder holding the corpora --prune-vocab names (default: $KAYAN_DATA_DIR)")
    package.set_defaults(func=_package)

    predict = commands.add_parser("predict", help="tag raw text: one record per input line, written as soon as the line is tagged")
    predict.add_argument("model", metavar="MODEL", help="a packaged model folder (or a run folder)")
    predict.add_argument("files", nargs="*", default=[], metavar="FILE",
                         help="UTF-8 text files; - or none: stdin. Each line gets one record (source FILE:LINE or <stdin>:LINE), "
                              "written and flushed as soon as it is tagged (a file in full batches, typed or piped lines one "
                              "by one as they arrive); memory does not grow with the input. Offsets count characters of the "
                              "line, a file's leading byte-order mark (BOM) not included")
    predict.add_argument("--format", choices=("jsonl", "conll", "text"), default="jsonl",
                         help="jsonl: entities with offsets (default); conll: word TAG lines; text: [TYPE entity] marked inline")
    predict.add_argument("--batch-size", type=_number(int, 1), default=32, help="windows per forward pass (default 32)")
    predict.add_argument("--decoding", choices=tuple(DECODERS), help="override the model's decoding")
    _add_backend(predict, scores=False)
    predict.add_argument("--threads", type=_number(int, 1), help="CPU threads of the forward passes (default: one per physical core)")
    _add_precision(predict)
    archive = predict.add_argument_group("tagging an archive (--out)")
    archive.add_argument("--out", metavar="DIR", help="write DIR/shard-NNNNN.jsonl (each record adds model_sha256 and "
                         "kayan_version) and DIR/manifest.json; a killed job rerun with the same arguments goes on where it stopped")
    archive.add_argument("--text-field", metavar="FIELD", help="the inputs are JSON lines with the text in FIELD (and *.parquet "
                         "files: the text column; default text); without it, one document per line of plain text")
    archive.add_argument("--workers", type=_number(int, 1), metavar="N", help="processes tagging shards, each loading the model once "
                         "(default 1; threads: the cores shared out, or --threads each)")
    archive.add_argument("--shard-size", type=_number(int, 1), metavar="N", help="documents per shard (default 1000): what a killed job "
                         "tags again, per worker")
    predict.set_defaults(func=_predict)

    export = commands.add_parser("export", help="export a packaged model to ONNX for fast CPU inference, with a parity check")
    export.add_argument("model", metavar="MODEL", help="a packaged model folder (the files go into MODEL/onnx)")
    export.add_argument("--onnx", action="store_true", help="write MODEL/onnx/model.onnx")
    export.add_argument("--quantize", choices=("int8",), help="also write MODEL/onnx/model.int8.onnx (dynamic int8)")
    export.add_argument("--data", metavar="CORPUS:SPLIT", help="labelled data of the parity check (default: the model's whole dev set, else sample:test)")
    export.add_argument("--limit", type=_number(int, 1), help="use only the first N sentences of --data")
    export.add_argument("--batch-size", type=_number(int, 1), default=32, help="windows per forward pass (default 32)")
    export.add_argument("--tolerance", type=_number(float, 0, low_open=True), default=1e-3, help="largest logit difference fp32 ONNX may show (default 1e-3)")
    export.add_argument("--max-f1-loss", type=_number(float, 0), default=0.5, metavar="POINTS",
                        help="most F1 points int8 may lose against PyTorch on the parity data; past it the most sensitive encoder "
                             "groups stay float32, one more at a time, and if half of them do not suffice nothing is written (default 0.5)")
    export.add_argument("--force", action="store_true", help="write the int8 model even when it loses more than --max-f1-loss")
    export.add_argument("--threads", type=_number(int, 1), help="CPU threads of the parity check (default: one per physical core)")
    export.set_defaults(func=_export)


def _serve(args: argparse.Namespace) -> None:
    """``kayan serve MODEL``: an HTTP endpoint (Hugging Face token-classification shape) until SIGTERM."""
    from kayan.serve.protocol import Limits  # torch
    from kayan.serve.server import serve  # torch

    serve(args.model, host=args.host, port=args.port, backend=args.backend, threads=args.threads, precision=args.precision,
          decoding=args.decoding,
          batch_size=args.batch_size, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, log_level=args.log_level,
          limits=Limits(max_chars=args.max_chars, max_body=args.max_body, max_inputs=args.max_inputs, body_timeout=args.body_timeout),
          max_queue=args.max_queue, workers=args.workers)


def _add_serve_command(commands) -> None:
    """The serve subcommand."""
    serve = commands.add_parser("serve", help="serve a model over HTTP (Hugging Face Inference API shape), batching concurrent requests")
    serve.add_argument("model", metavar="MODEL", help="a packaged model folder (or a run folder)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)")
    serve.add_argument("--port", type=_number(int, 0, 65535), default=8080, help="TCP port (default 8080; 0 picks a free one)")
    _add_backend(serve, scores=False)
    serve.add_argument("--threads", type=_number(int, 1),
                       help="intra-op threads of each batch (default: one per core, shared out among --workers)")
    serve.add_argument("--workers", type=_number(int, 1), default=1,
                       help="batches tagged at once, on threads sharing one model (default 1; on a CPU, --workers 2 "
                            "with one thread each answers more than one batch on 2 threads)")
    _add_precision(serve)
    serve.add_argument("--max-batch", type=_number(int, 1), default=32, help="most texts of concurrent requests tagged together (default 32)")
    serve.add_argument("--max-wait-ms", type=_number(float, 0), default=5.0, help="how long a batch waits for more requests (default 5)")
    serve.add_argument("--max-chars", type=_number(int, 1), default=100_000, help="longest text accepted, in characters (default 100000; else 413)")
    serve.add_argument("--max-body", type=_number(int, 1), default=4 * 1024 * 1024, help="largest request body, in bytes (default 4 MiB; else 413)")
    serve.add_argument("--max-inputs", type=_number(int, 1), default=256, help="most texts in one request (default 256; else 413)")
    serve.add_argument("--max-queue", type=_number(int, 1), default=256,
                       help="most texts accepted and not yet answered (default 256); past it a request gets 503 with "
                            "Retry-After at once instead of waiting, and one with more texts than this 413")
    serve.add_argument("--body-timeout", type=_number(float, 0, low_open=True), default=20.0, metavar="SECONDS",
                       help="time a client has to send its whole request body (default 20; else 408 and the connection is closed)")
    serve.add_argument("--batch-size", type=_number(int, 1), default=32, help="windows per forward pass (default 32)")
    serve.add_argument("--decoding", choices=tuple(DECODERS), help="override the model's decoding")
    serve.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info",
                       help="the server's log level (default info; requests are not logged)")
    serve.set_defaults(func=_serve)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kayan`` command; returns the exit status. SIGTERM is Ctrl-C while it runs."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed in one line
        return done.code if isinstance(done.code, int) else 0
    return _run(args)


def _in_finalizer(frame) -> bool:
    """Whether ``frame`` runs inside a finalizer (``__del__``), where Python prints an exception and drops it."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _again_later(signum: int) -> None:
    """Deliver ``signum`` to this process again in a moment, once the finalizer it landed in has returned."""
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


def _interrupt(signum, frame) -> None:
    """Ctrl-C's KeyboardInterrupt, except that one landing in a finalizer (garbage collection runs them at any
    moment, e.g. thousands of ``regex`` parse nodes while a module compiles its patterns) is raised again
    just after: raised there, it would be printed as "Exception ignored" and the command would go on."""
    if _in_finalizer(frame):
        _again_later(signum)
        return
    raise KeyboardInterrupt


def _forward_to_sigint(signum, frame) -> None:
    """SIGTERM does what Ctrl-C does now: the handler in force (training's checkpoint-then-stop, or KeyboardInterrupt)."""
    if _in_finalizer(frame):
        _again_later(signum)
        return
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_sigint():
    """While a command runs, ``kill``, systemd, Docker and Kubernetes (SIGTERM) get Ctrl-C's clean stop:
    partial outputs removed, a training checkpoint saved. ``kayan serve`` sets its own while it serves.
    Neither signal is lost in a finalizer (:func:`_interrupt`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _forward_to_sigint)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)


def _run(args: argparse.Namespace) -> int:
    """The parsed command, with its errors turned into one line and a status."""
    try:
        with _program(args):
            args.func(args)
    except KayanError as error:
        _end_progress_bars()
        print(f"kayan: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kayan: interrupted", file=sys.stderr)
        _forget_the_caught_interrupt()
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except OSError as error:  # the file system refused: read-only, full, no permission, a file where a folder goes
        _end_progress_bars()
        if error.errno not in _USER_OS_ERRORS:
            return _bug()
        where = f"{error.filename}: " if error.filename else ""
        print(f"kayan: error: {where}{error.strerror or error}; check the path, its permissions and free space", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - anything else is a bug in Kayan: say so under the traceback
        _end_progress_bars()
        if diskspace.is_full_disk(error):  # a library's own error for a full disk (safetensors): not a bug
            print(f"kayan: error: no space left on the disk ({str(error).splitlines()[0][:120]}); free space where "
                  "the command writes and run it again", file=sys.stderr)
            return 2
        if line := hubkernels.fix_line(error):  # a GPU load that wanted the hub's kernels: the machine's setup, not a bug
            print(f"kayan: error: {line}", file=sys.stderr)
            return 2
        return _bug()
    return 0


@contextlib.contextmanager
def _program(args: argparse.Namespace):
    """What the command sets up in its process, put back when it ends: oneDNN's cache bound
    (:data:`ONEDNN_CACHE`), SIGTERM as Ctrl-C (:func:`_sigterm_as_sigint`) and, for the commands that
    load models, the console (:func:`console.terminal`)."""
    name, capacity = ONEDNN_CACHE
    exported = os.environ.get(name)
    os.environ.setdefault(name, capacity)
    try:
        # commands that load models: library noise off the terminal
        with _sigterm_as_sigint(), (console.terminal(args.console or "normal") if hasattr(args, "console")
                                     else contextlib.nullcontext()):
            yield
    finally:
        if exported is None:
            os.environ.pop(name, None)


def _forget_the_caught_interrupt() -> None:
    """Keep ``python -m kayan`` (and ``-m kayan.cli``) interrupted at status 130, not killed by SIGINT.

    CPython (3.11) marks a KeyboardInterrupt as unhandled whenever one leaves code run from a string
    (``exec``: a dataclass's generated ``__init__``, met while a module imports), even though the command
    caught it; ``python -m`` then ends by killing itself with SIGINT instead of exiting 130. Running a
    string that raises nothing clears the mark.
    """
    exec("pass")


def _end_progress_bars() -> None:
    """Close the progress bars a failed command left open, so that its error line starts a line of its own."""
    tqdm = sys.modules.get("tqdm")  # only where a bar can exist: importing tqdm here would slow every command
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


_USER_OS_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR,
                   errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG, errno.ENOTEMPTY}


def _bug() -> int:
    """Print the traceback of an unexpected exception, and a line saying it is Kayan's bug; status 1."""
    import traceback

    traceback.print_exc()
    print(f"kayan: internal error: the traceback above is a bug in Kayan {__version__}, not a problem with your input; "
          "please report it with the command you ran", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
