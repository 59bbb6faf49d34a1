"""One YAML file holds a whole run; it is validated before anything loads.

Sections and keys are dataclasses below (their field comments are the documentation). Unknown
keys and wrong types fail with the key's dotted path and the valid choices; ``--set a.b=value``
overrides a key (the value is read as YAML, so ``3e-5``, ``true`` and ``[a, b]`` work). The
resolved config is saved in the run folder, so any run can be repeated exactly.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from kayan.atomic import write_text
from kayan.checks import check_number, check_window, is_number
from kayan.errors import KayanError


@dataclass
class TinyModel:
    """Shape of the project's own tiny BERT (``model.name: tiny``), trained from scratch."""

    vocab_size: int = 3000  # WordPiece vocabulary trained on the training words
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 128


@dataclass
class ModelSection:
    name: str = "tiny"  # a hub id (CAMeL-Lab/bert-base-arabic-camelbert-msa), a local folder, or "tiny"
    revision: str | None = None  # hub revision (branch, tag or commit)
    tiny: TinyModel = field(default_factory=TinyModel)


@dataclass
class DataSection:
    dir: str | None = None  # folder holding the registry corpora (default: $KAYAN_DATA_DIR)
    train: list[str] = field(default_factory=lambda: ["sample:train"])  # CORPUS:SPLIT refs or file paths
    dev: list[str] = field(default_factory=list)  # empty: the corpus's dev split, or one carved from train
    test: list[str] = field(default_factory=list)  # empty: the corpus's test split when it has one
    dev_fraction: float = 0.1  # size of the dev split carved from train (when the corpus ships none)
    dev_split: str = "end"  # end: the last sentences of train | spread: the last sentences of each tenth of train
    label_map: dict[str, str] = field(default_factory=dict)  # entity type renames, e.g. {PER: PERS}
    label_maps: dict[str, str | dict[str, str] | list[str | dict[str, str]]] = field(default_factory=dict)  # per corpus, before label_map: {aqmar: {PER: PERS}}, a map the registry names ({newsfane: anercorp}), or a list of those applied in turn
    partial_labels: bool = True  # where a training corpus never tags a type the others do, its O words are taught "O or that type", not O
    normalization: list[str] = field(default_factory=list)  # kayan.data.arabic steps, applied to every word
    verify: bool = True  # check corpus files against their registry sha256
    columns: dict[str, str] = field(default_factory=dict)  # a 🤗 dataset's columns when not tokens/ner_tags: {tokens: words, tags: labels}


@dataclass
class TrainingSection:
    learning_rate: float = 5e-5
    scheduler: str = "linear"  # linear | cosine | constant | constant_with_warmup
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    epochs: float = 3.0
    batch_size: int = 32
    eval_batch_size: int = 64
    gradient_accumulation: int = 1
    window: int = 512  # subwords per window, special tokens included (<= the model's position limit)
    stride: int = 128  # subwords of context shared by consecutive windows of a long sentence
    label_all_subwords: bool = False  # label every subword (continuations of B-X become I-X)
    context: int = 0  # document context: up to N subwords of the neighbouring sentences (same file) on each side, not scored
    group_by_length: bool = True  # batch windows of similar length together to cut padding
    seed: int = 12345
    early_stopping_patience: int = 3  # evaluations without dev F1 gain before stopping (0: never stop)
    select_best: bool = True  # keep the checkpoint with the best dev F1 (false: the last one, CAMeLBERT-style)
    eval_steps: int = 0  # evaluate every N optimizer steps (0: once per epoch)
    precision: str = "fp32"  # fp32 | fp16 | bf16 | auto (bf16 where the device has it natively, e.g. AVX512-BF16 CPUs)
    decoding: str = "first"  # first | viterbi: how word tags are read from subword scores
    max_steps: int = -1  # stop after N steps (-1: run all epochs)
    logging_steps: int = 50
    save_total_limit: int = 2  # checkpoints kept on disk (the best one is always kept)
    refit: bool = False  # after dev selection, train again on train + dev for the selected epochs; model/ is that model
    embedding_rows: str = "auto"  # used: train only the word-embedding rows the training windows use (auto: when exact, i.e. weight_decay 0) | all
    recompute_above: int = 128  # batches padded past N subwords recompute activations in backward (same gradients, less memory; 0: every batch)
    layer_lr_decay: float = 1.0  # below 1: each encoder layer learns at this factor of the rate of the layer above it, the head at learning_rate (1: off)
    ema_decay: float = 0.0  # dev selection scores, and model/ keeps, an exponential moving average of the weights with this decay (e.g. 0.999; 0: off)


@dataclass
class DistillSection:
    """Knowledge distillation (``kayan distill TEACHER CONFIG``, :mod:`kayan.training.distill`): a student
    initialised from the teacher's layers (or the base model's) learns its soft word-level targets beside the gold tags."""

    teacher: str | None = None  # a package, run folder or ensemble package (members sharing one tokenizer); null: no distillation
    start: str = "teacher"  # the student's first weights: "teacher" (its first member's) or "base" (model.name's, a new classifier)
    layers: int | None = None  # the student keeps this many of the teacher's encoder layers (evenly spaced, last kept); null: all
    temperature: float = 2.0  # softens both distributions in the soft loss
    soft_weight: float = 0.5  # loss = soft_weight * T^2 * KL(teacher || student) + (1 - soft_weight) * CE(gold)
    hidden_weight: float = 0.0  # plus this times the MSE between each student layer's output and its teacher layer's; 0: off
    unlabelled: list[str] = field(default_factory=list)  # CORPUS:SPLIT refs or files whose words (tags ignored) add soft-only sentences
    max_unlabelled_sentences: int = 4000  # at most this many unlabelled sentences (a seeded sample) after de-duplication


@dataclass
class OutputSection:
    dir: str = "train"  # run folders are written under this folder
    run_name: str | None = None  # one folder name, the run folder output.dir/NAME (default: the config file's name)


@dataclass
class Config:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    output: OutputSection = field(default_factory=OutputSection)
    tune: dict = field(default_factory=dict)  # kayan tune's search space, keyed like the config (kayan.training.tuning); training ignores it
    distill: DistillSection = field(default_factory=DistillSection)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (what the run folder's config.yaml holds; ``distill`` only when it has a teacher)."""
        raw = dataclasses.asdict(self)
        if self.distill.teacher is None:  # a run without a teacher writes the config.yaml it always did
            del raw["distill"]
        return raw


CHOICES = {
    "data.dev_split": ("end", "spread"),
    "training.scheduler": ("linear", "cosine", "constant", "constant_with_warmup"),
    "training.precision": ("fp32", "fp16", "bf16", "auto"),
    "training.decoding": ("first", "viterbi"),  # kayan.model.decoding.DECODERS' names (test_decoding checks)
    "training.embedding_rows": ("auto", "used", "all"),
    "distill.start": ("teacher", "base"),
}


# The range of every numeric setting: (lowest, highest, lowest excluded); None = unbounded.
# Checked when a config is read and after every --set, so every entry point holds them.
RANGES = {
    "model.tiny.vocab_size": (10, 10_000_000, False),
    "model.tiny.hidden_size": (1, 1_000_000, False),
    "model.tiny.num_hidden_layers": (1, 1000, False),
    "model.tiny.num_attention_heads": (1, 10_000, False),
    "model.tiny.intermediate_size": (1, 10_000_000, False),
    "data.dev_fraction": (0.0, 0.99, True),
    "training.learning_rate": (0.0, 10.0, True),
    "training.warmup_ratio": (0.0, 1.0, False),
    "training.weight_decay": (0.0, 10.0, False),
    "training.epochs": (0.0, 100_000.0, True),
    "training.batch_size": (1, 1_000_000, False),
    "training.eval_batch_size": (1, 1_000_000, False),
    "training.gradient_accumulation": (1, 1_000_000, False),
    "training.window": (3, 1_000_000, False),  # the model's own limit is checked when it loads
    "training.stride": (0, None, False),  # and less than window - 2 (see _check_ranges)
    "training.context": (0, None, False),
    "training.seed": (0, 2**32 - 1, False),
    "training.early_stopping_patience": (0, None, False),
    "training.eval_steps": (0, None, False),
    "training.max_steps": (-1, None, False),  # -1, or at least 1 (see _check_ranges)
    "training.logging_steps": (1, None, False),
    "training.save_total_limit": (1, None, False),
    "training.recompute_above": (0, None, False),
    "training.ema_decay": (0.0, 1.0, False),  # and below 1 (see _check_ranges)
    "training.layer_lr_decay": (0.0, 1.0, True),
    "distill.temperature": (0.0, 100.0, True),
    "distill.soft_weight": (0.0, 1.0, False),
    "distill.hidden_weight": (0.0, 1000.0, False),
    "distill.max_unlabelled_sentences": (0, None, False),
}


def _check_ranges(config: "Config") -> None:
    """Every numeric setting within its range, and the settings that bound each other consistent."""
    defaults = Config()
    for key, (low, high, low_open) in RANGES.items():
        section, *rest = key.split(".")
        value, default = getattr(config, section), getattr(defaults, section)
        for part in rest:
            value, default = getattr(value, part), getattr(default, part)
        check_number(f"config key {key}", value, low, high, low_open=low_open, hint=f"e.g. {default}")
    t, tiny = config.training, config.model.tiny
    if t.max_steps == 0:
        raise KayanError("config key training.max_steps is 0; it must be -1 (run all epochs) or at least 1")
    if t.ema_decay == 1:  # an average that never moves from the starting weights
        raise KayanError("config key training.ema_decay is 1; it must be 0 (off) or below 1 (e.g. 0.999)")
    check_window(t.window, t.stride, key="training.")
    _check_label_map(config.data.label_map)
    for corpus, chosen in config.data.label_maps.items():
        for mapping in chosen if isinstance(chosen, list) else [chosen]:
            if isinstance(mapping, dict):
                _check_label_map(mapping, f"data.label_maps.{corpus}")
    if config.distill.layers is not None:  # null keeps all the teacher's layers
        check_number("config key distill.layers", config.distill.layers, 1, 1000, hint="e.g. 6")
    if config.model.name == "tiny" and tiny.hidden_size % tiny.num_attention_heads:
        raise KayanError(f"config key model.tiny.hidden_size is {tiny.hidden_size}; it must be a multiple of "
                         f"model.tiny.num_attention_heads ({tiny.num_attention_heads})")


def check_run_name(name: str | None) -> None:
    """Refuse an ``output.run_name`` that is not one folder name: the run folder is ``output.dir/NAME``, always
    inside ``output.dir`` and never ``output.dir`` itself (whose other runs ``--overwrite`` would delete).

    >>> check_run_name("../x")
    Traceback (most recent call last):
    kayan.errors.KayanError: config key output.run_name is '../x'; it must be one folder name (no / or \\, not . or ..), e.g. quickstart; choose the parent folder with output.dir
    """
    if name is None:
        return
    if name in ("", ".", "..") or any(sep in name for sep in ("/", "\\", "\0")):
        raise KayanError(f"config key output.run_name is {name!r}; it must be one folder name (no / or \\, not . or ..), "
                         "e.g. quickstart; choose the parent folder with output.dir")


def _check_label_map(label_map: Mapping[str, str], key: str = "data.label_map") -> None:
    """Entity types map to entity types (or O): ``{MISC: B-PERS}`` would make tags like ``B-B-PERS``.

    >>> _check_label_map({"MISC": "B-PERS"})
    Traceback (most recent call last):
    kayan.errors.KayanError: config key data.label_map maps 'MISC' to 'B-PERS', a tag; map entity types to entity types or O: {MISC: PERS}
    """
    def plain(name: str) -> str:
        return name[2:] if name[:2] in TAG_PREFIXES else name

    for source, target in label_map.items():
        for name in (source, target):
            if not name or name != name.strip() or " " in name:
                raise KayanError(f"config key {key} has the entity type {name!r}; types are names without spaces")
        if plain(source) != source or plain(target) != target:
            raise KayanError(f"config key {key} maps {source!r} to {target!r}, a tag; map entity types "
                             f"to entity types or O: {{{plain(source)}: {plain(target)}}}")


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind)).replace("NoneType", "null")


def _coerce(value: Any, kind: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``kind``; ints are accepted where floats are."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        present = [o for o in options if o is not type(None)]
        fitting = [o for o in present if isinstance(value, typing.get_origin(o) or o)]  # str | dict: the value's own kind
        return _coerce(value, (fitting or present)[0], path)
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, path)
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise KayanError(f"config key {path}: expected a list, got {value!r}")
        (item,) = typing.get_args(kind)
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise KayanError(f"config key {path}: expected a mapping, got {value!r}")
        _, item = typing.get_args(kind) or (str, str)
        if item is str or item is typing.Any:
            return {str(k): str(v) for k, v in value.items()}
        return {str(k): _coerce(v, item, f"{path}.{k}") for k, v in value.items()}
    if kind is float and is_number(value, whole=True):
        return float(value)
    if kind is float and isinstance(value, str):  # PyYAML reads 5e-5 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if not (is_number(value, whole=True) if kind is int else isinstance(value, kind)):
        raise KayanError(f"config key {path}: expected {_type_name(kind)}, got {value!r}")
    if path in CHOICES and value not in CHOICES[path]:
        raise KayanError(f"config key {path}: {value!r} is not one of {', '.join(CHOICES[path])}")
    return value


def _build(cls: type, raw: Any, path: str) -> Any:
    """Build dataclass ``cls`` from a mapping, naming any unknown key and the valid ones."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise KayanError(f"config key {path or '(top level)'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KayanError(f"unknown config key {where}{hint}; valid keys here: {', '.join(names)}")
        values[key] = _coerce(value, hints[key], where)
    return cls(**values)


TAG_PREFIXES = ("B-", "I-", "E-", "S-", "L-", "U-")  # a label map's names are types: none starts like a tag


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error, not "the last one wins"."""

    def construct_mapping(self, node, deep=False):
        first_lines: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in first_lines:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one section (first at line {first_lines[key]}); keep one",
                    key_node.start_mark)
            first_lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _apply_override(raw: dict, override: str) -> None:
    """Apply one ``dotted.key=value`` override to the raw mapping."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise KayanError(f"--set {override!r}: write it as dotted.key=value, e.g. training.learning_rate=3e-5")
    *parents, last = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise KayanError(f"--set {override!r}: {part} is not a section")
    node[last] = yaml.safe_load(text) if text.strip() else None


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read, override and validate a run config.

    Args:
        path: the YAML file (None: the defaults, the quickstart recipe's values).
        overrides: ``dotted.key=value`` strings applied on top, in order.

    >>> load_config(None, ["training.learning_rate=3e-5"]).training.learning_rate
    3e-05
    """
    raw: dict = {}
    if path is not None:
        path = Path(path)
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}  # noqa: S506 (a safe loader)
        except FileNotFoundError:
            raise KayanError(f"{path}: config file not found; see configs/ for recipes") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            problem = getattr(error, "problem", None) or error
            fix = "" if "keep one" in str(problem) else "; fix the syntax"
            raise KayanError(f"{where}: not valid YAML ({problem}){fix}") from None
    for override in overrides:
        _apply_override(raw, override)
    try:
        config = _build(Config, raw, "")
        _check_ranges(config)
        if path is not None and config.output.run_name is None:
            config.output.run_name = Path(path).stem
        check_run_name(config.output.run_name)
    except KayanError as error:
        raise KayanError(f"{path}: {error}" if path is not None else str(error)) from None
    return config


def with_values(config: Config, values: Mapping[str, Any]) -> Config:
    """A copy of ``config`` with dotted keys set to parsed values, validated as :func:`load_config` validates.

    >>> with_values(Config(), {"training.epochs": 2, "training.window": 256}).training.epochs
    2.0
    >>> with_values(Config(), {"training.window": 2})
    Traceback (most recent call last):
    kayan.errors.KayanError: config key training.window is 2; it must be at least 3 and at most 1000000 (e.g. 512)
    """
    raw = config.to_dict()
    for key, value in values.items():
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[last] = value
    changed = _build(Config, raw, "")
    _check_ranges(changed)
    check_run_name(changed.output.run_name)
    return changed


def save_config(config: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    return write_text(path, yaml.safe_dump(config.to_dict(), allow_unicode=True, sort_keys=False))
