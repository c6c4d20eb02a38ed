"""Mergeable model-quality accumulators and the metrics computed from them.

States are sums, so a window is the merge of its buckets. Metrics are pure functions of a
state, matching scikit-learn (``zero_division=0``; classes absent from both truth and
predictions are left out of macro/weighted averages, like sklearn with ``labels=None``).
Every metric takes ``min_count`` and returns None below it, or when undefined (e.g. ROC-AUC
with one class only); the caller decides the minimum.

Exact: confusion matrix, accuracy, precision, recall, F1 (binary / macro / weighted / micro),
log loss (probabilities clipped to ``[eps, 1 - eps]`` with float64 eps, one-column binary
probabilities expanded to ``[1 - p, p]``, as sklearn), MAE, MSE, RMSE, R2, MAPE.

Binned: ROC-AUC from per-class score histograms (1000 uniform bins on [0, 1] by default):
``P(score_pos > score_neg) + 0.5 * P(same bin)``, which is the trapezoid rule over bins and
treats pairs within a bin as ties, as sklearn does for tied scores. The error is at most half
the share of positive-negative pairs sharing a bin. Measured against
``sklearn.metrics.roc_auc_score`` on binary and 3-class data with continuous scores (AUC 0.58 to
0.99, 2 000 and 50 000 rows, 10 seeds): max error 6e-5; tested at 5e-4. Scores that sit on bin
centres are exact. Scores piled into very few bins (e.g. a saturated model with most
probabilities above 0.999) lose resolution: use more bins then.
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

Average = Literal["binary", "macro", "weighted", "micro"]
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: sklearn clips probabilities to [eps, 1 - eps] with the machine epsilon of float64.
_EPS = float(np.finfo(np.float64).eps)


class ClassificationState:
    """Confusion matrix, log-loss sum and per-class score histograms of a classifier.

    ``confusion[i, j]`` counts true class ``i`` predicted as ``j`` (sklearn's layout).
    ``score_all[c]`` is the histogram of the probability of class ``c`` over all rows with
    probabilities, ``score_pos[c]`` the same over rows whose true class is ``c``.
    """

    def __init__(self, n_classes: int, n_score_bins: int = 1000) -> None:
        if n_classes < 2 or n_score_bins < 1:
            raise ValueError("need n_classes >= 2 and n_score_bins >= 1")
        self.n_classes = int(n_classes)
        self.n_score_bins = int(n_score_bins)
        self.confusion: IntArray = np.zeros((n_classes, n_classes), dtype=np.int64)
        self.n_proba = 0
        self.log_loss_sum = 0.0
        self.score_all: IntArray = np.zeros((n_classes, n_score_bins), dtype=np.int64)
        self.score_pos: IntArray = np.zeros((n_classes, n_score_bins), dtype=np.int64)

    @property
    def n(self) -> int:
        """Rows counted in the confusion matrix."""
        return int(self.confusion.sum())

    def _indices(self, values: ArrayLike, name: str) -> IntArray:
        a = np.asarray(values).ravel()
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class indices")
        a = a.astype(np.int64)
        if a.size and (a.min() < 0 or a.max() >= self.n_classes):
            raise ValueError(f"{name} has class indices outside 0..{self.n_classes - 1}")
        return a

    def _proba(self, proba: ArrayLike, n: int) -> FloatArray:
        p = np.asarray(proba, dtype=np.float64)
        if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
            if self.n_classes != 2:
                raise ValueError("one-column probabilities need n_classes == 2")
            p1 = p.reshape(-1)
            p = np.column_stack([1.0 - p1, p1])
        if p.shape != (n, self.n_classes):
            raise ValueError(f"proba must have shape ({n}, {self.n_classes}) or ({n},)")
        return p

    def update(
        self, y_true_idx: ArrayLike, y_pred_idx: ArrayLike, proba: ArrayLike | None = None
    ) -> None:
        """Add a batch: true and predicted class indices and, optionally, class probabilities
        (shape ``(n, n_classes)``, or ``(n,)`` = probability of class 1 when binary)."""
        t = self._indices(y_true_idx, "y_true_idx")
        p = self._indices(y_pred_idx, "y_pred_idx")
        if t.size != p.size:
            raise ValueError("y_true_idx and y_pred_idx differ in length")
        c = self.n_classes
        self.confusion += np.bincount(t * c + p, minlength=c * c).reshape(c, c)
        if proba is None or t.size == 0:
            return
        probs = self._proba(proba, t.size)
        rows = np.arange(t.size)
        clipped = np.clip(probs, _EPS, 1 - _EPS)
        self.log_loss_sum += float(-np.sum(np.log(clipped[rows, t])))
        self.n_proba += int(t.size)
        b = self.n_score_bins
        # Bin k is [k/b, (k+1)/b); a score of exactly 1 joins the last bin.
        bins = np.clip(np.floor(probs * b), 0, b - 1).astype(np.int64)
        flat = bins + np.arange(c, dtype=np.int64)[None, :] * b
        self.score_all += np.bincount(flat.ravel(), minlength=c * b).reshape(c, b)
        self.score_pos += np.bincount(flat[rows, t], minlength=c * b).reshape(c, b)

    def merge(self, other: ClassificationState) -> Self:
        """Add another state of the same shape into this one (in place); returns self."""
        if (other.n_classes, other.n_score_bins) != (self.n_classes, self.n_score_bins):
            raise ValueError("cannot merge states with different classes or score bins")
        self.confusion += other.confusion
        self.n_proba += other.n_proba
        self.log_loss_sum += other.log_loss_sum
        self.score_all += other.score_all
        self.score_pos += other.score_pos
        return self

    def __iadd__(self, other: ClassificationState) -> Self:
        return self.merge(other)

    def copy(self) -> ClassificationState:
        """Independent copy."""
        return ClassificationState(self.n_classes, self.n_score_bins).merge(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain form for snapshots: numpy arrays are views (encode them, e.g. with orjson's
        OPT_SERIALIZE_NUMPY, before the state changes)."""
        return {
            "n_classes": self.n_classes,
            "n_score_bins": self.n_score_bins,
            "confusion": self.confusion,
            "n_proba": self.n_proba,
            "log_loss_sum": self.log_loss_sum,
            "score_all": self.score_all,
            "score_pos": self.score_pos,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassificationState:
        """Inverse of :meth:`to_dict`."""
        s = cls(d["n_classes"], d["n_score_bins"])
        s.confusion = np.asarray(d["confusion"], dtype=np.int64).reshape(s.confusion.shape)
        s.n_proba = int(d["n_proba"])
        s.log_loss_sum = float(d["log_loss_sum"])
        s.score_all = np.asarray(d["score_all"], dtype=np.int64).reshape(s.score_all.shape)
        s.score_pos = np.asarray(d["score_pos"], dtype=np.int64).reshape(s.score_pos.shape)
        return s


def _div(num: FloatArray, den: FloatArray) -> FloatArray:
    """num / den with 0 where den == 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def _per_class(state: ClassificationState) -> tuple[FloatArray, FloatArray, FloatArray]:
    cm = state.confusion.astype(np.float64)
    return np.diag(cm).copy(), cm.sum(axis=0), cm.sum(axis=1)  # tp, predicted, true


def _prf(
    state: ClassificationState, which: str, average: Average, pos_label: int, min_count: int
) -> float | None:
    if state.n < max(min_count, 1):
        return None
    tp, pred, true = _per_class(state)
    if average == "micro":
        tp, pred, true = tp.sum(keepdims=True), pred.sum(keepdims=True), true.sum(keepdims=True)
    if which == "precision":
        score = _div(tp, pred)
    elif which == "recall":
        score = _div(tp, true)
    else:
        score = _div(2 * tp, pred + true)
    if average == "micro":
        return float(score[0])
    if average == "binary":
        if state.n_classes != 2:
            raise ValueError("average='binary' needs n_classes == 2")
        return float(score[pos_label])
    present = (pred + true) > 0
    if average == "macro":
        return float(score[present].mean())
    if average == "weighted":
        return float(np.sum(score * true) / true.sum())
    raise ValueError(f"unknown average {average!r}")


def accuracy(state: ClassificationState, min_count: int = 1) -> float | None:
    """Share of rows whose predicted class is the true class."""
    if state.n < max(min_count, 1):
        return None
    return float(np.trace(state.confusion) / state.n)


def precision(
    state: ClassificationState, average: Average = "binary", pos_label: int = 1, min_count: int = 1
) -> float | None:
    """Precision, as ``sklearn.metrics.precision_score(..., zero_division=0)``."""
    return _prf(state, "precision", average, pos_label, min_count)


def recall(
    state: ClassificationState, average: Average = "binary", pos_label: int = 1, min_count: int = 1
) -> float | None:
    """Recall, as ``sklearn.metrics.recall_score(..., zero_division=0)``."""
    return _prf(state, "recall", average, pos_label, min_count)


def f1(
    state: ClassificationState, average: Average = "binary", pos_label: int = 1, min_count: int = 1
) -> float | None:
    """F1 = 2 tp / (predicted + true), as ``sklearn.metrics.f1_score(..., zero_division=0)``."""
    return _prf(state, "f1", average, pos_label, min_count)


def log_loss(state: ClassificationState, min_count: int = 1) -> float | None:
    """Mean cross-entropy over rows that came with probabilities (``sklearn.metrics.log_loss``)."""
    if state.n_proba < max(min_count, 1):
        return None
    return state.log_loss_sum / state.n_proba


def _binned_auc(pos: IntArray, all_: IntArray) -> float | None:
    p = pos.astype(np.float64)
    n = all_.astype(np.float64) - p
    n_pos, n_neg = p.sum(), n.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    neg_below = np.cumsum(n) - n
    return float(np.sum(p * (neg_below + 0.5 * n)) / (n_pos * n_neg))


def roc_auc(state: ClassificationState, min_count: int = 1) -> float | None:
    """ROC-AUC from the score histograms: class 1 vs 0 when binary, else one-vs-rest macro
    (``roc_auc_score(multi_class="ovr", average="macro")``). None if a class has no positive
    or no negative row."""
    if state.n_proba < max(min_count, 1):
        return None
    if state.n_classes == 2:
        return _binned_auc(state.score_pos[1], state.score_all[1])
    aucs = [_binned_auc(state.score_pos[c], state.score_all[c]) for c in range(state.n_classes)]
    if any(a is None for a in aucs):
        return None
    return float(np.mean([a for a in aucs if a is not None]))


class RegressionState:
    """Exact, mergeable sums for regression metrics.

    Keeps n, the mean and M2 of ``y_true`` (Chan's parallel update rather than raw sums of
    squares, which would lose R2's precision for targets with a large mean), and the sums of
    ``err``, ``|err|``, ``err^2`` and ``|err| / max(|y_true|, eps)`` with ``err = y_pred -
    y_true``. Pairs with NaN/inf on either side are counted in ``n_missing`` and skipped.
    """

    def __init__(self) -> None:
        self.n = 0
        self.n_missing = 0
        self.mean_y = 0.0
        self.m2_y = 0.0
        self.sum_err = 0.0
        self.sum_abs_err = 0.0
        self.sum_sq_err = 0.0
        self.sum_ape = 0.0

    def update(self, y_true: ArrayLike, y_pred: ArrayLike) -> None:
        """Add a batch of (true, predicted) values."""
        t = np.asarray(y_true, dtype=np.float64).ravel()
        p = np.asarray(y_pred, dtype=np.float64).ravel()
        if t.size != p.size:
            raise ValueError("y_true and y_pred differ in length")
        ok = np.isfinite(t) & np.isfinite(p)
        if not ok.all():
            self.n_missing += int(t.size - ok.sum())
            t, p = t[ok], p[ok]
        if t.size == 0:
            return
        err = p - t
        abs_err = np.abs(err)
        mean_b = float(t.mean())
        m2_b = float(np.sum((t - mean_b) ** 2))
        self._merge_moments(int(t.size), mean_b, m2_b)
        self.sum_err += float(err.sum())
        self.sum_abs_err += float(abs_err.sum())
        self.sum_sq_err += float(np.sum(err * err))
        self.sum_ape += float(np.sum(abs_err / np.maximum(np.abs(t), _EPS)))

    def _merge_moments(self, n_b: int, mean_b: float, m2_b: float) -> None:
        n_a = self.n
        n = n_a + n_b
        if n_b == 0:
            return
        delta = mean_b - self.mean_y
        self.mean_y += delta * n_b / n
        self.m2_y += m2_b + delta * delta * n_a * n_b / n
        self.n = n

    def merge(self, other: RegressionState) -> Self:
        """Add another state into this one (in place); returns self."""
        self._merge_moments(other.n, other.mean_y, other.m2_y)
        self.n_missing += other.n_missing
        self.sum_err += other.sum_err
        self.sum_abs_err += other.sum_abs_err
        self.sum_sq_err += other.sum_sq_err
        self.sum_ape += other.sum_ape
        return self

    def __iadd__(self, other: RegressionState) -> Self:
        return self.merge(other)

    def copy(self) -> RegressionState:
        """Independent copy."""
        return RegressionState().merge(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain form for snapshots: numpy arrays are views (encode them, e.g. with orjson's
        OPT_SERIALIZE_NUMPY, before the state changes)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegressionState:
        """Inverse of :meth:`to_dict`."""
        s = cls()
        for key in vars(s):
            setattr(s, key, type(getattr(s, key))(d[key]))
        return s


def _enough(state: RegressionState, min_count: int) -> bool:
    return state.n >= max(min_count, 1)


def mean_error(state: RegressionState, min_count: int = 1) -> float | None:
    """Mean of ``y_pred - y_true`` (bias; positive means over-prediction)."""
    return state.sum_err / state.n if _enough(state, min_count) else None


def mae(state: RegressionState, min_count: int = 1) -> float | None:
    """Mean absolute error."""
    return state.sum_abs_err / state.n if _enough(state, min_count) else None


def mse(state: RegressionState, min_count: int = 1) -> float | None:
    """Mean squared error."""
    return state.sum_sq_err / state.n if _enough(state, min_count) else None


def rmse(state: RegressionState, min_count: int = 1) -> float | None:
    """Root mean squared error (``sklearn.metrics.root_mean_squared_error``)."""
    m = mse(state, min_count)
    return None if m is None else float(np.sqrt(m))


def mape(state: RegressionState, min_count: int = 1) -> float | None:
    """Mean absolute percentage error as a fraction, with sklearn's ``max(|y|, eps)``."""
    return state.sum_ape / state.n if _enough(state, min_count) else None


def r2(state: RegressionState, min_count: int = 2) -> float | None:
    """Coefficient of determination. Needs at least 2 rows (sklearn returns NaN below);
    constant targets give 1.0 for a perfect fit else 0.0 (sklearn's ``force_finite``)."""
    if state.n < max(min_count, 2):
        return None
    if state.m2_y == 0:
        return 1.0 if state.sum_sq_err == 0 else 0.0
    return 1.0 - state.sum_sq_err / state.m2_y
