"""Seeded data sets for the estimation cross-check: the same arrays in the project's venv (our
implementation) and in NannyML's venv (tests/unit/stats/nannyml_record.py, bench/estimation.py).
numpy only, so both sides import it.

Every set is a reference (with labels) and an analysis period of equal chunks: the first half
unchanged, the second half under a covariate shift. ``P(y | x)`` never changes (no concept
shift), and the model's scores are a fixed monotone function of the true probability, so
once calibrated on the reference they stay calibrated under the shift: the premise of CBPE
and DLE. The scores are deliberately over-confident (a steeper sigmoid/softmax than the truth),
so NannyML decides the reference needs isotonic calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REFERENCE_ROWS = 50_000
CHUNK_ROWS = 5_000
CHUNKS = 10
FEATURES = 6


@dataclass
class ClassificationSet:
    x_ref: np.ndarray  # (n, FEATURES) float
    y_ref: np.ndarray  # class index
    pred_ref: np.ndarray
    score_ref: np.ndarray  # (n,) positive-class score, or (n, k)
    x: np.ndarray  # analysis
    y: np.ndarray  # held-back truth of the analysis period
    pred: np.ndarray
    score: np.ndarray
    n_classes: int
    chunk_rows: int = CHUNK_ROWS


@dataclass
class RegressionSet:
    x_ref: np.ndarray
    y_ref: np.ndarray
    pred_ref: np.ndarray
    x: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    chunk_rows: int = CHUNK_ROWS


@dataclass
class MultivariateSet:
    """Numerical features (with a few NaNs) and one categorical column (codes 0..4 as
    strings ``c0``..``c4``). Drift breaks the correlation of features 0 and 1 while keeping
    every marginal the same, so only a multivariate method sees it."""

    x_ref: np.ndarray  # (n, FEATURES) float, NaN = missing
    cat_ref: np.ndarray  # (n,) int codes
    x: np.ndarray
    cat: np.ndarray
    chunk_rows: int = CHUNK_ROWS
    categories: list[str] = field(default_factory=lambda: [f"c{i}" for i in range(5)])


def _correlated(rng: np.random.Generator, n: int, shift: np.ndarray | None = None) -> np.ndarray:
    cov = 0.5 * np.ones((FEATURES, FEATURES)) + 0.5 * np.eye(FEATURES)
    x = rng.multivariate_normal(np.zeros(FEATURES), cov, size=n, method="cholesky")
    return x if shift is None else x + shift


def _analysis_shifts(strength: float) -> list[np.ndarray]:
    half = CHUNKS // 2
    direction = np.linspace(1.0, -0.5, FEATURES)
    return [np.zeros(FEATURES)] * half + [
        direction * strength * (i + 1) / (CHUNKS - half) for i in range(CHUNKS - half)
    ]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def binary(seed: int = 7) -> ClassificationSet:
    """True ``P(y=1|x) = sigmoid(w.x - 0.5)``; the model scores ``sigmoid(1.8 (w.x - 0.5))``
    and predicts 1 above 0.5."""
    rng = np.random.default_rng(seed)
    w = np.array([1.0, -0.8, 0.6, 0.0, 0.4, -0.3])

    def label(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = x @ w - 0.5
        y = (rng.random(x.shape[0]) < _sigmoid(z)).astype(np.int64)
        score = _sigmoid(1.8 * z)
        return y, (score >= 0.5).astype(np.int64), score

    x_ref = _correlated(rng, REFERENCE_ROWS)
    y_ref, pred_ref, score_ref = label(x_ref)
    x = np.concatenate([_correlated(rng, CHUNK_ROWS, s) for s in _analysis_shifts(1.2)])
    y, pred, score = label(x)
    return ClassificationSet(x_ref, y_ref, pred_ref, score_ref, x, y, pred, score, 2)


def multiclass(seed: int = 11, k: int = 3) -> ClassificationSet:
    """True ``P(y|x) = softmax(x W)``; the model scores ``softmax(1.6 x W)`` and predicts the
    arg-max."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(scale=0.8, size=(FEATURES, k))

    def label(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits = x @ weights
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        u = np.asarray(rng.random(x.shape[0]))[:, None]
        y = np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), k - 1).astype(np.int64)
        s = np.exp(1.6 * (logits - logits.max(axis=1, keepdims=True)))
        s /= s.sum(axis=1, keepdims=True)
        return y, s.argmax(axis=1).astype(np.int64), s

    x_ref = _correlated(rng, REFERENCE_ROWS)
    y_ref, pred_ref, score_ref = label(x_ref)
    x = np.concatenate([_correlated(rng, CHUNK_ROWS, s) for s in _analysis_shifts(1.2)])
    y, pred, score = label(x)
    return ClassificationSet(x_ref, y_ref, pred_ref, score_ref, x, y, pred, score, k)


def regression(seed: int = 13) -> RegressionSet:
    """``y = f(x) + noise`` with noise that grows with ``|x0|``; the model predicts ``f(x)``
    plus a small bias in ``x2``. The shift moves rows towards large ``x0``: errors grow."""
    rng = np.random.default_rng(seed)

    def target(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = 2.0 * x[:, 0] + np.sin(2 * x[:, 1]) + 0.5 * x[:, 2] ** 2
        noise = rng.normal(size=x.shape[0]) * (0.3 + 0.6 * np.abs(x[:, 0]))
        return f + noise, f + 0.3 * x[:, 2]

    x_ref = _correlated(rng, REFERENCE_ROWS)
    y_ref, pred_ref = target(x_ref)
    x = np.concatenate([_correlated(rng, CHUNK_ROWS, s) for s in _analysis_shifts(1.0)])
    y, pred = target(x)
    return RegressionSet(x_ref, y_ref, pred_ref, x, y, pred)


def multivariate(seed: int = 17) -> MultivariateSet:
    """Reference: correlated normals. Drifted chunks: feature 1 is replaced by an independent
    draw with the same marginal (correlation with the others gone), for a share of rows
    growing from 40% to 100%."""
    rng = np.random.default_rng(seed)

    def categories(x: np.ndarray) -> np.ndarray:
        # The category follows feature 2, so it is part of the correlation structure.
        return np.clip(np.floor(x[:, 2] + 2.5), 0, 4).astype(np.int64)

    def with_missing(x: np.ndarray) -> np.ndarray:
        x = x.copy()
        x[rng.random(x.shape) < 0.01] = np.nan
        return x

    x_ref = _correlated(rng, REFERENCE_ROWS)
    cat_ref = categories(x_ref)
    chunks, cats = [], []
    half = CHUNKS // 2
    for i in range(CHUNKS):
        x = _correlated(rng, CHUNK_ROWS)
        cats.append(categories(x))
        if i >= half:
            share = 0.4 + 0.6 * (i - half) / (CHUNKS - half - 1)
            hit = rng.random(CHUNK_ROWS) < share
            x[hit, 1] = rng.normal(size=int(hit.sum()))
        chunks.append(x)
    return MultivariateSet(
        with_missing(x_ref), cat_ref, with_missing(np.concatenate(chunks)), np.concatenate(cats)
    )


def fingerprint(*arrays: np.ndarray) -> list[float]:
    """A few sums that tell whether two processes generated the same data."""
    return [float(np.nansum(np.asarray(a, dtype=np.float64))) for a in arrays]


#: (seed, slope, rows) of small binary sets whose scores are near calibrated: NannyML's
#: needs_calibration decides both ways on them, so they pin its exact procedure.
CALIBRATION_CASES = [(s, slope, 2000) for s in range(4) for slope in (0.8, 0.95, 1.0, 1.1, 1.3)]


def calibration_case(seed: int, slope: float, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels from ``P(y=1|z) = sigmoid(z)`` and scores ``sigmoid(slope * z)``."""
    rng = np.random.default_rng(1000 + seed)
    z = rng.normal(scale=1.5, size=rows)
    y = (rng.random(rows) < _sigmoid(z)).astype(np.int64)
    return y, _sigmoid(slope * z)
