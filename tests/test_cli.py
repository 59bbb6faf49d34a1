"""The command line: output, --json, and one-line errors with status 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from kayan.cli import build_parser, main
from tests.conftest import needs_shared


@needs_shared
def test_stats_prints_the_anercorp_counts(capsys):
    assert main(["data", "stats", "anercorp:test"]) == 0
    out = capsys.readouterr().out
    assert "925" in out and "25,008" in out and "2,285" in out and "2,211" in out


@needs_shared
def test_stats_json_for_all_splits(capsys):
    assert main(["data", "stats", "anercorp", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in results] == ["anercorp:train", "anercorp:test"]
    assert [r["entities"]["conlleval_total"] for r in results] == [9000, 2285]


def test_stats_on_a_file_path(tmp_path, capsys):
    path = tmp_path / "f.txt"
    path.write_text("بغداد B-LOC\n", encoding="utf-8")
    assert main(["data", "stats", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entities"]["conlleval"] == {"LOC": 1}


@pytest.mark.parametrize(
    "content, expected",
    [("", "no sentences"), ("بغداد\n", "f.txt:1: line has one column"), ("بغداد Z-LOC\n", "f.txt:1: tag 'Z-LOC'")],
)
def test_bad_file_is_one_line_and_status_2(tmp_path, content, expected):
    path = tmp_path / "f.txt"
    path.write_text(content, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "kayan.cli", "data", "stats", str(path)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and expected in run.stderr and "Traceback" not in run.stderr


def test_unknown_corpus_is_status_2(capsys):
    assert main(["data", "stats", "nope:train"]) == 2
    assert "unknown corpus 'nope'" in capsys.readouterr().err


def test_help_lists_every_command_with_its_help():
    run = subprocess.run([sys.executable, "-m", "kayan.cli", "--help"], capture_output=True, text=True)
    [commands] = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    listed = " ".join(run.stdout.split())  # argparse wraps long help lines
    assert run.returncode == 0 and len(commands._choices_actions) >= 8
    for command in commands._choices_actions:
        assert f" {command.dest} {' '.join(command.help.split())}" in listed, command.dest
