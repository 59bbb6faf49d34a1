"""kayan package: a standard Hugging Face folder with kayan.json and a model card, written atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kayan.cli import main
from kayan.errors import KayanError
from kayan.files import sha256_of
from kayan.inference.packaging import package


def test_package_is_a_hugging_face_folder_with_kayan_json(built):
    folder = built["package"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [".kayan-output", "README.md", "config.json", "kayan.json", "model.safetensors", "tokenizer.json",
                     "tokenizer_config.json"]
    config = json.loads((folder / "config.json").read_text())
    meta = json.loads((folder / "kayan.json").read_text(encoding="utf-8"))
    assert [config["id2label"][str(i)] for i in range(len(config["id2label"]))] == meta["labels"]
    assert config["label2id"] == {tag: i for i, tag in enumerate(meta["labels"])}
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == meta["window"] == 64
    assert (meta["scheme"], meta["stride"], meta["normalization"]) == ("IOB2", 16, ["remove_diacritics", "remove_tatweel"])
    assert meta["base_model"] == "tiny" and meta["decoding"] == "first"
    assert meta["training_data"]["test"] == ["sample:test"]
    assert all(len(digest) == 64 for digest in meta["training_data"]["files"].values())
    assert {"python", "torch", "transformers"} <= set(meta["versions"])
    assert meta["files"]["model.safetensors"] == sha256_of(folder / "model.safetensors")


def test_kayan_json_carries_test_scores_with_the_bootstrap_interval(built):
    meta = json.loads((built["package"] / "kayan.json").read_text(encoding="utf-8"))
    report = json.loads((built["run"] / "test_metrics.json").read_text(encoding="utf-8"))
    test = meta["metrics"]["test"]
    assert test["micro"] == report["default"]["micro"] and test["types"] == report["default"]["types"]
    assert test["bootstrap"]["low"] <= test["micro"]["f1"] <= test["bootstrap"]["high"]
    assert test["words"] == 693 and meta["metrics"]["dev"]["best_f1"] is not None
    assert meta["recipe"]["seed"] == 12345 and meta["recipe"]["epochs"] == 1


def test_model_card_has_use_data_recipe_scores_and_limits(built):
    card = (built["package"] / "README.md").read_text(encoding="utf-8")
    for heading in ("## Intended use", "## Data", "## Recipe", "## Test scores", "## Known limits"):
        assert heading in card
    for kind in ("LOC", "MISC", "ORG", "PERS"):
        assert f"| {kind} |" in card
    assert "95% bootstrap interval" in card and "pipeline_tag: token-classification" in card
    assert "remove_diacritics, remove_tatweel" in card and "truncates its input at 64 subwords" in card


def test_plain_transformers_pipeline_loads_the_package(built):
    import transformers

    labels = json.loads((built["noisy"] / "kayan.json").read_text())["labels"]
    ner = transformers.pipeline("token-classification", model=str(built["noisy"]), device="cpu")
    found = ner("زار الرئيس محمد بن سلمان مدينة بغداد أمس وقال إن القاهرة جميلة")
    assert found and {item["entity"] for item in found} <= set(labels)
    grouped = transformers.pipeline("token-classification", model=str(built["noisy"]), aggregation_strategy="first")
    assert all(item["entity_group"] in {tag[2:] for tag in labels} for item in grouped("زار الرئيس مدينة بغداد"))
    assert ner.tokenizer.model_max_length == 64


def test_model_folder_of_a_run_packages_the_same(built, tmp_path):
    out = package(built["run"] / "model", tmp_path / "again")
    first = json.loads((built["package"] / "kayan.json").read_text())
    again = json.loads((out / "kayan.json").read_text())
    assert again == first


def test_interrupted_package_leaves_no_folder(built, tmp_path, monkeypatch):
    import kayan.inference.packaging

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(kayan.inference.packaging, "model_card", broken)
    with pytest.raises(KeyboardInterrupt):
        package(built["run"], tmp_path / "models" / "cut")
    assert list((tmp_path / "models").iterdir()) == []


def test_existing_package_needs_overwrite_and_anything_else_is_refused(built, tmp_path):
    out = tmp_path / "pkg"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(KayanError, match=r"pkg is not a package of `kayan package` \(no .kayan-output marker"):
        package(built["run"], out, overwrite=True)  # not Kayan's: whatever the flags (issue 21)
    (out / "old.txt").unlink()
    package(built["run"], out)
    (out / "old.txt").write_text("a file added to the package")
    with pytest.raises(KayanError, match=r"pkg already exists and holds a package of `kayan package`; pass --overwrite"):
        package(built["run"], out)
    package(built["run"], out, overwrite=True)
    assert not (out / "old.txt").exists() and (out / "kayan.json").is_file()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d, "neither a run folder"),
        (lambda d: d / "missing", "no such run or model folder"),
    ],
)
def test_bad_sources(tmp_path, make, message):
    with pytest.raises(KayanError, match=message):
        package(make(tmp_path), tmp_path / "out")


def test_folder_without_kayan_json_is_refused(built, tmp_path):
    source = tmp_path / "plain"
    shutil.copytree(built["run"] / "model", source)
    (source / "kayan.json").unlink()
    with pytest.raises(KayanError, match=r"plain has no kayan.json; package a model written by `kayan train`"):
        package(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_package(built, tmp_path, capsys):
    assert main(["package", str(built["run"]), str(tmp_path / "cli")]) == 0
    assert "package written" in capsys.readouterr().out and (tmp_path / "cli" / "README.md").is_file()
    assert main(["package", str(built["run"]), str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err


def test_corrupt_weights_fail_with_one_line(built, tmp_path, capsys):
    source = tmp_path / "run"
    shutil.copytree(built["run"] / "model", source / "model")
    (source / "model" / "model.safetensors").write_bytes(b"\x00" * 100)
    assert main(["package", str(source), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt" in err
    assert not (tmp_path / "out").exists()


def test_package_cannot_go_inside_its_source(built):
    with pytest.raises(KayanError, match="cannot go inside the model folder"):
        package(built["run"], Path(built["run"]) / "model" / "pkg")
