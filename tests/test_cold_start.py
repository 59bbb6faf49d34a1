"""Same result on any machine: the suite's private home, caches keyed on the code that fills them, and
no command writing outside the folders the user named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kayan.data import corpora
from tests.conftest import FAST, ISOLATED_ENV, REPO


def test_the_suite_runs_in_a_private_cold_home():
    """conftest points every cache and config folder at this session's own temporary folder."""
    for name, folder in ISOLATED_ENV.items():
        assert os.environ[name] == str(folder), name
    assert Path.home() == ISOLATED_ENV["HOME"] and Path("~").expanduser() == ISOLATED_ENV["HOME"]


def _windows(cache: Path, kayan_root: Path) -> dict:
    """Build the windows of sample:dev with the ``kayan`` package found at ``kayan_root``, in a fresh process."""
    code = f"""
import json, sys
from kayan.data import corpora
from kayan.model.hffeatures import window_dataset
from kayan.model.tiny import train_wordpiece_tokenizer
sentences = corpora.load_split("sample:dev").sentences
tokenizer = train_wordpiece_tokenizer([w for s in sentences for w in s.words], vocab_size=300)
windows = window_dataset(sentences, tokenizer, window=24, stride=8, cache_dir={str(cache)!r})
import kayan
print(json.dumps({{"where": kayan.__file__, "how": windows.info.description.split(":")[0], "rows": len(windows)}}))
"""
    env = {**os.environ, "PYTHONPATH": str(kayan_root)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=kayan_root, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_edit_to_the_window_code_builds_the_windows_anew(tmp_path):
    """The cache key covers the code: a changed ``features.encode`` never gets the old windows back."""
    cache = tmp_path / "cache"
    first = _windows(cache, REPO)
    assert first["how"] == "built" and first["where"].startswith(str(REPO))
    assert _windows(cache, REPO) == {**first, "how": "cached"}  # the warm path
    edited = tmp_path / "edited"
    shutil.copytree(REPO / "kayan", edited / "kayan", ignore=shutil.ignore_patterns("__pycache__"))
    features = edited / "kayan" / "model" / "features.py"
    # A behaviour change: each batch keeps only its first window.
    features.write_text(features.read_text(encoding="utf-8") + "\n_encode = encode\n\n\ndef encode(*args, **kwargs):\n"
                        "    return _encode(*args, **kwargs)[:1]\n", encoding="utf-8")
    changed = _windows(cache, edited)
    assert changed["where"].startswith(str(edited))
    assert changed["how"] == "built" and changed["rows"] == 1 != first["rows"]
    assert len(list(cache.glob("windows-*.arrow"))) == 2


def test_a_training_and_an_hf_read_leave_an_empty_home_empty(tmp_path):
    """With the caches where the user says (KAYAN_CACHE_DIR, HF_HOME ...), nothing lands in ``$HOME``."""
    home = tmp_path / "home"
    home.mkdir()
    export = tmp_path / "export"
    corpora_export = [sys.executable, "-m", "kayan.cli", "data", "export", "sample", "--to", str(export)]
    env = {**os.environ, "HOME": str(home)}
    assert subprocess.run(corpora_export, capture_output=True, text=True, env=env, cwd=tmp_path).returncode == 0
    overrides = [arg for item in [*FAST, "training.epochs=1", f"output.dir={tmp_path / 'runs'}",
                                  f"data.train=['hf:{export}:train']"] for arg in ("--set", item)]
    train = [sys.executable, "-m", "kayan.cli", "train", str(REPO / "configs" / "quickstart.yaml"), *overrides]
    done = subprocess.run(train, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs" / "quickstart" / "model" / "kayan.json").is_file()
    assert sorted(home.rglob("*")) == []
    assert list(Path(os.environ["KAYAN_CACHE_DIR"]).rglob("windows-*.arrow"))  # the cache went where it was told


def test_the_sample_corpus_is_package_data():
    """The default corpus ships inside the package, so a wheel install reads it (not the repository's data/)."""
    sample = Path(corpora.get("sample").folder)
    assert sample.is_relative_to(Path(corpora.__file__).parent)
    assert corpora.load_split("sample:train").sentences


def test_a_wheel_install_trains_the_quickstart_from_another_folder(tmp_path):
    """``pip install .`` (a wheel, not the checkout) and ``kayan train configs/quickstart.yaml`` elsewhere.

    The new environment sees this one's dependencies through a path file, not its site hooks, so the
    editable install of the checkout stays out of it and ``kayan`` is the wheel's.
    """
    source, wheels, venv, elsewhere = (tmp_path / name for name in ("source", "wheels", "venv", "elsewhere"))
    # What the wheel is built from, copied so that the build writes nothing into the checkout.
    shutil.copytree(REPO / "kayan", source / "kayan", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
             "--wheel-dir", str(wheels), str(source)]
    assert subprocess.run(build, capture_output=True, text=True, timeout=300).returncode == 0
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    import sysconfig

    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", *map(str, wheels.glob("kayan-*.whl"))]
    assert subprocess.run(install, capture_output=True, text=True, timeout=300).returncode == 0
    elsewhere.mkdir()
    shutil.copy(REPO / "configs" / "quickstart.yaml", elsewhere / "quickstart.yaml")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "KAYAN_DATA_DIR")}
    overrides = [arg for item in [*FAST, "training.epochs=1"] for arg in ("--set", item)]
    done = subprocess.run([str(venv / "bin" / "kayan"), "train", "quickstart.yaml", *overrides], capture_output=True,
                          text=True, env=env, cwd=elsewhere, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((elsewhere / "train" / "quickstart" / "summary.json").read_text(encoding="utf-8"))
    assert summary["test_f1"] is not None  # sample:test came from the installed package
    where = subprocess.run([str(python), "-c", "import kayan; print(kayan.__file__)"], capture_output=True, text=True,
                           env=env, cwd=elsewhere, check=True).stdout.strip()
    assert where.startswith(purelib)
