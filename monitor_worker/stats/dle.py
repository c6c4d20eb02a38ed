"""Direct loss estimation (DLE): a regressor's MAE and RMSE without labels.

NannyML fits, on the labelled reference, one gradient-boosting model of the absolute error
``|y - y_hat|`` and one of the squared error from the features and the prediction; a window's
estimated MAE is the mean of the first model's (clipped at 0) outputs, its RMSE the root of
the second's mean. We fit scikit-learn's ``HistGradientBoostingRegressor`` instead of
LightGBM (:func:`monitor_worker.estimators.fit_dle`, in a child process) and score its trees
here with numpy (:class:`TreeEnsemble`, equal to ``predict``; tested).

Where scoring runs: scoring is a walk down every tree (about 100 trees of depth ~10), tens of
microseconds per record, several times the whole ingest path's cost per record (~7 us). So a
window's estimate comes from a uniform sample of its rows (the bucket reservoirs the worker
already keeps, with the prediction as one more column), not from every record:
:meth:`LossState.from_rows` scores a bucket's sample and keeps the sums, weighted to the
bucket's record count; windows add those states up. The sample adds an error of about
``std(estimated loss) / sqrt(sample size)``, reported beside NannyML's sampling error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bands import Estimate, Thresholds, make_estimate

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
DLEMetric = Literal["mae", "rmse"]
DLE_METRICS: tuple[DLEMetric, ...] = ("mae", "rmse")


@dataclass
class TreeEnsemble:
    """The trees of a fitted ``HistGradientBoostingRegressor`` (numerical splits), flattened
    into one node table so all trees are walked at once: ``x[feature] <= threshold`` goes
    ``left``, NaN goes left when ``missing_left``. Leaves point to themselves, so walking
    ``depth`` steps lands every row on a leaf of every tree. The prediction is ``baseline``
    plus the sum of the leaf values (which already include the learning rate)."""

    feature: IntArray
    threshold: FloatArray
    missing_left: NDArray[np.bool_]
    left: IntArray
    right: IntArray
    value: FloatArray
    roots: IntArray
    depth: int
    baseline: float

    def predict(self, x: FloatArray) -> FloatArray:
        """``HistGradientBoostingRegressor.predict`` of the rows of ``x``."""
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        if n == 0 or self.roots.size == 0:
            return np.full(n, self.baseline)
        node = np.broadcast_to(self.roots, (n, self.roots.size)).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            v = x[rows, self.feature[node]]
            go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            node = np.where(go_left, self.left[node], self.right[node])
        return self.baseline + self.value[node].sum(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Plain form. JSON has no infinity, and "NaN goes right, every value left" splits have
        an infinite threshold: those are written as the largest float and read back."""
        d = dict(vars(self))
        d["threshold"] = np.where(np.isposinf(self.threshold), _FLOAT_MAX, self.threshold)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TreeEnsemble:
        """Inverse of :meth:`to_dict`."""
        return cls(
            feature=np.asarray(d["feature"], dtype=np.int64),
            threshold=_inf_back(np.asarray(d["threshold"], dtype=np.float64)),
            missing_left=np.asarray(d["missing_left"], dtype=bool),
            left=np.asarray(d["left"], dtype=np.int64),
            right=np.asarray(d["right"], dtype=np.int64),
            value=np.asarray(d["value"], dtype=np.float64),
            roots=np.asarray(d["roots"], dtype=np.int64),
            depth=int(d["depth"]),
            baseline=float(d["baseline"]),
        )


_FLOAT_MAX = float(np.finfo(np.float64).max)


def _inf_back(threshold: FloatArray) -> FloatArray:
    return np.where(threshold == _FLOAT_MAX, np.inf, threshold)


@dataclass
class DirectLossModel:
    """What DLE learns from the reference. Rows are the features (numerical values and
    categorical slot codes, NaN for missing) followed by the prediction as the last column.
    ``sampling`` holds NannyML's components: ``mae`` = std of the reference's absolute
    errors, ``rmse`` = (std, mean) of its squared errors."""

    n_features: int
    abs_error: TreeEnsemble
    squared_error: TreeEnsemble
    sampling: dict[str, Any]
    thresholds: dict[str, Thresholds]
    chunk_size: int

    @property
    def width(self) -> int:
        """Columns of a row: the features and the prediction."""
        return self.n_features + 1

    def losses(self, rows: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Estimated absolute and squared error of each row, clipped at 0 like NannyML."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.width:
            raise ValueError(f"rows must have shape (n, {self.width}): features then prediction")
        return (
            np.maximum(self.abs_error.predict(x), 0.0),
            np.maximum(self.squared_error.predict(x), 0.0),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain form, so the fitted model can be cached beside a snapshot."""
        return {
            "n_features": self.n_features,
            "abs_error": self.abs_error.to_dict(),
            "squared_error": self.squared_error.to_dict(),
            "sampling": {k: list(np.atleast_1d(v)) for k, v in self.sampling.items()},
            "thresholds": {k: t.to_dict() for k, t in self.thresholds.items()},
            "chunk_size": self.chunk_size,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DirectLossModel:
        """Inverse of :meth:`to_dict`."""
        sampling = {k: tuple(float(x) for x in v) for k, v in d["sampling"].items()}
        return cls(
            n_features=int(d["n_features"]),
            abs_error=TreeEnsemble.from_dict(d["abs_error"]),
            squared_error=TreeEnsemble.from_dict(d["squared_error"]),
            sampling={"mae": sampling["mae"][0], "rmse": sampling["rmse"]},
            thresholds={k: Thresholds.from_dict(t) for k, t in d["thresholds"].items()},
            chunk_size=int(d["chunk_size"]),
        )


class LossState:
    """Mergeable sums of estimated losses. ``n`` is the records the state stands for, ``m``
    the rows actually scored (``m == n`` when every record was scored); the sums are over
    scored rows, so the window's mean is ``sum / m`` per bucket, weighted by ``n``. To keep
    that exact across buckets of different sampling rates the sums are stored pre-weighted:
    ``abs_sum = n/m * sum(|e|)`` and so on, so a merge is plain addition."""

    def __init__(self, model: DirectLossModel) -> None:
        self.model = model
        self.n = 0
        self.m = 0
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        self.abs_var_sum = 0.0  # n^2/m * var(estimated |e|): for the sample's own error
        self.sq_var_sum = 0.0

    @classmethod
    def from_rows(cls, model: DirectLossModel, rows: ArrayLike, n: int | None = None) -> LossState:
        """Score ``rows`` (a uniform sample, or all of a bucket's records) standing for ``n``
        records (default: the rows themselves)."""
        s = cls(model)
        s.update(rows, n)
        return s

    def update(self, rows: ArrayLike, n: int | None = None) -> None:
        """Add scored rows standing for ``n`` records (default: as many as rows)."""
        x = np.asarray(rows, dtype=np.float64)
        m = x.shape[0] if x.ndim == 2 else 0
        n = m if n is None else int(n)
        if m == 0:
            if n:
                raise ValueError("cannot stand for records with an empty sample")
            return
        abs_e, sq_e = self.model.losses(x)
        w = n / m
        self.n += n
        self.m += m
        self.abs_sum += w * float(abs_e.sum())
        self.sq_sum += w * float(sq_e.sum())
        # Without-replacement sample of m out of n: the sum's variance is
        # n^2 (1 - m/n) var / m; m == n (every record scored) adds nothing.
        fpc = 1.0 - m / n if n else 0.0
        self.abs_var_sum += n * n * fpc * float(abs_e.var()) / m
        self.sq_var_sum += n * n * fpc * float(sq_e.var()) / m

    def merge(self, other: LossState) -> Self:
        """Add another state into this one (in place); returns self."""
        if other.model.width != self.model.width:
            raise ValueError("cannot merge loss states of different models")
        for key in _SUMS:
            setattr(self, key, getattr(self, key) + getattr(other, key))
        return self

    def __iadd__(self, other: LossState) -> Self:
        return self.merge(other)

    def copy(self) -> LossState:
        """Independent copy sharing the (immutable) model."""
        return LossState(self.model).merge(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain form for snapshots (the model is not copied)."""
        return {key: getattr(self, key) for key in _SUMS}

    @classmethod
    def from_dict(cls, d: dict[str, Any], model: DirectLossModel) -> LossState:
        """Inverse of :meth:`to_dict`."""
        s = cls(model)
        for key in _SUMS:
            setattr(s, key, type(getattr(s, key))(d[key]))
        return s


_SUMS = ("n", "m", "abs_sum", "sq_sum", "abs_var_sum", "sq_var_sum")


def expected_value(state: LossState, metric: DLEMetric) -> float:
    """Estimated MAE (mean estimated absolute error) or RMSE (root of the mean estimated
    squared error) of the records the state stands for."""
    if state.n == 0:
        return float("nan")
    if metric == "mae":
        return state.abs_sum / state.n
    if metric == "rmse":
        return float(np.sqrt(state.sq_sum / state.n))
    raise ValueError(f"unknown DLE metric {metric!r}")


def sampling_error(model: DirectLossModel, metric: DLEMetric, n: int) -> float:
    """NannyML's sampling error for a window of ``n`` records:
    ``std(|e|) / sqrt(n)`` for MAE, ``sqrt(std(e^2)^2 / (4 n mean(e^2)))`` for RMSE."""
    if n <= 0:
        return float("nan")
    if metric == "mae":
        return float(model.sampling["mae"] / np.sqrt(n))
    std, mean = model.sampling["rmse"]
    return float(np.sqrt(std * std / (4 * n * mean))) if mean > 0 else float("nan")


def sample_error(state: LossState, metric: DLEMetric) -> float:
    """Standard error added by scoring a sample instead of every record (0 when all were
    scored); for RMSE propagated through the square root."""
    if state.n == 0:
        return float("nan")
    if metric == "mae":
        return float(np.sqrt(state.abs_var_sum) / state.n)
    se_mse = np.sqrt(state.sq_var_sum) / state.n
    rmse = expected_value(state, "rmse")
    return float(se_mse / (2 * rmse)) if rmse > 0 else 0.0


def estimate(state: LossState, metric: DLEMetric, min_count: int = 1) -> Estimate | None:
    """Estimated MAE or RMSE of a window with NannyML's confidence band (its sampling error;
    :func:`sample_error` is reported apart) and reference thresholds; None below
    ``min_count`` records."""
    if state.n < max(min_count, 1):
        return None
    value = expected_value(state, metric)
    if not np.isfinite(value):
        return None
    model = state.model
    return make_estimate(
        value,
        sampling_error(model, metric, state.n),
        model.thresholds.get(metric, Thresholds(None, None)),
        state.n,
        low=0.0,
    )


def estimate_all(state: LossState, min_count: int = 1) -> dict[str, Estimate]:
    """Every DLE metric defined on this window."""
    out: dict[str, Estimate] = {}
    for metric in DLE_METRICS:
        e = estimate(state, metric, min_count)
        if e is not None:
            out[metric] = e
    return out
