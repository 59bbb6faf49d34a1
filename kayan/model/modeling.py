"""Models: any encoder AutoModelForTokenClassification accepts, from the hub or a local folder, or ``tiny``.

The label map comes from the training data and lives in the model's config (``id2label``,
``label2id``) and nowhere else. ``tiny`` trains a WordPiece tokenizer on the training words and
builds a small BertConfig, so everything downstream runs the same code path as a real encoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import transformers

from kayan.checks import check_window
from kayan.config import ModelSection
from kayan.errors import KayanError
from kayan.files import sha256_of
from kayan.model.tiny import tiny_bert_config, train_wordpiece_tokenizer

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TINY_POSITIONS = 512  # like BERT, so windows behave as with a real encoder
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "vocab.json")


def check_local_folder(folder: Path) -> None:
    """Fail with one line naming what a local model folder lacks."""
    if not (folder / "config.json").is_file():
        raise KayanError(f"model folder {folder} has no config.json; point model.name at a saved Hugging Face model folder")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise KayanError(
            f"model folder {folder} has no weights ({' or '.join(WEIGHT_FILES[::2])}); "
            "copy the weights there or save the model with save_pretrained"
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise KayanError(f"model folder {folder} has no tokenizer files (tokenizer.json, vocab.txt, ...); save the tokenizer there too")


def position_limit(model_config: transformers.PretrainedConfig, tokenizer) -> int:
    """The longest input the model takes, in subwords (special tokens included)."""
    limit = getattr(model_config, "max_position_embeddings", None) or 512
    if getattr(model_config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # these models offset positions by padding_idx + 1
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if tokenizer_limit and tokenizer_limit < 1_000_000:
        limit = min(limit, int(tokenizer_limit))
    return limit


def _pretrained(section: ModelSection, labels: Sequence[str]):
    """Load tokenizer and model from a local folder or the hub, with a fresh head for ``labels``."""
    folder = Path(section.name).expanduser()
    local = folder.is_dir() or section.name.startswith((".", "/", "~"))
    if local:
        if not folder.is_dir():
            raise KayanError(f"model folder {folder} does not exist; fix model.name")
        check_local_folder(folder)
    source = str(folder) if local else section.name
    id2label = dict(enumerate(labels))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, revision=section.revision)
        model = transformers.AutoModelForTokenClassification.from_pretrained(
            source, revision=section.revision, num_labels=len(labels), id2label=id2label,
            label2id={tag: i for i, tag in id2label.items()}, ignore_mismatched_sizes=True,
        )
    except OSError as error:
        if local:
            raise KayanError(f"model folder {folder}: cannot load it ({str(error).splitlines()[0]}); re-save it with save_pretrained") from None
        raise KayanError(
            f"model {section.name!r} could not be loaded from the Hugging Face Hub (offline, or no such model); "
            f"download it where the hub is reachable (huggingface-cli download {section.name} --local-dir DIR) "
            "and set model.name: DIR"
        ) from None
    if not tokenizer.is_fast:
        raise KayanError(f"model {section.name}: Kayan needs a fast (tokenizers-backed) tokenizer to align words and subwords")
    return model, tokenizer


def _tiny(section: ModelSection, labels: Sequence[str], words: Iterable[str]):
    """Train the tiny tokenizer on the training words and build a fresh small BERT."""
    tokenizer = train_wordpiece_tokenizer(words, vocab_size=section.tiny.vocab_size, model_max_length=TINY_POSITIONS)
    config = tiny_bert_config(
        vocab_size=len(tokenizer), id2label=dict(enumerate(labels)), hidden_size=section.tiny.hidden_size,
        num_hidden_layers=section.tiny.num_hidden_layers, num_attention_heads=section.tiny.num_attention_heads,
        intermediate_size=section.tiny.intermediate_size, max_position_embeddings=TINY_POSITIONS,
    )
    return transformers.AutoModelForTokenClassification.from_config(config), tokenizer


def build_model(section: ModelSection, *, labels: Sequence[str], train_words: Iterable[str], window: int):
    """The model and tokenizer a run trains, with ``labels`` as its label map.

    Args:
        section: the config's ``model`` section.
        labels: the label list (index = label id).
        train_words: the training words (used only by ``tiny`` to learn its vocabulary).
        window: ``training.window``, checked against the model's position limit.
    """
    if section.name == "tiny":
        model, tokenizer = _tiny(section, labels, train_words)
    else:
        model, tokenizer = _pretrained(section, labels)
    check_window(window, limit=position_limit(model.config, tokenizer), key="training.", where=f"model {section.name}")
    return model, tokenizer


def _check_json(path: Path) -> dict:
    """Parse a JSON file of a model folder, naming file and line when it is broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        where = f"{path}:{error.lineno}" if isinstance(error, json.JSONDecodeError) else str(path)
        raise KayanError(f"{where}: not valid JSON ({error.args[0][:80]}); the file is corrupt — re-save or re-package the model") from None


def check_weights(folder: Path, expected_sha256: str | None = None) -> None:
    """Fail with one line when the safetensors weights are truncated, corrupt, or not the ones recorded.

    Args:
        folder: the model folder.
        expected_sha256: the digest kayan.json recorded for model.safetensors, when it did.
    """
    path = folder / "model.safetensors"
    if not path.is_file():
        return
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as error:  # safetensors raises its own SafetensorError for any damage
        raise KayanError(f"{path}: corrupt weights ({str(error)[:100]}); re-package or re-train the model") from None
    if expected_sha256:
        found = sha256_of(path)
        if found != expected_sha256:
            raise KayanError(f"{path}: sha256 {found} differs from the {expected_sha256} recorded in kayan.json; "
                             "the weights were changed or damaged — re-package the model")


def load_trained(folder: str | Path, *, weights_sha256: str | None = None):
    """Load a model folder Kayan (or anyone) saved: tokenizer and model, its files checked first.

    Args:
        folder: the model folder.
        weights_sha256: the weights' digest recorded in kayan.json, verified when given.
    """
    folder = Path(folder)
    check_local_folder(folder)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            _check_json(folder / name)
    check_weights(folder, weights_sha256)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        model = transformers.AutoModelForTokenClassification.from_pretrained(str(folder))
    except (OSError, ValueError, RuntimeError) as error:
        cause = str(error).splitlines()[0][:200]
        if "mismatched_sizes" in cause or "size mismatch" in cause:
            cause = "the weights' shapes differ from those config.json describes: was config.json changed?"
        raise KayanError(f"model folder {folder}: cannot load it ({cause}); the files may be corrupt — re-save or re-package the model") from None
    return model, tokenizer
