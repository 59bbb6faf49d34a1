"""Stage 2, model: a token-classification model built or opened, and run over words.

The one inference path (training's dev and test scoring, ``kayan evaluate``, the Predictor, export's
parity check): words → subword windows (:mod:`~kayan.model.features`) → logits through a backend
(:mod:`~kayan.model.backends`) → one score row per word → tags (:mod:`~kayan.model.decoding`),
run by :func:`tag_words` (:mod:`~kayan.model.tagging`).

Modules (each starts with a docstring saying what it holds):
    :mod:`~kayan.model.features`    words → overlapping subword windows, every word owned by exactly
        one window (:func:`encode`), and window logits → word scores (:func:`word_scores`).
    :mod:`~kayan.model.hffeatures`  the same windows built through ``Dataset.map`` and cached
        (:func:`window_dataset`, what training feeds the Trainer).
    :mod:`~kayan.model.tiny`        the project's own tiny tokenizer and BERT config, built offline.
    :mod:`~kayan.model.modeling`    build a model for training (:func:`build_model`), load a trained
        one with its files checked (:func:`load_trained`).
    :mod:`~kayan.model.backends`    the forward call: :class:`TorchBackend`, :class:`OnnxBackend`.
    :mod:`~kayan.model.choices`     the backends and precisions by name (:data:`BACKENDS`, :data:`PRECISIONS`),
        without torch: what the command line offers.
    :mod:`~kayan.model.decoding`    word scores → tags: first subword or IOB2 Viterbi (:data:`DECODERS`).
    :mod:`~kayan.model.tagging`     :func:`tag_words`: batches of windows through a backend, decoded.
    :mod:`~kayan.model.ensemble`    several models' word probabilities averaged (:class:`Ensemble`).
    :mod:`~kayan.model.student`     a copy of a model with some of its encoder layers (:func:`layer_subset`), for distillation.
    :mod:`~kayan.model.location`    :func:`model_folder`: the model folder behind a path (package, run,
        checkpoint, ensemble), found and checked without torch.
    :mod:`~kayan.model.modelref`    :func:`open_model`, the one way to open a model (package, run,
        checkpoint, ensemble) with the settings it was trained with, checked.
    :mod:`~kayan.model.settings`    kayan.json, a model's settings: one schema (:class:`ModelSettings`),
        one reader that checks and upgrades it (:func:`read`), one writer (:func:`write`).
    :mod:`~kayan.model.vocabulary`  a tokenizer and word embedding pruned to the pieces a text sample
        uses (:func:`~kayan.model.vocabulary.prune`), for ``kayan package --prune-vocab``.

The names below are imported from their modules on first use (:mod:`kayan.lazy`): importing this
package loads no torch; :mod:`~kayan.model.decoding` and :mod:`~kayan.model.features` need only numpy,
:mod:`~kayan.model.choices` nothing.
"""

from kayan.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "features": ["Feature", "encode", "plan_windows", "word_scores"],
    "hffeatures": ["window_dataset"],
    "tiny": ["tiny_bert_config", "train_wordpiece_tokenizer"],
    "modeling": ["build_model", "load_trained", "position_limit"],
    "backends": ["OnnxBackend", "TorchBackend", "TrimmedBackend", "choose_backend", "open_onnx", "set_threads"],
    "choices": ["BACKENDS", "PRECISIONS"],
    "decoding": ["DECODERS", "decode"],
    "tagging": ["TaggingOptions", "decode_scores", "score_words", "tag_words"],
    "ensemble": ["Ensemble", "average_probabilities"],
    "student": ["evenly_spaced_layers", "layer_subset"],
    "location": ["model_folder"],
    "modelref": ["OpenModel", "open_model", "read_settings"],
    "settings": ["ModelSettings"],
})
