"""One tiny trained run and its packages, built once per test session and shared by the
packaging, predict and export tests.

* ``run``: a 1-epoch tiny run on the sample corpus, trained with the normalization steps
  remove_diacritics and remove_tatweel (so packages carry normalization).
* ``package``: ``kayan package run``; a 1-epoch model tags (almost) everything ``O``.
* ``noisy``: the package with a random classifier head (fixed seed), so it finds many entities of
  every type, of one and several words: what offset and property tests need.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from kayan.config import load_config
from tests.conftest import FAST as TRAINING_FAST

REPO = Path(__file__).resolve().parent.parent
FAST = [*TRAINING_FAST, "training.epochs=1", "data.normalization=[remove_diacritics,remove_tatweel]"]
_BUILT: dict[str, Path] = {}


def _noisy(package: Path, target: Path) -> Path:
    """A copy of ``package`` with a random (seeded) classifier head centred on the sample's hidden
    states: it tags about a fifth of the words ``O`` and spreads the rest over every B-/I- tag."""
    import torch
    import transformers

    shutil.copytree(package, target)
    model = transformers.AutoModelForTokenClassification.from_pretrained(str(target))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(target))
    inputs = tokenizer([" ".join(w) for w in sample_words()[:20]], return_tensors="pt", padding=True, truncation=True)
    with torch.no_grad():
        hidden = model.base_model(**inputs).last_hidden_state[inputs["attention_mask"].bool()]
        weight = torch.randn(model.classifier.weight.shape, generator=torch.Generator().manual_seed(7)) / hidden.std(0)
        bias = -(weight @ hidden.mean(0))
        bias[0] += 1.0
        model.classifier.weight.copy_(weight)
        model.classifier.bias.copy_(bias)
    model.save_pretrained(str(target))
    _record_weights(target)
    return target


def _record_weights(folder: Path) -> None:
    """Record the changed weights' digest in kayan.json, as `kayan package` would have (through its writer)."""
    import dataclasses

    from kayan.files import sha256_of
    from kayan.model import settings

    stored = settings.read(folder)
    digest = sha256_of(folder / "model.safetensors")
    settings.write(folder, dataclasses.replace(stored, weights_sha256=digest,
                                               files={**(stored.files or {}), "model.safetensors": digest}))


def build(tmp_path_factory) -> dict[str, Path]:
    """Train and package once per session; returns ``run``, ``package`` and ``noisy`` folders."""
    if not _BUILT:
        from kayan.inference.packaging import package
        from kayan.training import train

        base = tmp_path_factory.mktemp("tiny")
        config = load_config(REPO / "configs" / "quickstart.yaml", [*FAST, f"output.dir={base / 'train'}"])
        run = Path(train(config)["run_dir"])
        built = package(run, base / "models" / "tiny")
        _BUILT.update(run=run, package=built, noisy=_noisy(built, base / "models" / "noisy"))
    return dict(_BUILT)


def build_seed_run(tmp_path_factory, seed: int) -> Path:
    """A run trained as ``run`` is, with another seed (once per session): a second member for ensembles."""
    key = f"seed-{seed}"
    if key not in _BUILT:
        from kayan.training import train

        base = tmp_path_factory.mktemp(key)
        config = load_config(REPO / "configs" / "quickstart.yaml", [*FAST, f"training.seed={seed}", f"output.dir={base}"])
        _BUILT[key] = Path(train(config)["run_dir"])
    return _BUILT[key]


def sample_words() -> list[list[str]]:
    """The words of the sample corpus's test sentences."""
    from kayan.data import corpora

    return [list(s.words) for s in corpora.load_split("sample:test").sentences]


if __name__ == "__main__":  # pragma: no cover - build the packages into a folder by hand
    class _Factory:
        def mktemp(self, name):
            path = Path(sys.argv[1]) / name
            path.mkdir(parents=True, exist_ok=True)
            return path

    print(build(_Factory()))
