"""Layer-wise learning-rate decay (``training.layer_lr_decay``): the rate each layer really learns at, resume, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kayan.cli import main
from kayan.training import train
from kayan.training.layer_rates import depth
from kayan.training.word_trainer import WordLevelTrainer
from tests.conftest import FAST, REPO, fast_config

LAYERS = 2


def _first_step(tmp_path: Path, monkeypatch, decay: float) -> tuple[dict, dict, list]:
    """One optimizer step of a 2-layer tiny model: the weights before it, after it, and the optimizer's groups."""
    before, groups = {}, []
    create = WordLevelTrainer.create_optimizer

    def recording(self, model=None):
        optimizer = create(self, model)
        names = {id(p): n for n, p in self.model.named_parameters()}
        groups.extend((group["lr"], [names[id(p)] for p in group["params"]]) for group in optimizer.param_groups)
        before.update({n: p.detach().clone() for n, p in self.model.named_parameters()})
        return optimizer

    monkeypatch.setattr(WordLevelTrainer, "create_optimizer", recording)
    summary = train(fast_config(tmp_path, f"model.tiny.num_hidden_layers={LAYERS}", "training.max_steps=1",
                                "training.eval_steps=1", "training.embedding_rows=all", "training.warmup_ratio=0",
                                f"training.layer_lr_decay={decay}"),
                    test=False)
    after = load_file(str(Path(summary["run_dir"]) / "model" / "model.safetensors"))
    return before, after, groups


def test_each_layer_moves_by_its_own_rate_in_the_first_step(tmp_path, monkeypatch):
    # AdamW's first step moves every weight with a gradient by the group's rate (m/sqrt(v) = ±1): so the
    # median move of each layer's weights is the rate that layer learns at.
    before, after, groups = _first_step(tmp_path, monkeypatch, 0.5)
    lr = 1e-2
    names = [n for _, members in groups for n in members]
    assert sorted(names) == sorted(before) and len(names) == len(set(names))  # every trained weight once
    for rate, members in groups:
        assert rate == pytest.approx(lr * 0.5 ** (LAYERS + 1 - depth(members[0], LAYERS)))
        assert {depth(n, LAYERS) for n in members} == {depth(members[0], LAYERS)}
    for k, expected in [(0, lr / 8), (1, lr / 4), (2, lr / 2), (3, lr)]:  # embeddings, layer 0, layer 1, head
        moves = torch.cat([(after[n] - before[n]).abs().flatten() for n in before if depth(n, LAYERS) == k])
        moved = moves[moves > 0]
        assert moved.numel() > 0 and moved.median().item() == pytest.approx(expected, rel=0.05), k


def test_off_by_default_is_one_rate_for_all(tmp_path, monkeypatch):
    before, after, groups = _first_step(tmp_path, monkeypatch, 1.0)
    assert [rate for rate, _ in groups] == [1e-2] * len(groups) and len(groups) <= 2  # the Trainer's own groups
    head = torch.cat([(after[n] - before[n]).abs().flatten() for n in before if n.startswith("classifier")])
    low = torch.cat([(after[n] - before[n]).abs().flatten() for n in before if depth(n, LAYERS) == 1])
    assert head[head > 0].median().item() == pytest.approx(low[low > 0].median().item(), rel=0.05)


def _cli(out: Path, *sets: str, flag: str | None = None) -> list[str]:
    config = [*FAST, f"output.dir={out}", "training.max_steps=3", "training.eval_steps=3", *sets]
    return ["train", str(REPO / "configs" / "quickstart.yaml"), *[a for s in config for a in ("--set", s)],
            *([flag] if flag else [])]


def test_resume_refuses_a_changed_decay(tmp_path, capsys):
    assert main(_cli(tmp_path, "training.layer_lr_decay=0.8")) == 0
    capsys.readouterr()
    assert main(_cli(tmp_path, "training.layer_lr_decay=0.9", "training.max_steps=6", flag="--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume with training.layer_lr_decay changed (0.8 → 0.9)" in err, err


@pytest.mark.parametrize("value, shown", [("0", "0.0"), ("1.5", "1.5"), ("-0.5", "-0.5")])
def test_bad_decay_is_one_line_naming_the_key(tmp_path, capsys, value, shown):
    assert main(_cli(tmp_path, f"training.layer_lr_decay={value}")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"config key training.layer_lr_decay is {shown}; it must be greater than 0.0 and at most 1.0" in err, err
    assert not (tmp_path / "quickstart").exists()
