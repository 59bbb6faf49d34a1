"""Stage 3, evaluation: predicted word tags scored against gold, explained, and compared.

Scores are seqeval's (the scorer of record, equal to ``conlleval``), in both of its modes; Kayan adds
only what seqeval lacks: per-sentence counts, error categories, bootstrap intervals and significance.

Modules (each starts with a docstring saying what it holds):
    :mod:`~kayan.evaluation.metrics`         :func:`score` (seqeval's report), :func:`sentence_counts`.
    :mod:`~kayan.evaluation.error_analysis`  error categories, a type confusion matrix, worst sentences.
    :mod:`~kayan.evaluation.significance`    bootstrap intervals, paired bootstrap, approximate randomization.
    :mod:`~kayan.evaluation.scoring`         :func:`evaluate` and :func:`compare` (tags against gold →
        ``metrics.json``, ``report.md``, ``predictions.txt``), :func:`read_predictions` for
        conlleval-format files; no model and no torch.
    :mod:`~kayan.evaluation.model_scoring`   :func:`evaluate_model`: a model opened, run over a labelled
        split and scored (``kayan evaluate MODEL --data``).
    :mod:`~kayan.evaluation.report`          ``report.html`` (:func:`render_html`).
    :mod:`~kayan.evaluation.curves`          ``curves.png`` of a run and compare's per-type chart.

The names below are imported from their modules on first use (:mod:`kayan.lazy`).
"""

from kayan.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "metrics": ["entity_types", "score", "sentence_counts"],
    "error_analysis": ["confusion_matrix", "error_counts"],
    "significance": ["approximate_randomization", "bootstrap_f1", "paired_bootstrap"],
    "scoring": ["compare", "compare_markdown", "evaluate", "label_set_warning", "predictions_text", "read_predictions",
                "report_markdown", "write_outputs"],
    "model_scoring": ["evaluate_model"],
    "report": ["render_html"],
    "curves": ["type_intervals", "write_compare_chart", "write_curves"],
})
