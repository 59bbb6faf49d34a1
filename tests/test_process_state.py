"""The library leaves the process as it found it: environment, import hooks, warning hook, loggers,
progress bars, the Ctrl-C handler and PyTorch's thread count (tests/state_probe.py, in a fresh process
so that what earlier tests did cannot hide it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_training_predicting_and_exporting_leave_the_process_as_they_found_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tests.state_probe", str(tmp_path)], capture_output=True, text=True,
                          timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    changed = json.loads((tmp_path / "changes.json").read_text(encoding="utf-8"))
    if "os.environ" in changed:  # show only the variables that differ
        before, after = changed["os.environ"]
        changed["os.environ"] = {k: [before.get(k), after.get(k)] for k in {*before, *after} if before.get(k) != after.get(k)}
    assert changed == {}


# The process after a `kayan` command whose console was set up while the libraries loaded (a config
# that does not exist: the command imports transformers, datasets and torch, then stops with a user
# error), or after importing what that command imports without running it.
_AFTER = """
import json, logging, os, sys, warnings
from kayan.cli import main
status = main(["train", "no-such-config.yaml"]) if sys.argv[1] == "command" else 2
import datasets, huggingface_hub.utils, kayan.training.trainer, transformers
seen = [dict(os.environ), [type(f).__name__ for f in sys.meta_path], warnings.showwarning.__qualname__,
        logging.root.manager.disable]
for name in ("transformers", "datasets", "huggingface_hub", "accelerate", "torch", "py.warnings", "kayan"):
    logger = logging.getLogger(name)
    seen.append([name, logger.level, [type(h).__name__ for h in logger.handlers], logger.propagate])
seen.append([datasets.utils.are_progress_bars_disabled(), transformers.utils.logging.is_progress_bar_enabled(),
             huggingface_hub.utils.are_progress_bars_disabled()])
print(status, json.dumps(seen))
"""


def test_the_command_line_puts_its_console_back_when_the_command_ends():
    def after(mode: str) -> str:
        done = subprocess.run([sys.executable, "-c", _AFTER, mode], capture_output=True, text=True, timeout=300, cwd=REPO)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.splitlines()[-1]

    assert after("command") == after("import only")
