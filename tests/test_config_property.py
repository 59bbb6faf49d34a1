"""Property (issue 12): random config overrides give status 0 or one line with status 2, and a failed
`kayan train` never changes an existing run folder, with or without --overwrite / --resume.

Every drawn set holds at least one invalid value (so no example trains and the test runs in
seconds); the invalid values cover each kind of check: type, range, cross-key, unknown key, and
those only the model or the data can tell (a window the model cannot take, a missing file).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kayan.cli import main
from kayan.config import load_config, save_config
from tests.conftest import FAST

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "quickstart.yaml"

VALID = {
    "training.learning_rate": ["1e-3", "5e-5"], "training.batch_size": ["1", "8"], "training.epochs": ["1", "0.5"],
    "training.window": ["64", "128"], "training.stride": ["0", "16"], "training.max_steps": ["1", "-1"],
    "training.warmup_ratio": ["0", "0.1"], "training.seed": ["0", "7"], "data.dev_fraction": ["0.2"],
    "training.eval_steps": ["0", "5"], "training.decoding": ["first", "viterbi"],
}
INVALID = {
    "training.learning_rate": ["-1", "0", ".nan", "abc", "[1]"],
    "training.batch_size": ["0", "-1", "2.5", "true", "''"],
    "training.eval_batch_size": ["0"], "training.gradient_accumulation": ["0", "-2"],
    "training.epochs": ["0", "-1", ".inf"], "training.window": ["1", "2", "100000", "4096"],
    "training.stride": ["-1", "62", "500"], "training.max_steps": ["0", "-5"],
    "training.warmup_ratio": ["1.5", "-0.1"], "training.weight_decay": ["-1"],
    "training.early_stopping_patience": ["-1"], "training.eval_steps": ["-3"], "training.logging_steps": ["0"],
    "training.save_total_limit": ["0"], "training.seed": ["-1", "99999999999"], "training.scheduler": ["fast"],
    "training.precision": ["fp8"], "data.dev_fraction": ["0", "1", "1.5"], "data.train": ["[missing/file.txt]"],
    "data.normalization": ["[remove_everything]"], "model.name": ["/nonexistent/encoder"],
    "model.tiny.hidden_size": ["33", "0"], "model.tiny.vocab_size": ["0"], "model.tiny.num_attention_heads": ["0"],
    "training.lerning_rate": ["1"], "training": ["3"],
}


def _pairs(table: dict[str, list[str]]):
    return st.sampled_from([f"{key}={value}" for key, values in table.items() for value in values])


overrides = st.tuples(st.lists(_pairs(VALID), max_size=4), st.lists(_pairs(INVALID), min_size=1, max_size=3)).flatmap(
    lambda parts: st.permutations(parts[0] + parts[1]))


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def existing_run(out: Path) -> Path:
    """A complete-looking run folder: config, a checkpoint, a model, scores."""
    run = out / "quickstart"
    save_config(load_config(CONFIG, [*FAST, f"output.dir={out}"]), run / "config.yaml")
    (run / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (run / "model").mkdir()
    (run / "model" / "model.safetensors").write_bytes(b"weights")
    (run / "summary.json").write_text('{"best_dev_f1": 0.5}')
    (run / "metrics.jsonl").write_text('{"step": 2, "dev_f1": 0.5}\n')
    return run


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=overrides, flag=st.sampled_from([[], ["--overwrite"], ["--resume"]]))
@example(drawn=["training.window=4096"], flag=["--overwrite"])  # the checks only the model can make
@example(drawn=["training.window=4096", "training.stride=0"], flag=["--resume"])
@example(drawn=["model.name=/nonexistent/encoder"], flag=["--overwrite"])
@example(drawn=["data.train=[missing/file.txt]"], flag=["--resume"])
def test_random_overrides_give_one_line_and_leave_the_run_alone(tmp_path_factory, capsys, drawn, flag):
    out = tmp_path_factory.mktemp("out")
    existing_run(out)
    before = snapshot(out)
    argv = ["train", str(CONFIG), *[a for o in [*FAST, f"output.dir={out}", *drawn] for a in ("--set", o)], *flag]
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 0 or (status == 2 and err.count("\n") == 1 and err.startswith("kayan: error: ")), (drawn, flag, err)
    assert snapshot(out) == before, (drawn, flag)
