"""The trained model as files: weights, tokenizer and kayan.json (how to apply it exactly as trained)."""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path
from typing import Sequence

import torch
import transformers

from kayan import __version__, atomic
from kayan.config import Config
from kayan.data.rundata import RunData
from kayan.files import sha256_of
from kayan.model import settings
from kayan.model.settings import ModelSettings


def kayan_json(config: Config, data: RunData, labels: Sequence[str]) -> ModelSettings:
    """What kayan.json records beside the weights: enough to apply the model exactly as trained (the
    fields the run config fills come from it, :func:`kayan.model.settings.from_config`)."""
    return settings.from_config(
        config.to_dict(), kayan_version=__version__, labels=list(labels), scheme=settings.SCHEME,
        training_data={"train": data.train.refs, "dev": data.dev.refs, "test": data.test.refs if data.test else [],
                       "files": {**data.train.files, **data.dev.files, **(data.test.files if data.test else {})}},
        versions={"python": platform.python_version(), "torch": str(torch.__version__),
                  "transformers": transformers.__version__},
    )


def save_model(config: Config, data: RunData, trainer: transformers.Trainer, target: Path) -> None:
    """The trained model, its tokenizer and kayan.json, written atomically to ``target`` (a run's model folder)."""
    labels = [trainer.model.config.id2label[i] for i in range(len(trainer.model.config.id2label))]
    with atomic.folder(target) as folder:
        trainer.save_model(str(folder))
        digest = sha256_of(folder / "model.safetensors")  # checked on every load
        settings.write(folder, dataclasses.replace(kayan_json(config, data, labels), weights_sha256=digest))
