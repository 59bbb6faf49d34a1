"""kayan export --onnx: ONNX and int8 files in the package, a parity check, and the ONNX backend."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime", exc_type=ImportError, reason="onnxruntime is not installed: pip install 'kayan[onnx]' to test the ONNX export")
pytest.importorskip("onnx", exc_type=ImportError, reason="onnx is not installed: pip install 'kayan[onnx]' to test the ONNX export")

import kayan  # noqa: E402
from kayan.cli import main  # noqa: E402
from kayan.errors import KayanError  # noqa: E402
from kayan.export import OnnxBackend, export_onnx  # noqa: E402
from tests.tiny_package import build, sample_words  # noqa: E402

TEXT = "زار الرئيسُ محمد بن سلمان مدينة بغـداد أمس، وقال إن القاهرة والرياض شريكتان. ثم عاد إلى جدة."


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    return build(tmp_path_factory)


@pytest.fixture(scope="session")
def exported(built, tmp_path_factory):
    """The noisy package, exported to fp32 and int8 ONNX once."""
    folder = tmp_path_factory.mktemp("export") / "noisy"
    shutil.copytree(built["noisy"], folder)
    report = export_onnx(folder, quantize="int8")
    return folder, report


def test_export_writes_onnx_files_and_passes_parity(exported):
    folder, report = exported
    assert (folder / "onnx" / "model.onnx").is_file() and (folder / "onnx" / "model.int8.onnx").is_file()
    assert report["passed"] and report["data"] == "sample:test" and report["words"] == 693
    assert report["onnx"]["max_abs_logit_diff"] < 1e-4
    assert report["onnx"]["f1"] == report["torch"]["f1"] and report["onnx"]["tag_agreement"] == 1.0
    assert report["torch"]["f1"] > 0  # the noisy head finds some gold entities, so F1 is a real check
    assert 0 <= report["onnx-int8"]["f1"] <= 1 and report["onnx-int8"]["max_abs_logit_diff"] >= 0
    meta = json.loads((folder / "kayan.json").read_text(encoding="utf-8"))
    assert meta["onnx"] == report == json.loads((folder / "onnx" / "parity.json").read_text())
    assert meta["onnx"]["files"] == {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model.int8.onnx"}


def test_onnx_backend_matches_torch_on_padded_batches(exported):
    import torch
    import transformers

    folder, _ = exported
    model = transformers.AutoModelForTokenClassification.from_pretrained(str(folder)).eval()
    backend = OnnxBackend(folder / "onnx" / "model.onnx")
    rng = np.random.default_rng(0)
    for batch, width in ((1, 3), (5, 64), (3, 17)):
        ids = rng.integers(5, 500, size=(batch, width))
        mask = np.ones_like(ids)
        mask[0, width // 2 :] = 0
        with torch.no_grad():
            expected = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
        got = backend.logits(ids, mask)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.abs(got - expected)[mask.astype(bool)].max() < 1e-4


def test_predictor_uses_onnx_when_present(exported):
    folder, _ = exported
    auto, torch_, int8 = (kayan.load(folder, backend=b) for b in ("auto", "torch", "onnx-int8"))
    assert (auto.backend_name, torch_.backend_name, int8.backend_name) == ("onnx", "torch", "onnx-int8")
    a, b = auto.predict(TEXT), torch_.predict(TEXT)
    assert [(e.text, e.type, e.start, e.end) for e in a] == [(e.text, e.type, e.start, e.end) for e in b]
    assert [e.score for e in a] == pytest.approx([e.score for e in b], abs=1e-4)
    assert all(TEXT[e.start : e.end] == e.text for e in int8.predict(TEXT))
    words = sample_words()[:5]
    spans = lambda p: [[(e.start, e.end, e.type) for e in s] for s in p.predict_words_batch(words)]  # noqa: E731
    assert spans(auto) == spans(torch_)


def test_onnx_backend_without_export_names_the_command(built):
    with pytest.raises(KayanError, match=r"onnx/model.onnx does not exist; run `kayan export .* --onnx` first"):
        kayan.load(built["package"], backend="onnx")
    with pytest.raises(KayanError, match="--onnx --quantize int8"):
        kayan.load(built["package"], backend="onnx-int8")
    with pytest.raises(KayanError, match="backend 'tpu' is unknown"):
        kayan.load(built["package"], backend="tpu")


def test_failed_parity_writes_nothing(built, tmp_path, monkeypatch):
    import kayan.export

    folder = tmp_path / "pkg"
    shutil.copytree(built["package"], folder)
    monkeypatch.setattr(kayan.export, "passed", lambda report, tolerance: False)
    with pytest.raises(KayanError, match="does not match PyTorch .* nothing written"):
        export_onnx(folder, limit=3)
    assert not (folder / "onnx").exists() and "onnx" not in json.loads((folder / "kayan.json").read_text())


def test_cli_export(built, tmp_path, capsys):
    folder = tmp_path / "pkg"
    shutil.copytree(built["package"], folder)
    assert main(["export", str(folder), "--onnx", "--data", "sample:dev", "--limit", "10"]) == 0
    out = capsys.readouterr().out
    assert "parity on sample:dev (10 sentences" in out and "onnx/model.onnx" in out
    assert not (folder / "onnx" / "model.int8.onnx").exists()
    assert main(["export", str(folder)]) == 2
    assert "--onnx" in capsys.readouterr().err
    assert main(["export", str(folder), "--onnx", "--data", "nope:test"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_corrupt_onnx_file_is_one_line(built, tmp_path):
    folder = tmp_path / "pkg"
    shutil.copytree(built["package"], folder)
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(KayanError, match="cannot load the ONNX model"):
        kayan.load(folder, backend="onnx")
