"""The folders ``kayan evaluate --out`` and ``kayan compare --out`` write, each as a whole or not at all.

An evaluation folder holds ``predictions.txt``, ``metrics.json``, ``report.md`` (and ``report.html``);
a comparison folder ``compare.json``, ``compare.md`` and ``compare.png``. Each is built beside its
place and swapped in (:func:`kayan.outputs.folder`): a folder of the same kind is replaced, anything
else that is not empty is refused, and a failure leaves what was there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from kayan.atomic import write_text
from kayan.data.sentence import Sentence
from kayan.evaluation.curves import write_compare_chart
from kayan.evaluation.markdown import compare_markdown, report_markdown
from kayan.evaluation.predictions_file import predictions_text
from kayan.evaluation.report import render_html
from kayan.outputs import COMPARISON, EVALUATION, folder

OUT_FIX = "choose a new or empty --out folder"  # the fix when --out is not a folder evaluate or compare may write


def write_evaluation(
    report: dict, gold: Sequence[Sentence], pred_tags: Sequence[Sequence[str]], out_dir: str | os.PathLike,
    *, html: bool = False, inputs: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write ``predictions.txt``, ``metrics.json`` and ``report.md`` into ``out_dir``, atomically.

    Args:
        report: the result of :func:`kayan.evaluation.scoring.evaluate`.
        gold: the gold sentences that were scored.
        pred_tags: the predicted tags that were scored.
        out_dir: the folder to create; an evaluation folder already there is replaced as a whole, anything
            else that is not empty is refused (:func:`kayan.outputs.check_replaceable`).
        html: also write ``report.html`` (:mod:`kayan.evaluation.report`: sentences with entities and errors marked).
        inputs: what the scores were read from (model, data, predictions file), which ``out_dir`` may not hold.

    Returns:
        The folder's path. If anything fails, ``out_dir`` keeps its previous content (or stays absent).
    """
    with folder(out_dir, EVALUATION, inputs=inputs, overwrite=True, fix=OUT_FIX) as tmp:
        (tmp / "predictions.txt").write_text(predictions_text(gold, pred_tags), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(report_markdown(report), encoding="utf-8")
        if html:
            (tmp / "report.html").write_text(render_html(report, gold, pred_tags), encoding="utf-8")
    return Path(out_dir)


def write_comparison(result: dict, out_dir: str | os.PathLike, *, inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Write ``compare.json``, ``compare.md`` and ``compare.png`` into ``out_dir``, atomically.

    Args:
        result: the result of :func:`kayan.evaluation.comparison.compare`.
        out_dir: the folder to create; a comparison folder already there is replaced as a whole.
        inputs: the systems and data compared, which ``out_dir`` may not hold.

    Returns:
        The folder's path. If anything fails, ``out_dir`` keeps its previous content (or stays absent).
    """
    with folder(out_dir, COMPARISON, inputs=inputs, overwrite=True, fix=OUT_FIX) as tmp:
        write_text(tmp / "compare.json", json.dumps(result, ensure_ascii=False, indent=2))
        write_text(tmp / "compare.md", compare_markdown(result))
        write_compare_chart(result, tmp / "compare.png")
    return Path(out_dir)
