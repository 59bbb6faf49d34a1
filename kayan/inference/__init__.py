"""Stage 5, inference: raw text tagged with a packaged model, and the artefacts users load.

Modules (each starts with a docstring saying what it holds):
    :mod:`~kayan.inference.predict`     :func:`load` (``kayan.load``) → :class:`Predictor`: text →
        :class:`Entity` spans with character offsets and scores.
    :mod:`~kayan.inference.predict_io`  ``kayan predict``'s lines in, a record per line out (JSON lines, CoNLL or marked text), as tagged.
    :mod:`~kayan.inference.archive`     the documents of an archive: lines of text, a JSON-lines field, a parquet column.
    :mod:`~kayan.inference.bulk`        ``kayan predict --out``: an archive into JSON-lines shards, resumable, on N processes.
    :mod:`~kayan.inference.packaging`   ``kayan package``: a run's model as a Hugging Face folder with
        ``kayan.json`` and a model card (:func:`package`), or an ensemble (:func:`package_ensemble`).
    :mod:`~kayan.inference.export`      ``kayan export --onnx``: ONNX and int8 files with a parity
        check through the shared inference path (:func:`export_onnx`).

Models are opened by :func:`kayan.model.open_model`; serving over HTTP is :mod:`kayan.serve`.
The names below are imported from their modules on first use (:mod:`kayan.lazy`).
"""

from kayan.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "predict": ["Document", "Entity", "Predictor", "load"],
    "predict_io": ["read_pieces", "write_predictions"],
    "packaging": ["package", "package_ensemble"],
    "export": ["export_onnx"],
})
