"""scripts/quality.py without training: which rows run, the plain row at Kayan's settings, and the equal-settings p-values."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from kayan.data.sentence import Sentence
from kayan.evaluation import compare, predictions_text, read_predictions

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_script", REPO / "scripts" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sentences(count: int = 40) -> list[Sentence]:
    rng = random.Random(3)
    sentences = []
    for i in range(count):
        tags = [rng.choice(["O", "O", "B-PERS", "B-LOC"]) for _ in range(6)]
        sentences.append(Sentence(tuple(f"w{i}_{j}" for j in range(6)), tuple(tags), source="x", line=i))
    return sentences


def _predicted(sentences, keep: float, seed: int) -> list[list[str]]:
    """Gold tags with a share ``1 - keep`` of the entities dropped: a system of a chosen quality."""
    rng = random.Random(seed)
    return [[t if t == "O" or rng.random() < keep else "O" for t in s.tags] for s in sentences]


def test_plain_selected_trains_the_plain_recipe_at_kayans_settings(quality, tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "scripts"))
    import benchmark.plain

    seen = []

    def fake_train_plain(settings, work):
        seen.append((settings, work))
        (work / "plain").mkdir(parents=True, exist_ok=True)
        (work / "plain" / "test_predictions.txt").write_text("w O O\n\n", encoding="utf-8")
        return {"test_f1": 0.5}

    monkeypatch.setattr(benchmark.plain, "train_plain", fake_train_plain)
    quality.main(["--plain", "plain-selected", "--work", str(tmp_path), "--encoder", "ENC"])
    quality.main(["--plain", "plain", "--work", str(tmp_path), "--encoder", "ENC"])
    (selected, where), (guide, plain_where) = seen
    assert (selected["learning_rate"], selected["epochs"], guide["learning_rate"], guide["epochs"]) == (1e-4, 6.0, 5e-5, 3.0)
    # everything else equal: batch, warmup, scheduler, seed, data
    assert {k: v for k, v in selected.items() if k not in ("learning_rate", "epochs")} == \
        {k: v for k, v in guide.items() if k not in ("learning_rate", "epochs")}
    assert selected["seed"] == 12345 and selected["batch_size"] == 16
    assert (where, plain_where) == (tmp_path / "plain-selected", tmp_path)  # plain's files stay where they were
    assert quality.predictions_of(tmp_path, "plain-selected") == tmp_path / "plain-selected" / "plain" / "test_predictions.txt"
    assert quality.predictions_of(tmp_path, "plain") == tmp_path / "plain" / "test_predictions.txt"
    assert (tmp_path / "plain-selected" / "plain" / "result.json").is_file()


def test_rows_at_equal_settings_get_their_own_difference_and_p(quality, tmp_path):
    sentences = _sentences()
    systems = {"plain": 0.3, "plain-selected": 0.5, "kayan-selected": 0.9, "kayan-plain-settings": 0.6}
    for seed, (name, keep) in enumerate(systems.items()):
        path = quality.predictions_of(tmp_path, name) or (
            quality.plain_folder(tmp_path, name) if name in quality.PLAIN_ROWS else tmp_path / name) / "test_predictions.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(predictions_text(sentences, _predicted(sentences, keep, seed)), encoding="utf-8")
    result = quality.report(tmp_path, {})
    rows = {row["name"]: row for row in result["rows"]}
    assert list(rows)[:2] == ["plain", "plain-selected"]  # the plain rows first, the existing ones unchanged

    def paired(a, b):
        gold, tags_a = read_predictions(quality.predictions_of(tmp_path, a))
        _, tags_b = read_predictions(quality.predictions_of(tmp_path, b))
        found = compare(gold, tags_a, tags_b, samples=1000, seed=12345, names=(a, b))
        return found["delta"], found["paired_bootstrap"]["p_value"]

    selected = rows["kayan-selected"]
    assert selected["equal_settings_plain"] == "plain-selected"
    assert (selected["delta_vs_equal_settings"], selected["p_vs_equal_settings"]) == paired("kayan-selected", "plain-selected")
    assert (selected["delta_vs_plain"], selected["p_vs_plain"]) == paired("kayan-selected", "plain")  # as before
    assert selected["delta_vs_equal_settings"] < selected["delta_vs_plain"]
    assert rows["kayan-plain-settings"]["equal_settings_plain"] == "plain"
    assert rows["plain-selected"]["delta_vs_plain"] == paired("plain-selected", "plain")[0]
    assert rows["plain-selected"]["plain_settings"]["learning_rate"] == 1e-4
    assert "equal_settings_plain" not in rows["kayan-context"]  # it did not run, and has no equal plain row
    table = quality.markdown(result)
    assert "| plain at equal settings | Δ | p |" in table
    line = next(x for x in table.splitlines() if x.startswith("| kayan-selected |"))
    assert f"| plain-selected | {100 * selected['delta_vs_equal_settings']:+.2f} |" in line


@pytest.mark.parametrize("rows, expected", [
    ("plain-selected,kayan-selected", ["plain", "plain-selected", "kayan-selected"]),
    ("kayan-selected", ["plain", "kayan-selected"]),  # as before: plain always, plain-selected only when named
])
def test_which_rows_run(quality, tmp_path, monkeypatch, rows, expected):
    started = []

    def fake_run(name, command, work, deadline):
        started.append((name, command))
        return {"status": 1, "seconds": 0.0}

    monkeypatch.setattr(quality, "_run", fake_run)
    quality.main(["--rows", rows, "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out" / "q"),
                  "--encoder", "ENC"])
    assert [name for name, _ in started] == expected
    commands = dict(started)
    assert commands["plain"][2:4] == ["--plain", "plain"]
    if "plain-selected" in commands:
        assert commands["plain-selected"][2:4] == ["--plain", "plain-selected"]
    assert (tmp_path / "out" / "q.md").is_file() and (tmp_path / "out" / "q.json").is_file()
