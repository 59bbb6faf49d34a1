"""The ``kayan`` command: a thin layer that parses arguments and calls the library.

Errors a user can cause (:class:`KayanError`) print one line and exit with status 2;
anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from kayan import __version__
from kayan.errors import KayanError


def _data_stats(args: argparse.Namespace) -> None:
    """``kayan data stats``: counts for each named split or file."""
    from kayan import corpora
    from kayan.stats import corpus_stats, format_stats

    results = []
    for ref in args.refs:
        name, split = corpora.parse_ref(ref)
        if split is None and name in corpora.REGISTRY:
            splits = list(corpora.get(name).splits)
        else:
            splits = [split]
        for each in splits:
            full = ref if each is None else f"{name}:{each}"
            dataset = corpora.load(full, root=args.data_dir, verify=not args.no_verify, dev_fraction=args.dev_fraction)
            results.append(corpus_stats(dataset))
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(format_stats(r) for r in results))


def _data_list(args: argparse.Namespace) -> None:
    """``kayan data list``: the corpus registry."""
    from kayan.corpora import REGISTRY

    for corpus in REGISTRY.values():
        print(f"{corpus.name:<14} {', '.join(corpus.splits):<18} {corpus.license:<12.12} {corpus.description}")


def _train(args: argparse.Namespace) -> None:
    """``kayan train``: fine-tune as the config says; print where the run went and its scores."""
    from kayan.config import load_config
    from kayan.training import train, train_seeds

    config = load_config(args.config, args.overrides)
    if args.seeds:
        summary = train_seeds(config, args.seeds, resume=args.resume, overwrite=args.overwrite)
        for key in ("dev_f1", "test_f1"):
            if summary[key]:
                print(f"{key}: {summary[key]['mean']:.4f} ± {summary[key]['std']:.4f} over seeds {summary['seeds']}")
        return
    summary = train(config, resume=args.resume, overwrite=args.overwrite)
    if summary:
        print(f"run folder: {summary['run_dir']}")
        print(f"best dev F1 {summary['best_dev_f1']:.4f}; test F1 {summary['test_f1'] if summary['test_f1'] is None else round(summary['test_f1'], 4)}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="kayan", description="Arabic named-entity recognition on BERT-style encoders.")
    parser.add_argument("--version", action="version", version=f"kayan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="inspect corpora").add_subparsers(dest="data_command", required=True, metavar="ACTION")
    stats = data.add_parser("stats", help="sentences, tokens, entities per type, lengths, repairs of a split or file")
    stats.add_argument("refs", nargs="+", metavar="CORPUS[:SPLIT]|FILE", help="e.g. anercorp:train, sample, path/to/file.txt")
    stats.add_argument("--json", action="store_true", help="print JSON for machines")
    stats.add_argument("--data-dir", help="folder holding the corpora (default: $KAYAN_DATA_DIR)")
    stats.add_argument("--dev-fraction", type=float, default=0.1, help="size of a dev block carved from train (default 0.1)")
    stats.add_argument("--no-verify", action="store_true", help="read files whose sha256 differs from the registry")
    stats.set_defaults(func=_data_stats)
    listing = data.add_parser("list", help="the known corpora")
    listing.set_defaults(func=_data_list)

    train = commands.add_parser("train", help="fine-tune a model as a config file says; writes train/RUN/")
    train.add_argument("config", help="a YAML recipe, e.g. configs/quickstart.yaml")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set training.learning_rate=3e-5 (repeatable)")
    train.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    train.add_argument("--seeds", type=int, nargs="+", help="train one run per seed and report mean ± std")
    train.set_defaults(func=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kayan`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KayanError as error:
        print(f"kayan: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kayan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
