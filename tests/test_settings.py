"""kayan.json's one schema (kayan.model.settings): round trip, version-1 files upgraded, every damaged key
one line naming the file, the key and the fix, a newer version refused, and --resume's fixed keys
derived from the same declaration (issue 19, part 5)."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from kayan.config import Config
from kayan.errors import KayanError
from kayan.model import settings
from kayan.model.settings import ModelSettings, TrainingData

DIGEST = "f4296ecd2b65d0a3a783d0324bb1ff17951e78eff0407895ec4a3e5e406ad350"
# A package's kayan.json as Kayan wrote it before schema_version (version 1).
VERSION_1 = {
    "kayan_version": "0.1.0", "labels": ["O", "B-LOC", "I-LOC", "B-PERS", "I-PERS"], "scheme": "IOB2",
    "window": 64, "stride": 16, "normalization": ["remove_diacritics", "remove_tatweel"], "decoding": "first",
    "label_all_subwords": False, "context": 0, "base_model": "tiny",
    "training_data": {"train": ["sample:train"], "dev": ["sample:dev"], "test": ["sample:test"],
                      "files": {"data/sample/train.txt": DIGEST}},
    "versions": {"python": "3.11.7", "torch": "2.13.0+cpu", "transformers": "5.24.0"},
    "weights_sha256": DIGEST, "label_map": {"PER": "PERS"},
    "metrics": {"test": {"micro": {"f1": 0.5}, "words": 693}, "dev": {"best_f1": 0.6}},
    "recipe": {"seed": 12345, "epochs": 1}, "package": {"kayan_version": "0.1.0", "format": 1},
    "files": {"model.safetensors": DIGEST},
}
ENSEMBLE = {
    "schema_version": 2, "labels": ["O", "B-LOC", "I-LOC"], "scheme": "IOB2", "decoding": "viterbi",
    "ensemble": {"combine": "mean of the members' word probabilities, then decoding", "members": [
        {"path": "members/0", "source": "train/a", "seed": 7, "dev_f1": 0.6, "test_f1": None}]},
    "metrics": {"test": None, "dev": None}, "package": {"kayan_version": "0.1.0", "format": 1},
}


def test_a_written_file_reads_back_the_same(tmp_path):
    written = settings.from_dict(VERSION_1)
    path = settings.write(tmp_path, written)
    assert path == tmp_path / "kayan.json" and settings.read(tmp_path) == written
    assert [p.name for p in tmp_path.iterdir()] == ["kayan.json"]  # no temporary file left beside it


def test_version_2_keeps_version_1s_keys_and_values_for_older_readers(tmp_path):
    settings.write(tmp_path, settings.from_dict(VERSION_1))
    assert json.loads((tmp_path / "kayan.json").read_text(encoding="utf-8")) == {"schema_version": 2, **VERSION_1}


def test_an_ensemble_file_round_trips(tmp_path):
    ensemble = settings.from_dict(ENSEMBLE)
    assert ensemble.window is None and ensemble.ensemble.members[0].path == "members/0"
    settings.write(tmp_path, ensemble)
    assert json.loads((tmp_path / "kayan.json").read_text(encoding="utf-8")) == ENSEMBLE


def test_a_version_1_file_is_upgraded_and_its_recipe_label_map_moves_to_the_top(tmp_path):
    older = {k: v for k, v in VERSION_1.items() if k != "label_map"}
    older["recipe"] = {**older["recipe"], "label_map": {"PER": "PERS"}}  # packages older than label_map
    (tmp_path / "kayan.json").write_text(json.dumps(older), encoding="utf-8")
    upgraded = settings.read(tmp_path)
    assert upgraded.schema_version == settings.SCHEMA_VERSION and upgraded.label_map == {"PER": "PERS"}
    assert upgraded.recipe == {"seed": 12345, "epochs": 1}
    assert upgraded == settings.from_dict(VERSION_1)


def test_a_folder_without_kayan_json_has_no_settings(tmp_path):
    assert settings.read(tmp_path) is None


def _set(key: str, value):
    """VERSION_1 with the dotted ``key`` set to ``value``."""
    data = copy.deepcopy(VERSION_1)
    *parents, last = key.split(".")
    target = data
    for part in parents:
        target = target[part]
    target[last] = value
    return data


@pytest.mark.parametrize("key, value, named", [
    ("window", "big", "window is 'big', not a whole number of subwords"),
    ("window", 64.0, "window is 64.0, not a whole number"),
    ("window", True, "window is True, not a whole number"),
    ("window", 2, "window 2 leaves no room for words"),
    ("stride", -1, "stride -1 must be at least 0"),
    ("stride", 62, "stride 62 must be at least 0 and less than the window minus 2 (62)"),
    ("context", -1, "context -1 must be at least 0"),
    ("context", "24", "context is '24', not a whole number"),
    ("labels", 5, "labels is 5, not a list of tag names"),
    ("labels", ["O", 1], "labels is ['O', 1], not a list of tag names"),
    ("scheme", "BIOES", "scheme 'BIOES' is not IOB2"),
    ("normalization", 5, "normalization is 5, not a list of step names"),
    ("normalization", ["shout"], "unknown normalization step 'shout'"),
    ("decoding", "beam", "decoding 'beam' (from"),
    ("decoding", [1], "decoding [1] (from"),
    ("label_all_subwords", "yes", "label_all_subwords is 'yes', not true or false"),
    ("label_map", ["PERS"], "label_map is ['PERS'], not a mapping of entity type names"),
    ("label_map", {"PERS": 1}, "label_map is {'PERS': 1}, not a mapping"),
    ("base_model", 3, "base_model is 3, not a model name"),
    ("training_data", [], "training_data is [], not a JSON object"),
    ("training_data.train", "sample:train", "training_data.train is 'sample:train', not a list of data refs"),
    ("training_data.files", {"a.txt": 1}, "training_data.files is {'a.txt': 1}, not a mapping"),
    ("training_data.valid", [], "unknown key training_data.valid"),
    ("versions", {"torch": 2}, "versions is {'torch': 2}, not a mapping"),
    ("weights_sha256", "abc", "weights_sha256 is 'abc', not a sha256 digest"),
    ("files", ["model.safetensors"], "files is ['model.safetensors'], not a mapping"),
    ("metrics", [0.5], "metrics is [0.5], not a JSON object"),
    ("recipe", "fast", "recipe is 'fast', not a JSON object"),
    ("onnx", 1, "onnx is 1, not a JSON object"),
    ("ensemble", {"members": []}, "ensemble.members is [], not a list of members"),
    ("ensemble", {"members": [{"source": "train/a"}]}, "ensemble.members[0].path is None, not a folder"),
    ("ensemble", {"members": [{"path": "members/0", "seed": "7"}]}, "ensemble.members[0].seed is '7', not a whole number"),
    ("windw", 64, "unknown key windw"),
    ("schema_version", "2", "schema_version is '2', not a version number"),
    ("schema_version", 0, "schema_version is 0, not a version number"),
])
def test_each_damaged_key_is_one_line_naming_the_file_the_key_and_the_fix(tmp_path, key, value, named):
    (tmp_path / "kayan.json").write_text(json.dumps(_set(key, value)), encoding="utf-8")
    with pytest.raises(KayanError) as error:
        settings.read(tmp_path)
    message = str(error.value)
    assert "\n" not in message and named in message and str(tmp_path / "kayan.json") in message, message
    assert message.endswith("re-package the model with `kayan package`"), message


def test_a_newer_schema_version_is_refused_with_the_fix(tmp_path):
    (tmp_path / "kayan.json").write_text(json.dumps({**VERSION_1, "schema_version": 3}), encoding="utf-8")
    with pytest.raises(KayanError) as error:
        settings.read(tmp_path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'kayan.json'}: schema_version 3 is newer")
    assert "upgrade Kayan" in message, message


def test_a_file_that_is_not_a_json_object_is_one_line(tmp_path):
    (tmp_path / "kayan.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(KayanError, match=r"kayan.json: expected a JSON object; re-package the model"):
        settings.read(tmp_path)


def _config_leaves(data: dict, prefix: str = "") -> set[str]:
    leaves = set()
    for name, value in data.items():
        key = f"{prefix}{name}"
        leaves |= _config_leaves(value, f"{key}.") if isinstance(value, dict) and value else {key}
    return leaves


def test_the_keys_fixed_on_resume_are_config_keys_and_cover_model_and_data():
    from kayan.training.transaction import FIXED_ON_RESUME

    leaves = _config_leaves(Config().to_dict())
    assert FIXED_ON_RESUME == settings.fixed_on_resume()
    for key in FIXED_ON_RESUME:
        assert key in leaves or any(leaf.startswith(key + ".") for leaf in leaves), key
    assert {"training.context", "data.dev_fraction", "data.dev_split", "training.window"} <= set(FIXED_ON_RESUME)

    def fixed(leaf):
        return any(leaf == key or leaf.startswith(key + ".") for key in FIXED_ON_RESUME)
    # every model and data key shapes what the checkpoints learn, except where the corpora live and their check
    assert {leaf for leaf in leaves if leaf.split(".")[0] in ("model", "data") and not fixed(leaf)} == {"data.dir", "data.verify"}


def test_each_field_a_config_key_fills_takes_its_value():
    config = Config()
    config.training.window, config.training.stride, config.training.context = 128, 32, 24
    config.data.label_map = {"PER": "PERS"}
    built = settings.from_config(config.to_dict(), labels=["O"], training_data={"train": ["sample:train"]})
    assert (built.window, built.context, built.label_map, built.base_model) == (128, 24, {"PER": "PERS"}, "tiny")
    assert built.training_data == TrainingData(train=("sample:train",))
    declared = {f.name: f.metadata["config"] for f in dataclasses.fields(ModelSettings) if f.metadata["config"]}
    assert declared["window"] == ("training.window",) and declared["training_data"] == ("data.train", "data.dev", "data.test")
