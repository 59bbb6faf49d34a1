"""Long batches recompute their activations in the backward pass: the same training, less memory held."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file

import kayan.training.word_trainer
from kayan.cli import main
from kayan.training import train
from kayan.training.recompute import recompute_activations
from tests.conftest import REPO, fast_config


def _tiny_bert() -> transformers.BertForTokenClassification:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, num_labels=5, pad_token_id=0)
    return transformers.BertForTokenClassification(config)


def _step(recompute: bool):
    """One forward and backward pass in training mode (dropout on): the gradients and the bytes held for backward."""
    model = _tiny_bert().train()
    recompute_activations(model, recompute)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 200, (4, 96), generator=generator)
    mask = torch.ones_like(ids)
    mask[2:, 70:] = 0
    held = {}

    def pack(tensor):
        held[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    torch.manual_seed(2)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(input_ids=ids, attention_mask=mask, labels=torch.randint(0, 5, (4, 96), generator=generator)).loss
    loss.backward()
    return {name: p.grad for name, p in model.named_parameters()}, sum(held.values())


def test_recomputing_gives_the_same_gradients_to_the_bit_and_holds_a_fraction():
    (kept, kept_bytes), (recomputed, recomputed_bytes) = _step(False), _step(True)
    assert kept.keys() == recomputed.keys()
    for name in kept:
        assert torch.equal(kept[name], recomputed[name]), name
    assert recomputed_bytes < kept_bytes / 4


def test_recompute_can_be_turned_off_again():
    model = _tiny_bert()
    recompute_activations(model, True)
    assert model.is_activation_checkpointing
    recompute_activations(model, False)
    assert not model.is_activation_checkpointing


def test_kayan_train_recomputes_the_long_batches_only_and_trains_the_same_model(tmp_path: Path, monkeypatch):
    seen = []

    def spy(model, on):
        seen.append(on)
        recompute_activations(model, on)

    monkeypatch.setattr(kayan.training.word_trainer, "recompute_activations", spy)
    never = train(fast_config(tmp_path, "training.max_steps=8", "training.eval_steps=4", "training.recompute_above=100000",
                              "output.run_name=never"))
    assert seen and not any(seen)
    seen.clear()
    mixed = train(fast_config(tmp_path, "training.max_steps=8", "training.eval_steps=4", "training.recompute_above=50",
                              "output.run_name=mixed"))
    assert any(seen) and not all(seen)  # some batches recomputed, some not, in one run
    for name, tensor in load_file(tmp_path / "never" / "model" / "model.safetensors").items():
        assert torch.equal(tensor, load_file(tmp_path / "mixed" / "model" / "model.safetensors")[name]), name
    assert mixed["best_dev_f1"] == never["best_dev_f1"] and mixed["test_f1"] == never["test_f1"]


def test_a_negative_recompute_threshold_is_one_line(capsys):
    assert main(["train", str(REPO / "configs" / "quickstart.yaml"), "--set", "training.recompute_above=-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config key training.recompute_above is -1; it must be at least 0" in err, err
