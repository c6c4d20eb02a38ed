"""Multivariate drift as PCA reconstruction error (NannyML's
``DataReconstructionDriftCalculator``), fitted and scored with numpy alone.

Fit on the reference, in NannyML's order: missing numerical values imputed with the column
mean, missing categories with the most frequent one; categories encoded as their reference
frequency (``CountEncoder(normalize=True)``; unseen ones as 0); every column standardised
(``StandardScaler``); PCA keeping the fewest components whose explained variance ratio sums
past ``n_components`` (default 0.65; an int keeps that many). A row's error is the euclidean
distance between its standardised values and their projection back from the components.
A window's figure is the mean error, with NannyML's sampling error ``std(ddof=1) / sqrt(n)``;
the alert band is mean +- 3 std of the figure over the reference's own chunks (a lower bound
at or below 0 is dropped), and a window alerts outside ``(lower, upper)``.

Rows use the worker's reservoir layout: numerical values, then categorical slot codes (NaN
for missing), so the per-bucket update reuses the matrix the bucket already builds. The
state is the record count and the sums of errors and squared errors: mergeable.

Why numpy rather than scikit-learn here: the components are the eigenvectors of the
standardised reference's ``d x d`` covariance, one LAPACK call (they span the same subspace
as sklearn's full-solver PCA; tested to 1e-9), and scoring is one ``d x d`` matrix product
per batch; nothing needs a child process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bands import (
    Estimate,
    Thresholds,
    chunk_slices,
    default_chunk_size,
    make_estimate,
    reference_thresholds,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass
class ReconstructionModel:
    """The fitted imputation, encoding, scaling and PCA, folded for scoring into one affine
    map: ``residual = encoded @ projection - offset``."""

    categorical: NDArray[np.bool_]  # per column: a slot code to encode by frequency
    fill: FloatArray  # per column: imputed value (mean, or most frequent slot code)
    frequencies: list[FloatArray]  # per categorical column: reference frequency of each slot
    mean: FloatArray  # StandardScaler
    scale: FloatArray
    components: FloatArray  # (k, d) PCA components (rows)
    pca_mean: FloatArray
    thresholds: Thresholds
    chunk_size: int
    reference_values: FloatArray  # the figure on each reference chunk

    def __post_init__(self) -> None:
        d = self.mean.size
        residual = np.eye(d) - self.components.T @ self.components
        # ((x - mean) / scale - pca_mean) @ R  ==  x @ (R / scale[:, None]) - offset
        self._projection = residual / self.scale[:, None]
        self._offset = (self.mean / self.scale + self.pca_mean) @ residual
        self._cat_index = np.flatnonzero(self.categorical)

    @property
    def n_features(self) -> int:
        return int(self.mean.size)

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def encode(self, rows: ArrayLike) -> FloatArray:
        """Imputed, frequency-encoded rows (before scaling)."""
        x = np.array(rows, dtype=np.float64, copy=True)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"rows must have shape (n, {self.n_features})")
        bad = np.isnan(x)
        if bad.any():
            x[bad] = np.broadcast_to(self.fill, x.shape)[bad]
        for j, freq in zip(self._cat_index, self.frequencies, strict=True):
            codes = x[:, j].astype(np.int64)
            known = (codes >= 0) & (codes < freq.size)
            x[:, j] = np.where(known, freq[np.where(known, codes, 0)], 0.0)
        return x

    def errors(self, rows: ArrayLike) -> FloatArray:
        """Reconstruction error of each row."""
        r = self.encode(rows) @ self._projection - self._offset
        return np.sqrt(np.einsum("ij,ij->i", r, r))

    @classmethod
    def fit(
        cls,
        rows: ArrayLike,
        categorical: ArrayLike,
        n_slots: ArrayLike | None = None,
        n_components: float | int = 0.65,
        chunk_size: int | None = None,
    ) -> ReconstructionModel:
        """Fit on reference rows. ``categorical`` flags the slot-code columns; ``n_slots``
        gives each categorical column's number of slots (default: its largest code + 1).
        ``chunk_size`` is the size of the reference chunks the alert band comes from
        (default: the reference in 10 chunks, NannyML's default chunker)."""
        x = np.asarray(rows, dtype=np.float64)
        cat = np.asarray(categorical, dtype=bool)
        if x.ndim != 2 or x.shape[1] != cat.size:
            raise ValueError("rows must have one column per entry of categorical")
        if x.shape[1] < 2:
            raise ValueError("multivariate drift needs at least two features")
        if x.shape[0] < 2:
            raise ValueError("multivariate drift needs a reference of at least two rows")
        fill = np.zeros(x.shape[1])
        frequencies: list[FloatArray] = []
        slots = None if n_slots is None else np.asarray(n_slots, dtype=np.int64)
        for j in range(x.shape[1]):
            col = x[:, j]
            seen = col[~np.isnan(col)]
            if not cat[j]:
                fill[j] = float(seen.mean()) if seen.size else 0.0
                continue
            codes = seen.astype(np.int64)
            size = int(slots[j]) if slots is not None else int(codes.max(initial=-1)) + 1
            counts = np.bincount(codes, minlength=size).astype(np.float64)
            # SimpleImputer(most_frequent) takes the smallest of tied values.
            fill[j] = float(np.argmax(counts)) if codes.size else 0.0
            total = counts.sum() + (col.size - seen.size)  # imputed rows count too
            counts[int(fill[j])] += col.size - seen.size
            frequencies.append(counts / total if total else counts)
        # Build an encoder-only model to encode the reference the same way as later rows.
        d = x.shape[1]
        probe = cls(
            cat,
            fill,
            frequencies,
            np.zeros(d),
            np.ones(d),
            np.zeros((0, d)),
            np.zeros(d),
            Thresholds(None, None),
            1,
            np.zeros(0),
        )
        encoded = probe.encode(x)
        mean = encoded.mean(axis=0)
        scale = encoded.std(axis=0)
        scale[scale == 0] = 1.0  # StandardScaler leaves constant columns unscaled
        z = (encoded - mean) / scale
        pca_mean = z.mean(axis=0)
        centred = z - pca_mean
        # Eigenvectors of the d x d covariance: the right singular vectors of the centred
        # data, without an SVD of the n x d matrix (0.2 s -> 5 ms at 100k x 20).
        eigval, eigvec = np.linalg.eigh(centred.T @ centred / (z.shape[0] - 1))
        order = np.argsort(eigval)[::-1]
        variance = np.maximum(eigval[order], 0.0)
        vt = eigvec[:, order].T
        total_var = variance.sum()
        if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool):
            k = int(n_components)
        else:
            ratio = np.cumsum(variance / total_var) if total_var > 0 else np.ones_like(variance)
            # sklearn: the first count whose cumulated ratio exceeds the fraction.
            k = int(np.searchsorted(ratio, float(n_components), side="right") + 1)
        k = min(max(k, 1), vt.shape[0])
        components = _flip_signs(vt[:k])
        size = chunk_size or default_chunk_size(x.shape[0])
        model = cls(
            cat,
            fill,
            frequencies,
            mean,
            scale,
            components,
            pca_mean,
            Thresholds(None, None),
            size,
            np.zeros(0),
        )
        err = model.errors(x)
        values = np.array([err[s].mean() for s in chunk_slices(err.size, size)])
        model.reference_values = values
        model.thresholds = _thresholds(values)
        return model

    def to_dict(self) -> dict[str, Any]:
        """Plain form, so the fitted model can be cached beside a snapshot."""
        return {
            "categorical": self.categorical,
            "fill": self.fill,
            "frequencies": list(self.frequencies),
            "mean": self.mean,
            "scale": self.scale,
            "components": self.components,
            "pca_mean": self.pca_mean,
            "thresholds": self.thresholds.to_dict(),
            "chunk_size": self.chunk_size,
            "reference_values": self.reference_values,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReconstructionModel:
        """Inverse of :meth:`to_dict`."""
        f = np.asarray
        return cls(
            categorical=f(d["categorical"], dtype=bool),
            fill=f(d["fill"], dtype=np.float64),
            frequencies=[f(q, dtype=np.float64) for q in d["frequencies"]],
            mean=f(d["mean"], dtype=np.float64),
            scale=f(d["scale"], dtype=np.float64),
            components=f(d["components"], dtype=np.float64).reshape(-1, len(d["mean"])),
            pca_mean=f(d["pca_mean"], dtype=np.float64),
            thresholds=Thresholds.from_dict(d["thresholds"]),
            chunk_size=int(d["chunk_size"]),
            reference_values=f(d["reference_values"], dtype=np.float64),
        )


def _flip_signs(vt: FloatArray) -> FloatArray:
    # Deterministic signs (largest |loading| positive); the subspace, hence every
    # reconstruction error, does not depend on them.
    signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    return vt * np.where(signs == 0, 1.0, signs)[:, None]


def _thresholds(values: FloatArray) -> Thresholds:
    return reference_thresholds(values, low=0.0, drop_outside=True)


class ReconstructionState:
    """Mergeable per-bucket sums: rows scored, sum of errors, sum of squared errors."""

    def __init__(self, model: ReconstructionModel) -> None:
        self.model = model
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0

    def update(self, rows: ArrayLike) -> None:
        """Add a batch of rows (numerical values, then categorical slot codes; NaN missing)."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim == 2 and x.shape[0] == 0:
            return
        err = self.model.errors(x)
        self.n += int(err.size)
        self.total += float(err.sum())
        self.total_sq += float(np.dot(err, err))

    def merge(self, other: ReconstructionState) -> Self:
        """Add another state into this one (in place); returns self."""
        if other.model.n_features != self.model.n_features:
            raise ValueError("cannot merge reconstruction states of different models")
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq
        return self

    def __iadd__(self, other: ReconstructionState) -> Self:
        return self.merge(other)

    def copy(self) -> ReconstructionState:
        """Independent copy sharing the (immutable) model."""
        return ReconstructionState(self.model).merge(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain form for snapshots (the model is not copied)."""
        return {"n": self.n, "total": self.total, "total_sq": self.total_sq}

    @classmethod
    def from_dict(cls, d: dict[str, Any], model: ReconstructionModel) -> ReconstructionState:
        """Inverse of :meth:`to_dict`."""
        s = cls(model)
        s.n, s.total, s.total_sq = int(d["n"]), float(d["total"]), float(d["total_sq"])
        return s


def estimate(state: ReconstructionState, min_count: int = 2) -> Estimate | None:
    """The window's mean reconstruction error with NannyML's sampling error and alert band;
    None below ``min_count`` rows (at least 2, for the standard deviation)."""
    n = state.n
    if n < max(min_count, 2):
        return None
    mean = state.total / n
    var = max((state.total_sq - n * mean * mean) / (n - 1), 0.0)
    t = state.model.thresholds
    found = make_estimate(mean, np.sqrt(var / n), t, n, low=0.0)
    # NannyML alerts unless lower < value < upper: a value on a bound alerts too.
    alert = (t.lower is not None and mean <= t.lower) or (t.upper is not None and mean >= t.upper)
    return replace(found, alert=bool(alert))
