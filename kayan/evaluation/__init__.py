"""Stage 3, evaluation: predicted word tags scored against gold, explained, and compared.

Scores are seqeval's (the scorer of record, equal to ``conlleval``), in both of its modes; Kayan adds
only what seqeval lacks: per-sentence counts, error categories, bootstrap intervals and significance.

Modules (each starts with a docstring saying what it holds):
    :mod:`~kayan.evaluation.metrics`           :func:`score` (seqeval's report), :func:`sentence_counts`.
    :mod:`~kayan.evaluation.error_analysis`    error categories, a type confusion matrix, worst sentences.
    :mod:`~kayan.evaluation.significance`      bootstrap intervals (micro and per type), paired bootstrap,
        approximate randomization.
    :mod:`~kayan.evaluation.predictions_file`  :func:`read_predictions` and :func:`predictions_text`: the
        conlleval-format ``token gold predicted`` file.
    :mod:`~kayan.evaluation.alignment`         gold and predictions checked against each other (words, gold
        tags, label sets).
    :mod:`~kayan.evaluation.scoring`           :func:`evaluate`: tags against gold → the report (``metrics.json``).
    :mod:`~kayan.evaluation.comparison`        :func:`compare`: two systems' tags → scores, tests, intervals
        (``compare.json``).
    :mod:`~kayan.evaluation.markdown`          ``report.md`` and ``compare.md``.
    :mod:`~kayan.evaluation.report`            ``report.html`` (:func:`render_html`).
    :mod:`~kayan.evaluation.curves`            ``curves.png`` of a run and compare's per-type chart.
    :mod:`~kayan.evaluation.output_folders`    the folders evaluate and compare write, atomically.
    :mod:`~kayan.evaluation.model_scoring`     :func:`evaluate_model`: a model opened, run over a labelled
        split and scored (torch).
    :mod:`~kayan.evaluation.systems`           :func:`evaluate_system` and :func:`compare_systems`: ``kayan
        evaluate`` and ``kayan compare``, outputs included, as library functions.

The names below are imported from their modules on first use (:mod:`kayan.lazy`).
"""

from kayan.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "metrics": ["entity_types", "score", "sentence_counts"],
    "error_analysis": ["confusion_matrix", "error_counts"],
    "significance": ["approximate_randomization", "bootstrap_f1", "paired_bootstrap", "type_intervals"],
    "predictions_file": ["predictions_text", "read_predictions"],
    "alignment": ["check_alignment", "label_set_warning"],
    "scoring": ["evaluate"],
    "comparison": ["compare"],
    "markdown": ["compare_markdown", "report_markdown"],
    "output_folders": ["write_comparison", "write_evaluation"],
    "model_scoring": ["evaluate_model"],
    "systems": ["compare_systems", "evaluate_system"],
    "report": ["render_html"],
    "curves": ["write_compare_chart", "write_curves"],
})
