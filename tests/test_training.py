"""Training end to end on the tiny model: the run folder, resume, seeds, and every bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kayan.cli import main
from kayan.config import load_config
from kayan.errors import KayanError
from kayan.training import train
from tests.conftest import FAST, REPO, fast_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One fast training run shared by the tests that only read its folder."""
    out = tmp_path_factory.mktemp("runs")
    summary = train(fast_config(out))
    return Path(summary["run_dir"]), summary


def test_run_folder_holds_everything(run):
    run_dir, summary = run
    for name in ("config.yaml", "metrics.jsonl", "model/model.safetensors", "model/tokenizer.json",
                 "model/config.json", "model/kayan.json", "test_metrics.json", "test_predictions.txt", "summary.json",
                 "curves.png", "train.log"):
        assert (run_dir / name).is_file(), name
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1.0, 2.0, 3.0]
    assert {"step", "dev_f1", "dev_f1_strict", "dev_precision", "dev_recall"} <= set(lines[0])
    assert summary["best_dev_f1"] == max(line["dev_f1"] for line in lines)
    assert 0 <= summary["padding_fraction"] < 1 and summary["train_tokens_per_second"] > 0


def test_model_carries_the_label_map_and_settings(run):
    run_dir, _ = run
    config = json.loads((run_dir / "model" / "config.json").read_text())
    kayan = json.loads((run_dir / "model" / "kayan.json").read_text())
    assert set(config["id2label"].values()) == set(kayan["labels"]) == {
        "O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PERS", "I-PERS"}
    assert (kayan["window"], kayan["stride"], kayan["scheme"]) == (64, 16, "IOB2")


@pytest.mark.parametrize("ratio, steps", [(1.0, 4), (0.5, 4)])
def test_warmup_ratio_is_a_share_of_the_steps(tmp_path, ratio, steps):
    # transformers 5 reads warmup_steps=1.0 as one step: a ratio of 1.0 warmed up for one step only
    run_dir = Path(train(fast_config(tmp_path, f"training.warmup_ratio={ratio}", f"training.max_steps={steps}",
                                     "training.logging_steps=1", f"training.eval_steps={steps}"))["run_dir"])
    state = json.loads((run_dir / "checkpoints" / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    logged = [entry["learning_rate"] for entry in state["log_history"] if "learning_rate" in entry]
    warmup, peak = math.ceil(ratio * steps), 1e-2  # FAST's learning rate, linear schedule; step k logs the rate it used
    expected = [peak * done / warmup if done < warmup else peak * (steps - done) / max(1, steps - warmup)
                for done in range(steps)]
    assert logged == pytest.approx(expected), logged


def test_test_scoring_counts_every_word_of_the_long_sentence(run, tmp_path):
    run_dir, _ = run
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert report["words"] == 693 and report["sentences"] == 46 and report["dropped"] == 0
    blocks = (run_dir / "test_predictions.txt").read_text(encoding="utf-8").strip().split("\n\n")
    assert sum(len(b.splitlines()) for b in blocks) == 693


def test_long_training_sentence_is_windowed_not_truncated(tmp_path):
    # The sample's 350-word sentence as the only dev sentence: every word must be scored.
    long_file = tmp_path / "long.txt"
    from kayan.data import corpora
    longest = max(corpora.load_split("sample:train").sentences, key=len)
    long_file.write_text("\n".join(f"{w} {t}" for w, t in zip(longest.words, longest.tags)) + "\n", encoding="utf-8")
    summary = train(fast_config(tmp_path, f"data.dev=[{long_file}]", f"data.test=[{long_file}]", "training.epochs=1"))
    report = json.loads((Path(summary["run_dir"]) / "test_metrics.json").read_text())
    assert len(longest) > 300 and report["words"] == len(longest) and report["dropped"] == 0


def test_resolved_config_repeats_the_run(run):
    run_dir, _ = run
    snapshot = load_config(run_dir / "config.yaml")
    assert snapshot.training.window == 64 and snapshot.model.tiny.hidden_size == 32
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["output"]["run_name"] == "quickstart"


def test_existing_run_folder_is_not_overwritten(run):
    run_dir, _ = run
    config = load_config(run_dir / "config.yaml")
    with pytest.raises(KayanError, match="already holds a run; pass --resume"):
        train(config)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["training.lerning_rate=1"], "unknown config key training.lerning_rate (did you mean 'learning_rate'?)"),
        (["training.window=4096"], "model tiny: training.window 4096 exceeds the model's limit of"),
        (["training.stride=200", "training.window=128"], "training.stride"),
        (["data.train=[nope:train]"], "unknown corpus 'nope'"),
        (["data.normalization=[remove_everything]"], "unknown normalization step 'remove_everything'"),
    ],
)
def test_bad_config_fails_before_training(tmp_path, overrides, message):
    with pytest.raises(KayanError) as caught:
        train(fast_config(tmp_path, *overrides))
    assert message in str(caught.value)
    assert not (tmp_path / "quickstart" / "checkpoints").exists()


def test_label_in_dev_that_train_lacks(tmp_path):
    dev = _write(tmp_path, "dev.txt", "القاهرة B-LOC\nكأس B-EVENT\n")
    with pytest.raises(KayanError, match=r"dev.txt:2: data.dev has type 'EVENT' .* map it with data.label_map"):
        train(fast_config(tmp_path, f"data.dev=[{dev}]"))


def test_empty_corpus_file(tmp_path):
    empty = _write(tmp_path, "empty.txt", "\n\n")
    with pytest.raises(KayanError, match="empty.txt: no sentences"):
        train(fast_config(tmp_path, f"data.train=[{empty}]"))


def test_model_folder_without_weights(tmp_path):
    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(KayanError, match=r"model folder .*encoder has no weights"):
        train(fast_config(tmp_path, f"model.name={folder}"))


def test_unreachable_hub_names_the_fix(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # huggingface_hub reads HF_HUB_OFFLINE at import; set the constant so the test does not wait on retries.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(KayanError, match=r"could not be loaded from the Hugging Face Hub .* set model.name: DIR"):
        train(fast_config(tmp_path, "model.name=CAMeL-Lab/bert-base-arabic-camelbert-msa"))


def test_cli_train_error_is_one_line_status_2(tmp_path, capsys):
    assert main(["train", str(REPO / "configs" / "quickstart.yaml"), "--set", "training.epochz=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "quickstart.yaml: unknown config key training.epochz" in err


def test_seeds_report_mean_and_std(tmp_path):
    config = fast_config(tmp_path, "training.epochs=1")
    from kayan.training import train_seeds

    summary = train_seeds(config, [1, 2])
    each = [json.loads((tmp_path / "quickstart" / f"seed-{seed}" / "test_metrics.json").read_text())["default"]["micro"]["f1"]
            for seed in (1, 2)]
    assert summary["test_f1"]["values"] == each  # each seed's own run, in seed order
    assert summary["test_f1"]["mean"] == pytest.approx((each[0] + each[1]) / 2)
    assert summary["test_f1"]["std"] == pytest.approx(abs(each[0] - each[1]) / 2**0.5)  # sample std of two values
    assert (tmp_path / "quickstart" / "seeds.json").is_file()
    assert (tmp_path / "quickstart" / "seed-2" / "model" / "kayan.json").is_file()


def test_torchrun_two_cpu_processes_write_the_same_run_folder(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "kayan.cli", "train",
               str(REPO / "configs" / "quickstart.yaml"), *[a for o in FAST for a in ("--set", o)],
               "--set", f"output.dir={tmp_path}", "--set", "training.epochs=1"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    run_dir = tmp_path / "quickstart"
    for name in ("config.yaml", "metrics.jsonl", "model/kayan.json", "model/model.safetensors", "test_metrics.json"):
        assert (run_dir / name).is_file(), name
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1  # rank 0 alone logs
