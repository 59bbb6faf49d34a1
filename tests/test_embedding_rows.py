"""Training only the used word-embedding rows is the same training as training them all."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from kayan.training import train
from kayan.training.embedding_rows import UsedRowsEmbedding, freeze_unused_rows, restore_full_embedding
from tests.conftest import fast_config


def _tiny_bert(vocab: int = 400) -> transformers.BertForTokenClassification:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, num_labels=5, pad_token_id=0)
    return transformers.BertForTokenClassification(config)


def _train_steps(model, batches, labels, *, weight_decay: float = 0.0) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=weight_decay)
    model.train()
    torch.manual_seed(1)  # the same dropout masks for both models
    for ids, tags in zip(batches, labels):
        model(input_ids=ids, attention_mask=(ids != 0).long(), labels=tags).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()


def _batches():
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 150, (6, 4, 12), generator=generator)
    ids[:, :, -3:] = 0  # padding
    return ids, torch.randint(0, 5, (6, 4, 12), generator=generator)


def test_same_weights_after_n_steps_as_full_training():
    full = _tiny_bert()
    used = copy.deepcopy(full)
    ids, labels = _batches()
    module = freeze_unused_rows(used, set(ids.flatten().tolist()) | {0, 1, 2})
    assert len(module.row_ids) < 150 < module.num_embeddings  # a strict subset is trained
    _train_steps(full, ids, labels)
    _train_steps(used, ids, labels)
    restore_full_embedding(used)
    assert isinstance(used.get_input_embeddings(), torch.nn.Embedding)
    for (name, a), (other, b) in zip(full.state_dict().items(), used.state_dict().items()):
        assert name == other
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    untouched = torch.tensor(sorted(set(range(400)) - set(ids.flatten().tolist()) - {0, 1, 2}))
    assert torch.equal(used.get_input_embeddings().weight[untouched], _tiny_bert().get_input_embeddings().weight[untouched])


def test_weight_decay_would_move_unused_rows_so_auto_stays_off():
    # Why "auto" trains all rows when weight_decay > 0: decay alone moves rows that get no gradient.
    full = _tiny_bert()
    before = full.get_input_embeddings().weight.detach().clone()
    ids, labels = _batches()
    _train_steps(full, ids, labels, weight_decay=0.1)
    assert not torch.equal(full.get_input_embeddings().weight[300:], before[300:])


def test_state_dict_is_an_ordinary_embedding_and_loads_back():
    model = _tiny_bert()
    module = freeze_unused_rows(model, [0, 4, 7])
    with torch.no_grad():
        module.trained += 1.0
    state = model.state_dict()
    key = "bert.embeddings.word_embeddings.weight"
    assert key in state and not any("trained" in k or "frozen" in k for k in state)
    assert torch.equal(state[key][[0, 4, 7]], module.trained.detach())
    fresh = _tiny_bert()
    fresh_module = freeze_unused_rows(fresh, [0, 4, 7])
    fresh.load_state_dict(state)
    assert torch.equal(fresh_module.trained, module.trained) and torch.equal(fresh_module.frozen, module.frozen)


def test_ids_outside_the_trained_rows_read_the_frozen_matrix_and_padding_gets_no_gradient():
    embedding = torch.nn.Embedding(10, 3, padding_idx=0)
    module = UsedRowsEmbedding(embedding, [0, 2, 5])
    ids = torch.tensor([[0, 2, 9, 5, 7]])
    assert torch.equal(module(ids), embedding(ids))
    module(ids).sum().backward()
    assert module.trained.grad[0].abs().sum() == 0 and module.trained.grad[1:].abs().sum() > 0


def test_kayan_train_gives_the_same_model_with_used_rows_and_with_all(tmp_path: Path):
    runs = {}
    for mode in ("used", "all"):
        summary = train(fast_config(tmp_path, "model.tiny.vocab_size=3000", "training.max_steps=12", "training.eval_steps=6",
                                    f"training.embedding_rows={mode}", f"output.run_name={mode}"))
        runs[mode] = summary
    assert runs["all"]["embedding_rows_trained"] is None
    vocab = transformers.AutoConfig.from_pretrained(tmp_path / "used" / "model").vocab_size
    assert 0 < runs["used"]["embedding_rows_trained"] < vocab
    used, full = (load_file(tmp_path / mode / "model" / "model.safetensors") for mode in ("used", "all"))
    assert used.keys() == full.keys()
    for name in full:
        torch.testing.assert_close(used[name], full[name], rtol=0, atol=1e-5, msg=name)
    assert runs["used"]["best_dev_f1"] == pytest.approx(runs["all"]["best_dev_f1"], abs=1e-9)
    assert runs["used"]["test_f1"] == pytest.approx(runs["all"]["test_f1"], abs=1e-9)
