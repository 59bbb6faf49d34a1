"""Knowledge distillation: a student learns its teacher's soft word-level targets (``kayan distill``).

One path, two uses: an ensemble teaches one model (the shipped package costs one forward pass), and
a model teaches a copy of itself with fewer encoder layers (cheaper per word). The config's
``distill`` section (:class:`kayan.config.DistillSection`) turns it on; the run is an ordinary
training run whose student is an ordinary model, so evaluate, package, export and predict take it.

- The student starts from the teacher's (first member's) fine-tuned weights with some of its layers
  (:func:`kayan.model.student.layer_subset`), or with ``distill.start: base`` from ``model.name`` as
  ``kayan train`` builds it (a new classifier: a student that no member's errors are baked into). It
  shares the teacher's tokenizer and labels: the teacher reads the very windows the student trains on,
  so labelled data needs no new columns.
- The loss (:func:`distill_loss`) is ``soft_weight * T^2 * KL(teacher || student) + (1 - soft_weight)
  * CE(gold)`` at the subwords that carry a word's label; with ``hidden_weight``, plus that weight times
  the mean squared difference between each student layer's output and the output of the teacher layer
  in its place (the first member's; the layer it was copied from, unless ``start: base``), at every
  real subword (:func:`hidden_loss`). The teacher runs online, in eval mode, with no gradient, under
  the training's autocast (bf16/fp16); an ensemble's members' softmax at temperature T are averaged.
  The teacher lives beside the Trainer, never in its model: checkpoints and ``model/`` hold the
  student only.
- Unlabelled sentences (``distill.unlabelled``: the words of other corpora, tags ignored) add windows
  whose labelled subwords carry :data:`UNLABELLED`: the soft loss reads them, the CE ignores them.
  They are de-duplicated at the sentence level against the run's train, dev and test sentences
  (NewsFANE repeats much of ANERcorp); those retelling dev or test text in other sentences or tokens
  are dropped too (:mod:`kayan.data.overlap`, the rule other corpora's training sentences follow),
  and the counts go to train.log and summary.json.

Dev selection, Viterbi decoding and refit apply unchanged: a refit student is distilled again from the
same teacher on train + dev (whose sentences the unlabelled text is then de-duplicated against too).
A ``kayan tune`` trial never reads the test split, so there the unlabelled text is checked against
train and dev only; the chosen recipe, trained with ``kayan train``, checks test too.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from kayan import console
from kayan.checks import check_window
from kayan.config import Config
from kayan.data import corpora, overlap
from kayan.data.rundata import RunData
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.model.features import IGNORE
from kayan.model.hffeatures import window_dataset
from kayan.model.modeling import position_limit
from kayan.model.modelref import open_model
from kayan.model.student import evenly_spaced_layers, layer_subset
from kayan.model.tagging import normalized
from kayan.training import partial_labels
from kayan.training.word_trainer import WordLevelTrainer

UNLABELLED = -1
"""The label of an unlabelled sentence's word: the soft loss reads it, the cross-entropy ignores it."""


@dataclass
class Teacher:
    """The opened teacher: its PyTorch models (one per member), labels and shared tokenizer."""

    folder: Path
    models: tuple
    labels: list[str]
    tokenizer: object
    normalization: tuple[str, ...]
    base_model: str | None


def open_teacher(path: str) -> Teacher:
    """Open ``distill.teacher`` (a package, run or ensemble package) for distilling, its members checked to share one tokenizer."""
    try:
        opened = open_model(path, backend="torch", device="cpu")
    except KayanError as error:
        raise KayanError(f"config key distill.teacher: {error}") from None
    members = opened.members
    first = members[0]
    for member in members[1:]:  # the members read the student's windows: one tokenizer, one normalization
        if member.tokenizer.get_vocab() != first.tokenizer.get_vocab():
            raise KayanError(f"config key distill.teacher: the members of {opened.folder} do not share one tokenizer "
                             f"({member.folder} differs from {first.folder}); give an ensemble whose members share a base model")
        if member.options.normalization != first.options.normalization:
            raise KayanError(f"config key distill.teacher: the members of {opened.folder} normalize words differently "
                             f"({member.folder}, {first.folder}); give an ensemble whose members were trained alike")
    models = tuple(member.model.eval().requires_grad_(False) for member in members)
    return Teacher(Path(opened.folder), models, opened.labels, first.tokenizer, tuple(first.options.normalization),
                   first.stored.base_model if first.stored is not None else None)


def _same_model(a: str, b: str) -> bool:
    """Whether two ``model.name`` values name the same model: equal, or the same local folder."""
    return a == b or (Path(a).expanduser().is_dir() and Path(a).expanduser().resolve() == Path(b).expanduser().resolve())


def check_compatible(teacher: Teacher, config: Config, labels: Sequence[str]) -> None:
    """Refuse a run whose labels, base model or normalization differ from the teacher's, naming the key."""
    if list(labels) != list(teacher.labels):
        raise KayanError(f"config key distill.teacher: the teacher {teacher.folder} has the labels {teacher.labels} but "
                         f"data.train (after data.label_map) gives {list(labels)}; a student learns its teacher's labels: "
                         "train on data with the teacher's tag set (map it with data.label_map)")
    if teacher.base_model is not None and not _same_model(config.model.name, teacher.base_model):
        raise KayanError(f"config key model.name is {config.model.name!r} but the teacher {teacher.folder} was trained "
                         f"from {teacher.base_model!r}; a student shares its teacher's tokenizer: set model.name: {teacher.base_model}")
    if tuple(config.data.normalization) != teacher.normalization:
        raise KayanError(f"config key data.normalization is {list(config.data.normalization)} but the teacher "
                         f"{teacher.folder} reads words with {list(teacher.normalization)}; set data.normalization to the teacher's")


class DistillLoss(NamedTuple):
    """The loss and its two parts (the soft one before its ``T^2`` and weight)."""

    total: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor


def distill_loss(student_logits: torch.Tensor, teacher_probabilities: torch.Tensor, labels: torch.Tensor, *,
                 temperature: float, soft_weight: float, allowed: torch.Tensor | None = None) -> DistillLoss:
    """``soft_weight * T^2 * KL(teacher || student) + (1 - soft_weight) * CE(gold)``, each a mean over its subwords.

    Args:
        student_logits: ``(batch, length, labels)``.
        teacher_probabilities: the teacher's softmax at temperature T, same shape.
        labels: ``(batch, length)``: a label id (both losses), :data:`UNLABELLED` (soft only) or :data:`IGNORE`.
        temperature: T, dividing the student's logits (the teacher's are already divided).
        soft_weight: the soft loss's share, 0 to 1.
        allowed: label sets (:mod:`kayan.training.partial_labels`) where a training corpus misses types; None: none.

    >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0]]])
    >>> teacher = torch.softmax(logits / 2.0, -1)
    >>> loss = distill_loss(logits, teacher, torch.tensor([[0, UNLABELLED]]), temperature=2.0, soft_weight=1.0)
    >>> round(float(loss.soft), 6), round(float(loss.total), 6)
    (0.0, 0.0)
    """
    logits = student_logits.float()
    soft_at, hard_at = labels != IGNORE, labels >= 0
    zero = logits.sum() * 0.0  # keeps the graph when a batch has no position of a kind
    soft = zero
    if soft_at.any():
        log_student = F.log_softmax(logits[soft_at] / temperature, dim=-1)
        soft = F.kl_div(log_student, teacher_probabilities[soft_at].float(), reduction="batchmean")
    if allowed is not None:  # some ids stand for label sets
        hard = partial_labels.partial_cross_entropy(logits, labels.masked_fill(~hard_at, IGNORE), allowed)
    else:
        hard = F.cross_entropy(logits[hard_at], labels[hard_at]) if hard_at.any() else zero
    total = soft_weight * temperature**2 * soft + (1.0 - soft_weight) * hard
    return DistillLoss(total, soft, hard)


class TeacherTargets(NamedTuple):
    """What the teacher gives a batch: its softmax at temperature T, and (when asked) its first member's hidden states."""

    probabilities: torch.Tensor
    hidden_states: tuple | None


def teacher_targets(models: Sequence[torch.nn.Module], features: dict, temperature: float, *,
                    hidden: bool = False) -> TeacherTargets:
    """The mean of the members' softmax at temperature T over the student's input window (no gradient);
    with ``hidden``, also the first member's hidden states (embeddings, then each layer's output)."""
    device = features["input_ids"].device
    total, states = None, None
    with torch.no_grad():
        for i, model in enumerate(models):
            if next(model.parameters()).device != device:  # moved once, on the first batch
                model.to(device)
            outputs = model(**features, output_hidden_states=hidden and i == 0)
            if hidden and i == 0:
                states = outputs.hidden_states
            probabilities = torch.softmax(outputs.logits.float() / temperature, dim=-1)
            total = probabilities if total is None else total + probabilities
    return TeacherTargets(total / len(models), states)


def hidden_loss(student_states: Sequence[torch.Tensor], teacher_states: Sequence[torch.Tensor],
                attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean squared difference between each student layer's output and its teacher layer's, over the
    window's real subwords (padding left out), averaged over the layers.

    >>> a = torch.zeros(1, 3, 2); b = torch.ones(1, 3, 2); b[0, 2] = 9.0  # the third subword is padding
    >>> float(hidden_loss([a], [b], torch.tensor([[1, 1, 0]])))
    1.0
    """
    real = attention_mask.bool()
    losses = [F.mse_loss(s[real].float(), t[real].float()) for s, t in zip(student_states, teacher_states, strict=True)]
    return torch.stack(losses).mean()


def _autocast(args, device: torch.device):
    """The training's mixed precision for the teacher's forward (the student's comes from accelerate)."""
    if args.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if args.fp16:
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


@dataclass
class Distiller:
    """What the Trainer needs to distil: the teacher, T, the soft weight, and the hidden-state weight with the
    teacher layers in the student's layers' places; ``report`` goes into summary.json."""

    teacher: Teacher
    temperature: float
    soft_weight: float
    report: dict = field(default_factory=dict)
    hidden_weight: float = 0.0
    kept_layers: list[int] = field(default_factory=list)
    allowed: torch.Tensor | None = None  # label sets, where a training corpus misses types

    def loss(self, model, inputs: dict, args, *, return_outputs: bool = False):
        """The Trainer's ``compute_loss`` for a distilled run: a per-batch mean (:func:`distill_loss`, plus
        ``hidden_weight`` × :func:`hidden_loss` against the teacher layers the student keeps)."""
        labels = inputs["labels"]
        features = {key: value for key, value in inputs.items() if key != "labels"}
        hidden = self.hidden_weight > 0
        outputs = model(**features, output_hidden_states=hidden)
        with _autocast(args, labels.device):
            targets = teacher_targets(self.teacher.models, features, self.temperature, hidden=hidden)
        loss = distill_loss(outputs.logits, targets.probabilities, labels, temperature=self.temperature,
                            soft_weight=self.soft_weight, allowed=self.allowed).total
        if hidden:  # hidden_states[0] is the embeddings' output, [k + 1] layer k's
            teacher_states = [targets.hidden_states[k + 1] for k in self.kept_layers]
            loss = loss + self.hidden_weight * hidden_loss(outputs.hidden_states[1:], teacher_states, features["attention_mask"])
        return (loss, outputs) if return_outputs else loss


class DistillingTrainer(WordLevelTrainer):
    """A :class:`~kayan.training.word_trainer.WordLevelTrainer` whose loss is its :class:`Distiller`'s."""

    def __init__(self, *args, distiller: Distiller, **kwargs):
        super().__init__(*args, **kwargs)
        self.distiller = distiller
        self.loss_is_scaled_for_ga = False  # the distiller's loss is a per-batch mean: the Trainer divides it

    def use_label_sets(self, allowed) -> None:
        super().use_label_sets(allowed)
        self.distiller.allowed = allowed

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return self.distiller.loss(model, inputs, self.args, return_outputs=return_outputs)

    def summary_notes(self) -> dict:
        return {"distill": self.distiller.report}  # teacher, layers kept, unlabelled counts


def build_student(config: Config, labels: Sequence[str], build_base: Callable[[], tuple]):
    """The student a distilled run trains, its tokenizer, and the :class:`Distiller` that teaches it.

    ``build_base``: builds ``model.name``'s model and tokenizer as ``kayan train`` would (a new classifier); called
    only when ``distill.start`` is ``base``, whose student starts from it rather than the teacher's first member."""
    section = config.distill
    teacher = open_teacher(section.teacher)
    check_compatible(teacher, config, labels)
    start, total = teacher.models[0], teacher.models[0].config.num_hidden_layers
    if section.start == "base":
        start, tokenizer = build_base()
        if tokenizer.get_vocab() != teacher.tokenizer.get_vocab():
            raise KayanError(f"config key distill.start is 'base' but {config.model.name}'s tokenizer differs from the "
                             f"teacher's ({teacher.folder}); set model.name to the teacher's base model, or distill.start: teacher")
        if start.config.num_hidden_layers != total:
            raise KayanError(f"config key distill.start is 'base' but {config.model.name} has {start.config.num_hidden_layers} "
                             f"encoder layers and the teacher {total}; set model.name to the teacher's base model, "
                             "or distill.start: teacher")
    student = layer_subset(start, section.layers)
    check_window(config.training.window, limit=position_limit(student.config, teacher.tokenizer), key="training.",
                 where=f"model {config.model.name}")
    kept = evenly_spaced_layers(total, section.layers or total)
    report = {"teacher": str(teacher.folder), "members": len(teacher.models), "start": section.start, "teacher_layers": total,
              "kept_layers": kept, "temperature": section.temperature, "soft_weight": section.soft_weight,
              "hidden_weight": section.hidden_weight}
    source = "teacher" if section.start == "teacher" else f"base model {config.model.name}"
    console.info(f"distill: the student keeps layers {kept} of the {source}'s {total} ({teacher.folder}, "
                 f"{len(teacher.models)} member(s)); T={section.temperature}, soft_weight={section.soft_weight}"
                 + (f", hidden_weight={section.hidden_weight}" if section.hidden_weight else ""))
    distiller = Distiller(teacher, section.temperature, section.soft_weight, report, section.hidden_weight, kept)
    return student.train(), teacher.tokenizer, distiller


def unlabelled_sentences(config: Config, data: RunData) -> tuple[list[Sentence], dict]:
    """The sentences of ``distill.unlabelled`` that the run does not hold already and that do not retell its dev
    or test text, and the counts (read; dropped as duplicates of the run's train, dev or test sentences; dropped
    as retelling dev or test text, :func:`kayan.data.overlap.repeats`; dropped as repeated within the unlabelled
    text; kept). A student taught its teacher's guesses on the test text would be scored on what it copied.

    At most ``distill.max_unlabelled_sentences`` are kept: a sample drawn with ``training.seed``, in file order
    (0: none, and the corpora are not read).
    """
    section, refs = config.data, config.distill.unlabelled
    if config.distill.max_unlabelled_sentences == 0:  # none wanted: the corpora are not read
        return [], {"refs": list(refs), "read": 0, "duplicates_of_run_sentences": 0, "retell_dev_or_test": 0,
                    "repeated": 0, "kept": 0}
    run_keys = {overlap.sentence_key(s.words) for split in (data.train, data.dev, data.test) if split for s in split.sentences}
    own_keys: set[str] = set()
    read = duplicates = repeated = 0
    fresh: list[Sentence] = []
    for ref in refs:
        for sentence in corpora.load_split(ref, root=section.dir, verify=section.verify, columns=section.columns).sentences:
            read += 1
            key = overlap.sentence_key(sentence.words)
            if key in run_keys:
                duplicates += 1
            elif key in own_keys or not key:
                repeated += 1
            else:
                own_keys.add(key)
                fresh.append(Sentence(sentence.words, (), sentence.source, sentence.line))
    held_out = [s.words for split in (data.dev, data.test) if split for s in split.sentences]
    retold = overlap.repeats([s.words for s in fresh], held_out)
    fresh = [s for s, retells in zip(fresh, retold) if not retells]
    limit = config.distill.max_unlabelled_sentences
    if len(fresh) > limit:
        chosen = sorted(random.Random(config.training.seed).sample(range(len(fresh)), limit))
        fresh = [fresh[i] for i in chosen]
    report = {"refs": list(refs), "read": read, "duplicates_of_run_sentences": duplicates,
              "retell_dev_or_test": sum(retold), "repeated": repeated, "kept": len(fresh)}
    return fresh, report


def _mark_unlabelled(batch: dict) -> dict:
    """Labels of unlabelled windows: :data:`UNLABELLED` where a word's label would be, :data:`IGNORE` elsewhere."""
    return {"labels": [[IGNORE if label == IGNORE else UNLABELLED for label in row] for row in batch["labels"]]}


def with_unlabelled(windows, config: Config, data: RunData, tokenizer, distiller: Distiller, normalization: Sequence[str]):
    """The training windows followed by those of the unlabelled sentences (:func:`unlabelled_sentences`), whose
    counts are logged and recorded in ``distiller.report``. ``normalization``: the run's word normalization steps."""
    import datasets

    sentences, counts = unlabelled_sentences(config, data)
    distiller.report["unlabelled"] = counts
    if config.distill.unlabelled and not config.distill.max_unlabelled_sentences:
        console.info(f"distill: distill.max_unlabelled_sentences is 0: {', '.join(counts['refs'])} not read")
    elif config.distill.unlabelled:
        console.info(f"distill: read {counts['read']} unlabelled sentences ({', '.join(counts['refs'])}); dropped "
                     f"{counts['duplicates_of_run_sentences']} found in the run's train/dev/test, "
                     f"{counts['retell_dev_or_test']} retelling dev or test text and {counts['repeated']} repeated; "
                     f"kept {counts['kept']} (at most {config.distill.max_unlabelled_sentences})")
    if not sentences:
        return windows
    t = config.training
    words = normalized([s.words for s in sentences], tuple(normalization))
    extra = window_dataset([Sentence(tuple(w), ("O",) * len(w)) for w in words], tokenizer, label2id={"O": 0},
                           window=t.window, stride=t.stride, label_all_subwords=t.label_all_subwords, context=t.context,
                           documents=[s.source for s in sentences]).select_columns(list(windows.column_names))
    with console.quiet_datasets():
        extra = extra.map(_mark_unlabelled, batched=True).cast(windows.features)
    return datasets.concatenate_datasets([windows, extra])
