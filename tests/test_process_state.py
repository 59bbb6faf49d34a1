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
