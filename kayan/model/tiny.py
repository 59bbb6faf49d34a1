"""The project's own tiny model: a WordPiece tokenizer and a small BERT config, built offline.

Used by the fast tests and the quickstart, where no pretrained encoder can be downloaded. The
tokenizer is a plain transformers ``BertTokenizer`` (the tokenizers-backed one), so a folder saved
with ``save_pretrained`` loads back with ``AutoTokenizer.from_pretrained`` exactly as CAMeLBERT's
would; it never strips diacritics (``strip_accents=False``, no NFD).

Transformers 5 rebuilds a ``BertTokenizer``'s normalizer and pre-tokenizer from
``tokenizer_config.json`` (``do_lower_case``, ``strip_accents``) when it loads, keeping only the
vocabulary and post-processor of ``tokenizer.json``; so the vocabulary is learned here with exactly
the normalizer ``BertTokenizer`` builds, and the saved folder reloads to the same tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import transformers
from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import WordPiece

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""The BERT special tokens, in vocabulary order: ``[PAD]`` is id 0, ``[UNK]`` 1 ... ``[MASK]`` 4."""


def _wordpiece_vocab(words: Iterable[str], *, vocab_size: int, lowercase: bool) -> dict[str, int]:
    """Train a WordPiece vocabulary with the same normalizer and pre-tokenizer BertTokenizer uses.

    The tokenizers trainer numbers the ``##`` continuation characters in hash-map order, which
    changes from run to run and so breaks ties between merges differently (tokenizers issue
    #1794). Declaring every continuation character up front, in sorted order, fixes the ids.

    Args:
        words: the training text, one word (or whitespace-separated text) per item.
        vocab_size: the largest vocabulary to learn, special tokens included.
        lowercase: whether to lowercase before learning (never strips accents).

    Returns:
        The vocabulary, token → id, with :data:`SPECIAL_TOKENS` first.
    """
    backend = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=lowercase
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = list(words)
    continuations = set()
    for word in set(words):
        text = backend.normalizer.normalize_str(word)
        for piece, _ in backend.pre_tokenizer.pre_tokenize_str(text):
            continuations.update(f"##{char}" for char in piece[1:])
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, *sorted(continuations)],
        continuing_subword_prefix="##",
        show_progress=False,
    )
    backend.train_from_iterator(words, trainer=trainer)
    return backend.get_vocab()


def train_wordpiece_tokenizer(
    words: Iterable[str],
    *,
    vocab_size: int = 3000,
    model_max_length: int = 512,
    lowercase: bool = False,
) -> transformers.BertTokenizer:
    """Train a BERT-style WordPiece tokenizer on ``words``, deterministically and offline.

    The result is a fast ``BertTokenizer``: ``[PAD] [UNK] [CLS] [SEP] [MASK]`` are ids 0-4,
    continuations carry ``##``, text is split on whitespace and punctuation (Arabic ``، ؛ ؟``
    included), and ``[CLS] ... [SEP]`` is added around each sequence. Diacritics, tatweel and
    Arabic-Indic digits are kept as they are. The same words, in any order, give the same vocab.

    Args:
        words: the training words (or whitespace-separated texts).
        vocab_size: the largest vocabulary to learn, special tokens included.
        model_max_length: the longest sequence the model takes, stored in the tokenizer.
        lowercase: lowercase the text (Latin letters) before tokenizing; accents are never stripped.

    Returns:
        A fast tokenizer that supports ``is_split_into_words=True`` and ``word_ids()``.

    >>> tok = train_wordpiece_tokenizer(["كتب", "الكتاب", "كاتب"], vocab_size=60)
    >>> tok.convert_ids_to_tokens(tok("الكتاب")["input_ids"])
    ['[CLS]', 'الكتاب', '[SEP]']
    """
    vocab = _wordpiece_vocab(words, vocab_size=vocab_size, lowercase=lowercase)
    return transformers.BertTokenizer(
        vocab=vocab,
        do_lower_case=lowercase,
        strip_accents=False,
        model_max_length=model_max_length,
    )


def tiny_bert_config(
    *,
    vocab_size: int,
    id2label: Mapping[int, str],
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 512,
) -> transformers.BertConfig:
    """A small BERT configuration for token classification over ``id2label``.

    Args:
        vocab_size: the tokenizer's vocabulary size (``len(tokenizer)``).
        id2label: label id → tag, ids 0..n-1; ``label2id`` is set to its inverse.
        hidden_size: width of the hidden states; a multiple of ``num_attention_heads``.
        num_hidden_layers: number of transformer layers.
        num_attention_heads: attention heads per layer.
        intermediate_size: width of the feed-forward layer.
        max_position_embeddings: the longest sequence the model takes (match the tokenizer's).

    Returns:
        A ``BertConfig`` with ``id2label`` and ``label2id`` set.

    >>> config = tiny_bert_config(vocab_size=100, id2label={0: "O", 1: "B-PERS", 2: "I-PERS"})
    >>> config.label2id["B-PERS"], config.num_labels
    (1, 3)
    """
    id2label = {int(i): str(tag) for i, tag in sorted(id2label.items())}
    return transformers.BertConfig(
        vocab_size=int(vocab_size),
        hidden_size=int(hidden_size),
        num_hidden_layers=int(num_hidden_layers),
        num_attention_heads=int(num_attention_heads),
        intermediate_size=int(intermediate_size),
        max_position_embeddings=int(max_position_embeddings),
        id2label=id2label,
        label2id={tag: i for i, tag in id2label.items()},
    )
