"""Outlier detection fitted on the reference: scikit-learn's IsolationForest (default) or
OneClassSVM. Rows are numerical features plus categorical slot codes; missing values are
imputed with the reference medians; features are standardised for the SVM.

Why our own scoring: importing scikit-learn's ensemble module costs the worker ~170 MB of
resident memory for the life of the process (measured: 25 MB numpy alone, 192 MB with
``sklearn.ensemble``), against a budget of 300 MB. So scikit-learn fits the model once, in a
short-lived child process, and hands back its arrays; the worker scores with the numpy code
below, which repeats scikit-learn's arithmetic (tests/unit/worker/test_outliers.py checks
that its outlier flags equal ``predict`` on seeded data).

Each evaluation scores a uniform sample of the window (the reservoir, at most
``outliers.sampleSize`` rows): the ratio's standard error is sqrt(p(1-p)/n), about 0.005 at
p = 0.05 and n = 2000."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mm_api.sections import OutlierSpec

from .child import in_child

MAX_FIT_ROWS = 20_000  # enough for a stable fit; keeps start-up to a second or two


@dataclass
class IsolationTrees:
    """The fitted trees of an IsolationForest, as arrays."""

    trees: list[dict[str, np.ndarray]]  # feature, threshold, left, right, path (depth + c(n))
    features: list[np.ndarray] | None  # per-tree columns when the forest subsamples them
    denominator: float  # n_trees * c(max_samples)
    offset: float  # score_samples below this is an outlier

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's ``IsolationForest.score_samples`` (higher is more normal)."""
        x32 = x.astype(np.float32).astype(np.float64)  # sklearn scores in float32
        n = x32.shape[0]
        depths = np.zeros(n)
        rows = np.arange(n)
        for t, tree in enumerate(self.trees):
            xs = x32 if self.features is None else x32[:, self.features[t]]
            node = np.zeros(n, dtype=np.int64)
            left, right = tree["left"], tree["right"]
            while True:
                inner = left[node] != -1
                if not inner.any():
                    break
                at = node[inner]
                go_left = xs[rows[inner], tree["feature"][at]] <= tree["threshold"][at]
                node[inner] = np.where(go_left, left[at], right[at])
            depths += tree["path"][node] - 1.0
        if self.denominator == 0:
            return -np.ones(n)
        return -(2.0 ** (-depths / self.denominator))


@dataclass
class RbfSvm:
    """A fitted OneClassSVM with an RBF kernel, as arrays."""

    support: np.ndarray
    dual: np.ndarray
    intercept: float
    gamma: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        sq = (
            (x * x).sum(1)[:, None]
            + (self.support * self.support).sum(1)[None, :]
            - 2 * x @ self.support.T
        )
        return np.exp(-self.gamma * np.maximum(sq, 0.0)) @ self.dual + self.intercept


@dataclass
class OutlierDetector:
    method: str
    medians: np.ndarray
    mean: np.ndarray | None  # standardisation (SVM only)
    scale: np.ndarray | None
    model: IsolationTrees | RbfSvm

    @classmethod
    def fit(cls, spec: OutlierSpec, rows: np.ndarray, seed: int = 0) -> OutlierDetector | None:
        """Fit on reference rows (in a child process); None when there is nothing to fit."""
        fit = OutlierFit.of(spec, rows, seed)
        return None if fit is None else fit.detector(in_child(fit.run))

    def outlier_flags(self, rows: np.ndarray) -> np.ndarray:
        """True for each row scikit-learn's ``predict`` would call an outlier (-1)."""
        if rows.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        x = _impute(rows, self.medians)
        if isinstance(self.model, RbfSvm):
            assert self.mean is not None and self.scale is not None
            return self.model.decision((x - self.mean) / self.scale) < 0
        return self.model.score_samples(x) < self.model.offset

    def ratio(self, rows: np.ndarray) -> float | None:
        flags = self.outlier_flags(rows)
        return float(flags.mean()) if flags.size else None


@dataclass
class OutlierFit:
    """What fitting a detector needs, as numpy arrays: the rows to fit on, imputed, and their
    medians. :meth:`run` fits them with scikit-learn (where scikit-learn may be imported: a
    child process), :meth:`detector` is the detector made of what it returns."""

    method: str
    contamination: float
    x: np.ndarray
    medians: np.ndarray
    seed: int

    @classmethod
    def of(cls, spec: OutlierSpec, rows: np.ndarray, seed: int = 0) -> OutlierFit | None:
        """The fit of a detector on reference rows; None when there is nothing to fit."""
        if rows.size == 0 or rows.shape[1] == 0:
            return None
        rng = np.random.default_rng(seed)
        if rows.shape[0] > MAX_FIT_ROWS:
            rows = rows[rng.choice(rows.shape[0], MAX_FIT_ROWS, replace=False)]
        medians = np.nanmedian(rows, axis=0)
        medians = np.where(np.isfinite(medians), medians, 0.0)
        return cls(spec.method, spec.contamination, _impute(rows, medians), medians, seed)

    def run(self) -> dict[str, Any]:
        return _fit_with_sklearn(self.method, self.contamination, self.x, self.seed)

    def detector(self, fitted: dict[str, Any]) -> OutlierDetector:
        if self.method == "one-class-svm":
            model: IsolationTrees | RbfSvm = RbfSvm(**fitted["model"])
        else:
            model = IsolationTrees(**fitted["model"])
        return OutlierDetector(
            self.method, self.medians, fitted.get("mean"), fitted.get("scale"), model
        )


def _impute(rows: np.ndarray, medians: np.ndarray) -> np.ndarray:
    x = np.array(rows, dtype=np.float64, copy=True)
    bad = ~np.isfinite(x)
    if bad.any():
        x[bad] = np.broadcast_to(medians, x.shape)[bad]
    return x


def _fit_with_sklearn(
    method: str, contamination: float, x: np.ndarray, seed: int
) -> dict[str, Any]:
    """Runs in the child process: the only place scikit-learn is imported."""
    if method == "one-class-svm":
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import OneClassSVM

        scaler = StandardScaler().fit(x)
        svm = OneClassSVM(nu=contamination, gamma="scale").fit(scaler.transform(x))
        return {
            "mean": scaler.mean_,
            "scale": scaler.scale_,
            "model": {
                "support": svm.support_vectors_,
                "dual": svm.dual_coef_.ravel(),
                "intercept": float(svm.intercept_[0]),
                "gamma": float(svm._gamma),
            },
        }
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(
        n_estimators=100, contamination=contamination, random_state=seed, n_jobs=1
    )
    forest.fit(x)
    trees = [
        {
            "feature": est.tree_.feature.astype(np.int64),
            "threshold": est.tree_.threshold,
            "left": est.tree_.children_left.astype(np.int64),
            "right": est.tree_.children_right.astype(np.int64),
            "path": np.asarray(depths, dtype=np.float64) + np.asarray(avg, dtype=np.float64),
        }
        for est, depths, avg in zip(
            forest.estimators_,
            forest._decision_path_lengths,
            forest._average_path_length_per_tree,
            strict=True,
        )
    ]
    subsample = forest._max_features != x.shape[1]
    n = forest._max_samples
    c = (
        0.0
        if n <= 1
        else 1.0
        if n == 2
        else 2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n
    )
    return {
        "model": {
            "trees": trees,
            "features": [np.asarray(f) for f in forest.estimators_features_] if subsample else None,
            "denominator": float(len(forest.estimators_) * c),
            "offset": float(forest.offset_),
        }
    }
