"""A model's subword vocabulary pruned to the pieces a text sample uses (``kayan package --prune-vocab``).

multilingual-e5-small keeps 96M of its 118M parameters in a word-embedding matrix of 250,037 rows,
one per piece of its multilingual SentencePiece vocabulary, while Arabic text reads a few tens of
thousands of them. Pruning keeps every special and added token, every piece the model's tokenizer
produces on the sample (and on the model's own training data), every single-character piece (so a
character that had a piece of its own never becomes unknown) and, for Unigram, the lowest-scoring piece (whose
score sets the unknown token's penalty); ids are renumbered densely in their old order and the
embedding rows sliced to match.

Why the sample tokenizes exactly as before: a Unigram tokenizer takes the best-scoring
segmentation (Viterbi); on a sample text that segmentation uses only kept pieces, and the best
over a subset that still holds it is the same one. A WordPiece tokenizer takes the longest
vocabulary match at each step; on the sample that match is kept, so each step is unchanged.
Text outside the sample may segment differently (a piece it used may be gone; its characters
still have their own pieces): :func:`changed_words` measures how often.

The pure functions work on the tokenizer's ``tokenizer.json`` content (:func:`kept_ids`,
:func:`prune_spec`); :func:`prune_model` applies them to an opened model and its tokenizer.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kayan.data import arabic, corpora
from kayan.errors import KayanError
from kayan.files import read_utf8
from kayan.model.tagging import normalized

SUPPORTED = ("Unigram", "WordPiece")
TEXT_PREFIX = "text:"  # a REF of raw text, one document per line: text:PATH
SPECIAL_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "unk_token_id",
               "mask_token_id", "decoder_start_token_id")


def model_type(spec: Mapping) -> str:
    """The tokenizer model's type, when pruning supports it.

    >>> model_type({"model": {"type": "BPE"}})
    Traceback (most recent call last):
    kayan.errors.KayanError: the tokenizer is a BPE model; --prune-vocab supports Unigram and WordPiece tokenizers only: package the model without --prune-vocab
    """
    kind = (spec.get("model") or {}).get("type")
    if kind not in SUPPORTED:
        raise KayanError(f"the tokenizer is a {kind or 'untyped'} model; --prune-vocab supports "
                         f"{' and '.join(SUPPORTED)} tokenizers only: package the model without --prune-vocab")
    return kind


def pieces(spec: Mapping) -> list[str]:
    """The tokenizer model's pieces in id order.

    >>> pieces({"model": {"type": "WordPiece", "vocab": {"b": 1, "[UNK]": 0}}})
    ['[UNK]', 'b']
    """
    model = spec["model"]
    if model_type(spec) == "Unigram":
        return [piece for piece, _ in model["vocab"]]
    ordered = sorted(model["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in ordered] != list(range(len(ordered))):
        raise KayanError("the tokenizer's WordPiece ids are not 0..N-1; --prune-vocab needs a dense vocabulary")
    return [piece for piece, _ in ordered]


def _single_character(piece: str, prefix: str) -> bool:
    return len(piece[len(prefix):] if prefix and piece.startswith(prefix) else piece) == 1


def kept_ids(spec: Mapping, used: Iterable[int], extra: Iterable[int] = ()) -> list[int]:
    """The ids pruning keeps, sorted: ``used`` and ``extra`` (e.g. config.json's special ids), the
    added and unknown tokens, every single-character piece and, for Unigram, the lowest-scoring piece.

    >>> spec = {"model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
    ...         "vocab": {"[UNK]": 0, "[CLS]": 1, "ab": 2, "a": 3, "##b": 4, "abc": 5}},
    ...         "added_tokens": [{"id": 1, "content": "[CLS]"}]}
    >>> kept_ids(spec, [5])
    [0, 1, 3, 4, 5]
    """
    model, vocabulary = spec["model"], pieces(spec)
    keep = {int(i) for i in (*used, *extra)} | {int(token["id"]) for token in spec.get("added_tokens") or ()}
    prefix = model.get("continuing_subword_prefix") or ""
    keep |= {i for i, piece in enumerate(vocabulary) if _single_character(piece, prefix)}
    if model["type"] == "Unigram":
        if model.get("unk_id") is not None:
            keep.add(int(model["unk_id"]))
        # tokenizers scores the unknown token below the lowest piece score: keep that score unchanged
        keep.add(min(range(len(vocabulary)), key=lambda i: model["vocab"][i][1]))
    elif model.get("unk_token") in vocabulary:
        keep.add(vocabulary.index(model["unk_token"]))
    outside = sorted(i for i in keep if not 0 <= i < len(vocabulary))
    if outside:
        raise KayanError(f"token id {outside[0]} is not in the tokenizer's vocabulary of {len(vocabulary)} pieces; "
                         "the model and its tokenizer disagree: re-package the model without --prune-vocab")
    return sorted(keep)


def prune_spec(spec: Mapping, keep: Sequence[int]) -> dict:
    """``tokenizer.json``'s content with only the ``keep`` ids (sorted), renumbered 0..len(keep)-1:
    the model's vocabulary and unknown id, the added tokens, the post-processor's and padding's ids.

    >>> spec = {"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "x": 1, "[CLS]": 2}},
    ...         "added_tokens": [{"id": 2, "content": "[CLS]"}],
    ...         "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 2], "sep": ["[CLS]", 2]}}
    >>> pruned = prune_spec(spec, [0, 2])
    >>> pruned["model"]["vocab"], pruned["added_tokens"][0]["id"], pruned["post_processor"]["cls"]
    ({'[UNK]': 0, '[CLS]': 1}, 1, ['[CLS]', 1])
    """
    vocabulary, renumber = pieces(spec), {old: new for new, old in enumerate(keep)}
    pruned = copy.deepcopy(dict(spec))
    model = pruned["model"]
    if model["type"] == "Unigram":
        model["vocab"] = [model["vocab"][old] for old in keep]
        if model.get("unk_id") is not None:
            model["unk_id"] = renumber[model["unk_id"]]
    else:
        model["vocab"] = {vocabulary[old]: new for new, old in enumerate(keep)}
    for token in pruned.get("added_tokens") or ():
        token["id"] = renumber[token["id"]]
    ids = {vocabulary[old]: new for new, old in enumerate(keep)}
    ids.update({token["content"]: token["id"] for token in pruned.get("added_tokens") or ()})
    if pruned.get("post_processor"):
        _renumber_processor(pruned["post_processor"], ids)
    if pruned.get("padding") and pruned["padding"].get("pad_token") in ids:
        pruned["padding"]["pad_id"] = ids[pruned["padding"]["pad_token"]]
    return pruned


def _renumber_processor(node: Any, ids: Mapping[str, int]) -> None:
    """Renumber a post-processor's special tokens in place: TemplateProcessing's ``{"tokens", "ids"}``,
    Bert/RobertaProcessing's ``[token, id]`` pairs, nested in Sequence processors."""
    if isinstance(node, list):
        for item in node:
            _renumber_processor(item, ids)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("tokens"), list) and isinstance(node.get("ids"), list):
        node["ids"] = [ids[token] for token in node["tokens"]]
    for key in ("cls", "sep"):
        pair = node.get(key)
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str):
            node[key] = [pair[0], ids[pair[0]]]
    for value in node.values():
        if isinstance(value, (dict, list)):
            _renumber_processor(value, ids)


def config_special_ids(config) -> list[int]:
    """The token ids a model config names (pad, bos, eos ...): pruning keeps them and renumbers them."""
    return [value for name in SPECIAL_IDS if isinstance(value := getattr(config, name, None), int)]


def prune_embeddings(model, keep: Sequence[int]) -> None:
    """Keep only the ``keep`` rows of ``model``'s word embedding (and of its output embedding, when it
    has one), renumbering the config's vocabulary size and special token ids; in place."""
    import torch
    from torch import nn

    renumber = {old: new for new, old in enumerate(keep)}
    index = torch.tensor(list(keep), dtype=torch.long)
    embedding = model.get_input_embeddings()
    pad = embedding.padding_idx
    with torch.no_grad():
        model.set_input_embeddings(nn.Embedding(len(keep), embedding.embedding_dim, padding_idx=renumber.get(pad),
                                                _weight=embedding.weight.detach()[index].clone()))
        output = model.get_output_embeddings()
        if output is not None:
            output.weight = nn.Parameter(output.weight.detach()[index].clone())
            if getattr(output, "bias", None) is not None:
                output.bias = nn.Parameter(output.bias.detach()[index].clone())
            output.out_features = len(keep)
            if getattr(model.config, "tie_word_embeddings", False):
                model.tie_weights()
    model.config.vocab_size = len(keep)
    for name in SPECIAL_IDS:
        if isinstance(getattr(model.config, name, None), int):
            setattr(model.config, name, renumber[getattr(model.config, name)])


def read_sample(ref: str, *, root: str | None = None) -> list[list[str]]:
    """The sentences (word lists) of one sample REF: ``CORPUS:SPLIT`` or a CoNLL file (as ``kayan evaluate
    --data`` reads them), or ``text:PATH``, raw UTF-8 text with one document per line, split into words
    as ``kayan.load(...).predict`` splits them."""
    if not ref.startswith(TEXT_PREFIX):
        return [list(sentence.words) for sentence in corpora.load_split(ref, root=root).sentences]
    path = Path(ref[len(TEXT_PREFIX):]).expanduser()
    if not path.is_file():
        raise KayanError(f"{ref}: no such file; give text:PATH of a UTF-8 text file with one document per line")
    return [[token.text for token in arabic.tokenize(line)] for line in read_utf8(path, what="the text file").splitlines() if line.strip()]


def _read_recorded(refs: Sequence[str], root: str | None, role: str) -> list[list[str]]:
    """The sentences of the REFs kayan.json records as the model's ``role`` data; one that cannot be read says so."""
    sentences = []
    for ref in refs:
        try:
            sentences += read_sample(ref, root=root)
        except KayanError as error:
            raise KayanError(f"{error} (reading {ref}, the model's {role} data recorded in its kayan.json)") from None
    return sentences


def sample_words(refs: Sequence[str], training_data, steps: Sequence[str], *,
                 root: str | None = None) -> tuple[Counter, Counter | None, dict]:
    """What pruning reads: the words to keep, those of the sample REFs and of the model's own training and
    dev data, and the held-out words to check, those of its test data (``None`` when kayan.json names none).

    Args:
        refs: the sample: ``CORPUS:SPLIT``, CoNLL files, ``text:PATH`` (:func:`read_sample`).
        training_data: kayan.json's ``training_data`` (or ``None``).
        steps: the model's normalization steps, applied to every word as the model reads it.
        root: the data directory (else ``$KAYAN_DATA_DIR``).

    Returns:
        ``(words to keep, words to check, the REFs read: sample, training_data, check_text)``.
    """
    sample = [sentence for ref in refs for sentence in read_sample(ref, root=root)]
    own = [*getattr(training_data, "train", ()), *getattr(training_data, "dev", ())]
    test = list(getattr(training_data, "test", ()))
    keep = word_counts([*sample, *_read_recorded(own, root, "training")], steps)
    check = word_counts(_read_recorded(test, root, "test"), steps) if test else None
    return keep, check, {"sample": list(refs), "training_data": own, "check_text": test}


def word_pieces(tokenizer, words: Sequence[str], *, chunk: int = 512) -> list[list[int]]:
    """Each word's piece ids, tokenized as Kayan's windows tokenize words (one word list, split into words)."""
    result = []
    for start in range(0, len(words), chunk):
        batch = list(words[start:start + chunk])
        encoding = tokenizer([batch], is_split_into_words=True, add_special_tokens=False, truncation=False,
                             return_attention_mask=False, return_token_type_ids=False, verbose=False)
        per_word: list[list[int]] = [[] for _ in batch]
        for token_id, word in zip(encoding["input_ids"][0], encoding.word_ids(0)):
            if word is not None:
                per_word[word].append(token_id)
        result.extend(per_word)
    return result


def word_counts(sentences: Iterable[Sequence[str]], steps: Sequence[str]) -> Counter:
    """How often each word occurs, after the model's normalization steps (what its tokenizer reads)."""
    return Counter(word for words in normalized(list(sentences), steps) for word in words)


def changed_words(before: Sequence[Sequence[int]], after: Sequence[Sequence[int]], renumber: Mapping[int, int],
                  counts: Sequence[int] | None = None) -> int:
    """How many words (weighted by ``counts``) the pruned tokenizer splits otherwise than the original did.

    >>> changed_words([[7, 9], [5]], [[0, 1], [2, 2]], {7: 0, 9: 1, 5: 2}, counts=[3, 2])
    2
    """
    counts = counts or [1] * len(before)
    return sum(count for old, new, count in zip(before, after, counts)
               if [renumber.get(i, -1) for i in old] != list(new))


def reload_tokenizer(tokenizer, spec: Mapping):
    """``tokenizer`` with ``spec`` as its tokenizer.json, saved and loaded back through ``AutoTokenizer``
    (the way every later load reads it); ids in tokenizer_config.json's ``added_tokens_decoder`` follow."""
    import transformers

    ids = {token["content"]: token["id"] for token in spec.get("added_tokens") or ()}
    with tempfile.TemporaryDirectory(prefix="kayan-vocabulary-") as folder:
        tokenizer.save_pretrained(folder)
        Path(folder, "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        config_path = Path(folder, "tokenizer_config.json")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if isinstance(config.get("added_tokens_decoder"), dict):
            config["added_tokens_decoder"] = {str(ids[token["content"]]): token
                                              for token in config["added_tokens_decoder"].values()}
            config_path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        return transformers.AutoTokenizer.from_pretrained(folder)


def prune(model, tokenizer, keep_text: Counter, check_text: Counter | None = None) -> tuple[Any, dict]:
    """Prune ``model`` (in place) and ``tokenizer`` to the pieces of ``keep_text``'s words (see the module docstring).

    Args:
        model: a transformers model whose word embedding the tokenizer's ids index.
        tokenizer: its fast tokenizer (Unigram or WordPiece).
        keep_text: words (normalized as the model reads them) → occurrences: their pieces are kept.
        check_text: held-out words → occurrences, whose changed segmentations are counted.

    Returns:
        The pruned tokenizer and a record: pieces and embedding rows before and after, the sample's
        words, and the check text's words and how many of them the pruned tokenizer splits otherwise.

    Raises:
        KayanError: the tokenizer is neither Unigram nor WordPiece.
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocabulary = pieces(spec)
    words = list(keep_text)
    before = word_pieces(tokenizer, words)
    keep = kept_ids(spec, (i for ids in before for i in ids), config_special_ids(model.config))
    renumber = {old: new for new, old in enumerate(keep)}
    pruned = reload_tokenizer(tokenizer, prune_spec(spec, keep))
    if changed_words(before, word_pieces(pruned, words), renumber):  # the module docstring's proof says never
        raise RuntimeError("the pruned tokenizer splits words of the sample otherwise than the original; nothing written")
    record = {"pieces_before": len(vocabulary), "pieces_after": len(keep),
              "embedding_rows_before": model.get_input_embeddings().num_embeddings, "embedding_rows_after": len(keep),
              "sample_words": sum(keep_text.values()), "sample_distinct_words": len(words)}
    prune_embeddings(model, keep)
    if check_text:
        checked = list(check_text)
        counts = [check_text[word] for word in checked]
        changed = changed_words(word_pieces(tokenizer, checked), word_pieces(pruned, checked), renumber, counts)
        record["check"] = {"words": sum(counts), "changed_words": changed, "changed_share": changed / sum(counts)}
    return pruned, record
