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
