"""Find a model from a path the user gives, with the settings it was trained with.

A path may be a run folder (``train/RUN``: its selected ``model/``), a checkpoint
(``train/RUN/checkpoints/checkpoint-N``: settings from the run's ``model/kayan.json`` or
``config.yaml``), or a model folder (a packaged model, or any Hugging Face token-classification
folder: without kayan.json it gets default settings and a warning).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from kayan.errors import KayanError
from kayan.tagging import TaggingOptions

KAYAN_JSON = "kayan.json"


@dataclass
class ModelRef:
    """A model folder and what Kayan knows about it."""

    folder: Path
    options: TaggingOptions
    meta: dict = field(default_factory=dict)  # kayan.json's content ({} for a plain HF folder)
    label_map: dict[str, str] = field(default_factory=dict)  # the run config's data.label_map


def _meta_for(folder: Path) -> tuple[dict, dict[str, str]]:
    """kayan.json of the folder, else of the run a checkpoint belongs to; and the run's label map."""
    candidates = [folder / KAYAN_JSON]
    if folder.parent.name == "checkpoints":
        candidates.append(folder.parent.parent / "model" / KAYAN_JSON)
    meta = next((json.loads(p.read_text(encoding="utf-8")) for p in candidates if p.is_file()), {})
    run_config = next((p for p in (folder.parent / "config.yaml", folder.parent.parent / "config.yaml") if p.is_file()), None)
    label_map = {}
    if run_config is not None:
        import yaml

        label_map = (yaml.safe_load(run_config.read_text(encoding="utf-8")).get("data") or {}).get("label_map") or {}
    return meta, label_map


def resolve(path: str | Path, *, decoding: str | None = None, batch_size: int = 32) -> ModelRef:
    """The model folder behind ``path`` and its tagging options.

    Args:
        path: a run folder, a checkpoint folder or a model folder.
        decoding: override the stored decoding (``first`` | ``viterbi``).
        batch_size: windows per forward pass.
    """
    path = Path(path)
    if not path.exists():
        raise KayanError(f"{path}: no such model, run or checkpoint folder; check the path")
    folder = path / "model" if (path / "model" / "config.json").is_file() else path
    if not (folder / "config.json").is_file():
        raise KayanError(f"{path}: not a model folder (no config.json, no model/ inside); give a run folder, a checkpoint or a packaged model")
    meta, label_map = _meta_for(folder)
    if not meta:
        warnings.warn(f"{folder} has no kayan.json: using default settings (window 512, stride 128, no normalization)", stacklevel=2)
    options = TaggingOptions(
        window=int(meta.get("window", 512)), stride=int(meta.get("stride", 128)),
        normalization=tuple(meta.get("normalization", ())), decoding=decoding or meta.get("decoding", "first"),
        batch_size=batch_size,
    )
    return ModelRef(folder, options, meta, label_map)
