"""Every code block of the README works: Python blocks run (on the tiny package), and every `kayan`
command line of the shell blocks parses with the real argument parser (issue 12, item 12)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from kayan.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def kayan_commands() -> list[list[str]]:
    """The arguments of every `kayan ...` or `-m kayan.cli ...` line of the README's shell blocks."""
    found = []
    for block in blocks("bash"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            for marker in ("kayan", ".venv/bin/kayan", "kayan.cli"):
                if marker in words:
                    found.append(words[words.index(marker) + 1 :])
                    break
    return found


def test_the_readme_has_code_to_check():
    assert len(blocks("python")) >= 1 and len(kayan_commands()) >= 15


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_blocks_run(built, index, capsys):
    code = blocks("python")[index].replace('"models/quickstart"', repr(str(built["package"])))
    exec(compile(code, f"README.md python block {index}", "exec"), {})


@pytest.mark.parametrize("argv", kayan_commands(), ids=" ".join)
def test_command_lines_parse(argv):
    args = build_parser().parse_args(argv)
    assert callable(args.func)
