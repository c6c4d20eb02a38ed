"""Refusals for label-free estimation and multivariate drift that cannot work, each naming
the config field to change. Plain functions of what the config layer knows at start-up (the
task, the column names, the reference); each raises :class:`EstimationRefused` or returns.

The reference is anything with ``has(name)``, ``numbers(name)`` and ``categories(name)``, as
:class:`monitor_worker.reference.ReferenceData`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

#: Fewer labelled reference rows than this give no usable calibration, error model or
#: threshold band (NannyML splits the reference into 10 chunks for its thresholds).
MIN_REFERENCE_ROWS = 100


class ColumnSource(Protocol):
    def has(self, name: str) -> bool: ...
    def numbers(self, name: str) -> np.ndarray: ...
    def categories(self, name: str) -> tuple[np.ndarray, np.ndarray]: ...


class EstimationRefused(ValueError):
    """A configuration estimation cannot serve; ``field`` is the config path to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_OFF = "or set estimation.enabled: false"


def _labelled_rows(reference: ColumnSource, label_column: str, numeric: bool) -> np.ndarray:
    if numeric:
        return np.isfinite(reference.numbers(label_column))
    _, missing = reference.categories(label_column)
    return ~np.asarray(missing, dtype=bool)


def _need_labels(
    reference: ColumnSource | None, label_column: str, method: str, numeric: bool
) -> np.ndarray:
    if reference is None:
        raise EstimationRefused(
            "data.reference",
            f"{method} learns from a labelled reference and none is configured "
            f"(set data.reference, {_OFF})",
        )
    if not reference.has(label_column):
        raise EstimationRefused(
            "data.labelColumn",
            f"{method} needs labels in the reference, which has no column {label_column!r} "
            f"(set data.labelColumn to the label column, {_OFF})",
        )
    labelled = _labelled_rows(reference, label_column, numeric)
    if int(labelled.sum()) < MIN_REFERENCE_ROWS:
        raise EstimationRefused(
            "data.labelColumn",
            f"{method} needs at least {MIN_REFERENCE_ROWS} labelled reference rows; column "
            f"{label_column!r} has {int(labelled.sum())} ({_OFF})",
        )
    return labelled


def check_cbpe(
    task: str,
    reference: ColumnSource | None,
    label_column: str,
    score_columns: Sequence[str],
    records_have_scores: bool = True,
    prediction_column: str | None = None,
) -> None:
    """CBPE needs the model's scores in the records and a reference with labels and those
    scores (``score_columns``: the positive-class score when binary, one per class when
    multiclass, as the config layer names them), and, when ``prediction_column`` is given,
    the model's predictions (its expected confusion matrix is per predicted class)."""
    if task not in ("binary-classification", "multiclass-classification"):
        raise EstimationRefused(
            "model.task",
            f"CBPE estimates classifiers; the task is {task!r} (DLE serves regression)",
        )
    if not records_have_scores:
        raise EstimationRefused(
            "data.scoreColumn",
            f"CBPE estimates quality from the model's scores, and the records carry none "
            f"(send a score with each prediction, {_OFF})",
        )
    labelled = _need_labels(reference, label_column, "CBPE", numeric=False)
    assert reference is not None
    if not score_columns:
        raise EstimationRefused("data.scoreColumn", f"CBPE needs score columns ({_OFF})")
    for column in score_columns:
        if not reference.has(column):
            raise EstimationRefused(
                "data.scoreColumn",
                f"CBPE calibrates the scores on the reference, which has no column {column!r} "
                f"(add the model's scores to the reference, {_OFF})",
            )
        scored = np.isfinite(reference.numbers(column)) & labelled
        if int(scored.sum()) < MIN_REFERENCE_ROWS:
            raise EstimationRefused(
                "data.scoreColumn",
                f"CBPE needs at least {MIN_REFERENCE_ROWS} reference rows with both a label and "
                f"a score in {column!r}; there are {int(scored.sum())} ({_OFF})",
            )
    if prediction_column is not None:
        if not reference.has(prediction_column):
            raise EstimationRefused(
                "data.predictionColumn",
                f"CBPE learns from the model's predictions on the reference, which has no "
                f"column {prediction_column!r} ({_OFF})",
            )
        _, no_prediction = reference.categories(prediction_column)
        both = labelled & ~np.asarray(no_prediction, dtype=bool)
        if int(both.sum()) < MIN_REFERENCE_ROWS:
            raise EstimationRefused(
                "data.predictionColumn",
                f"CBPE needs at least {MIN_REFERENCE_ROWS} reference rows with a label and a "
                f"prediction; there are {int(both.sum())} ({_OFF})",
            )
    strings, missing = reference.categories(label_column)
    if np.unique(np.asarray(strings)[~np.asarray(missing, dtype=bool)]).size < 2:
        raise EstimationRefused(
            "data.labelColumn",
            f"the reference's labels in {label_column!r} hold a single class: CBPE cannot "
            f"calibrate scores against one class ({_OFF})",
        )


def check_dle(
    task: str, reference: ColumnSource | None, label_column: str, prediction_column: str
) -> None:
    """DLE needs a reference with numeric labels and the model's predictions."""
    if task != "regression":
        raise EstimationRefused(
            "model.task",
            f"DLE estimates regressors; the task is {task!r} (CBPE serves classifiers)",
        )
    labelled = _need_labels(reference, label_column, "DLE", numeric=True)
    assert reference is not None
    if not reference.has(prediction_column):
        raise EstimationRefused(
            "data.predictionColumn",
            f"DLE learns the error of the predictions, and the reference has no column "
            f"{prediction_column!r} ({_OFF})",
        )
    both = labelled & np.isfinite(reference.numbers(prediction_column))
    if int(both.sum()) < MIN_REFERENCE_ROWS:
        raise EstimationRefused(
            "data.predictionColumn",
            f"DLE needs at least {MIN_REFERENCE_ROWS} reference rows with a label and a "
            f"prediction; there are {int(both.sum())} ({_OFF})",
        )


def check_multivariate(features: Sequence[str], reference: ColumnSource | None) -> None:
    """PCA reconstruction needs a reference and at least two features (with one, the
    reconstruction says nothing per-feature drift does not)."""
    if len(features) < 2:
        which = f" ({features[0]!r})" if features else ""
        raise EstimationRefused(
            "drift.multivariate",
            f"multivariate drift needs at least two features; the model has {len(features)}"
            f"{which} (per-feature drift covers it; remove drift.multivariate)",
        )
    if reference is None:
        raise EstimationRefused(
            "data.reference",
            "multivariate drift is fitted on a reference and none is configured "
            "(set data.reference, or remove drift.multivariate)",
        )
