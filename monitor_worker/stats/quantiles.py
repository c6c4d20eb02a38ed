"""Window quantiles of serving measures (latency_ms, prompt_tokens, ...): a DDSketch in numpy.

A serving measure is a named number per record; its window is watched through p50/p95/p99.
Exact quantiles need every value, so each measure keeps a DDSketch (Masson, Rim and Lee,
VLDB 2019): values fall into logarithmic buckets ``gamma^(k-1) < |x| <= gamma^k`` with
``gamma = (1 + a) / (1 - a)``, and a bucket answers with ``2 gamma^k / (gamma + 1)``, which is
within relative error ``a`` of every value in it. Hence the guarantee tested here: the answer for
quantile ``q`` is within ``a * |x|`` of ``x``, the order statistic of rank ``floor(q (n - 1))``
(numpy's ``method="lower"``), for any merge order, as long as each sign's magnitudes span at
most a factor ``gamma^max_bins``. Memory is bounded by
``max_bins`` buckets per sign (2048 by default: with ``a = 1 %`` that spans a factor of
``gamma^2048 ~ 6e17`` between the smallest and largest value kept apart); past that the lowest
buckets are folded together, which only coarsens quantiles at the very bottom, as the
``ddsketch`` package's ``CollapsingLowestDenseStore`` does.

Bucket keys and answers follow the ``ddsketch`` package (3.0.1, ``LogarithmicMapping``,
``DDSketch.get_quantile_value``), so both give the same numbers on the same data; the
difference is speed. ``ddsketch`` adds one value per Python call; here a batch is one
``log`` and one ``bincount``. Measured by ``bench/quantiles.py`` on this machine (1M values):
see docs/benchmarks.md.

Zero, and values smaller in magnitude than the sketch's ``min_indexable`` (the smallest normal
float times ``gamma``, as ``ddsketch``), count in a zero bucket;
negative values in a mirrored store. NaN and infinities are not values: they are counted in
``n_missing``. Merges are exact (integer counts), so a window is the sum of its buckets in
any order.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DEFAULT_RELATIVE_ACCURACY = 0.01
DEFAULT_MAX_BINS = 2048
#: The quantiles a serving measure reports, and their names.
REPORTED_QUANTILES: Mapping[str, float] = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


class _DenseStore:
    """Counts per bucket key over a contiguous key range, folding the lowest keys together
    when the range would exceed ``max_bins``."""

    def __init__(self, max_bins: int) -> None:
        self.max_bins = max_bins
        self.counts: IntArray = np.zeros(0, dtype=np.int64)
        self.offset = 0  # key of counts[0]

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def max_key(self) -> int:
        return self.offset + self.counts.size - 1

    def _cover(self, lo: int, hi: int) -> None:
        """Grow the range to hold keys ``lo..hi``, then fold what falls below the cap."""
        if self.counts.size == 0:
            self.offset, self.counts = lo, np.zeros(hi - lo + 1, dtype=np.int64)
        else:
            new_lo, new_hi = min(lo, self.offset), max(hi, self.max_key)
            grown = np.zeros(new_hi - new_lo + 1, dtype=np.int64)
            start = self.offset - new_lo
            grown[start : start + self.counts.size] = self.counts
            self.offset, self.counts = new_lo, grown
        excess = self.counts.size - self.max_bins
        if excess > 0:
            folded = int(self.counts[: excess + 1].sum())
            self.counts = self.counts[excess:].copy()
            self.counts[0] = folded
            self.offset += excess

    def add_keys(self, keys: IntArray) -> None:
        if keys.size == 0:
            return
        lo, hi = int(keys.min()), int(keys.max())
        lo = max(lo, hi - self.max_bins + 1)  # keys below the cap fold into the lowest bucket
        self._cover(lo, hi)
        idx = np.maximum(keys - self.offset, 0)
        self.counts += np.bincount(idx, minlength=self.counts.size)

    def merge(self, other: _DenseStore) -> None:
        if other.counts.size == 0:
            return
        self._cover(max(other.offset, other.max_key - self.max_bins + 1), other.max_key)
        idx = np.maximum(np.arange(other.offset, other.max_key + 1) - self.offset, 0)
        self.counts += np.bincount(idx, weights=other.counts, minlength=self.counts.size).astype(
            np.int64
        )

    def keys_at_ranks(self, ranks: FloatArray, *, lower: bool) -> IntArray:
        """Key of the bucket holding each rank (0-based), as ``ddsketch``'s ``key_at_rank``."""
        cum = np.cumsum(self.counts)
        if lower:
            pos = np.searchsorted(cum, ranks, side="right")
        else:
            pos = np.searchsorted(cum, ranks + 1.0, side="left")
        return np.minimum(pos, self.counts.size - 1).astype(np.int64) + self.offset

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "counts": self.counts}

    def load(self, d: Mapping[str, Any]) -> None:
        self.offset = int(d["offset"])
        self.counts = np.asarray(d["counts"], dtype=np.int64).copy()
        if self.counts.size > self.max_bins:
            raise ValueError("snapshot store holds more buckets than max_bins")


class QuantileSketch:
    """Mergeable quantile sketch of one serving measure (DDSketch, relative accuracy ``a``).

    ``update`` takes a numpy array (any shape); ``quantile`` answers one or several
    quantiles. State: at most ``2 * max_bins + 1`` integer counts plus count, sum, min, max.
    """

    def __init__(
        self,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        max_bins: int = DEFAULT_MAX_BINS,
    ) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError("relative_accuracy must be between 0 and 1 (exclusive)")
        if max_bins < 1:
            raise ValueError("max_bins must be >= 1")
        self.relative_accuracy = float(relative_accuracy)
        self.max_bins = int(max_bins)
        self.gamma = (1.0 + self.relative_accuracy) / (1.0 - self.relative_accuracy)
        self._multiplier = 1.0 / math.log(self.gamma)
        self.min_indexable = sys.float_info.min * self.gamma
        self.positive = _DenseStore(self.max_bins)
        self.negative = _DenseStore(self.max_bins)
        self.zero_count = 0
        self.n_missing = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @property
    def count(self) -> int:
        """Number of (finite) values added."""
        return self.zero_count + self.positive.total + self.negative.total

    def key(self, magnitudes: FloatArray) -> IntArray:
        """Bucket key of each magnitude ``> min_indexable``: ``ceil(log_gamma(x))``."""
        return np.ceil(np.log(magnitudes) * self._multiplier).astype(np.int64)

    def value(self, keys: IntArray) -> FloatArray:
        """The value a bucket answers with: ``2 gamma^k / (gamma + 1)``."""
        return np.exp((keys - 1).astype(np.float64) / self._multiplier) * (
            1.0 + self.relative_accuracy
        )

    def update(self, values: ArrayLike) -> None:
        """Add a batch of values; NaN and infinities only count in ``n_missing``."""
        x = np.asarray(values, dtype=np.float64).ravel()
        ok = np.isfinite(x)
        if not ok.all():
            self.n_missing += int(x.size - ok.sum())
            x = x[ok]
        if x.size == 0:
            return
        mag = np.abs(x)
        big = mag > self.min_indexable
        pos, neg = big & (x > 0), big & (x < 0)
        self.zero_count += int(x.size - big.sum())
        if pos.any():
            self.positive.add_keys(self.key(mag[pos]))
        if neg.any():
            self.negative.add_keys(self.key(mag[neg]))
        self.sum += float(x.sum())
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))

    def quantile(self, q: float | Iterable[float]) -> Any:
        """Value at quantile ``q`` (a float in [0, 1], or several): within relative accuracy of
        the order statistic of rank ``floor(q * (count - 1))``, clamped to the exact min and
        max (so ``q = 0`` and ``q = 1`` are exact). NaN when the sketch is empty. A scalar ``q`` gives a float, else an array."""
        qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if np.any((qs < 0.0) | (qs > 1.0) | ~np.isfinite(qs)):
            raise ValueError("quantiles must lie in [0, 1]")
        out = np.full(qs.shape, np.nan)
        n = self.count
        if n:
            ranks = qs * (n - 1)
            n_neg = self.negative.total
            in_neg = ranks < n_neg
            in_pos = ranks >= n_neg + self.zero_count
            out[~in_neg & ~in_pos] = 0.0
            if in_neg.any():
                rev = n_neg - ranks[in_neg] - 1.0
                out[in_neg] = -self.value(self.negative.keys_at_ranks(rev, lower=False))
            if in_pos.any():
                r = ranks[in_pos] - n_neg - self.zero_count
                out[in_pos] = self.value(self.positive.keys_at_ranks(r, lower=True))
            out = np.clip(out, self.min, self.max)
            out[qs == 0.0], out[qs == 1.0] = self.min, self.max
        if isinstance(q, int | float):
            return float(out[0])
        return out

    def quantiles(self) -> dict[str, float]:
        """The reported quantiles, by name (``p50``, ``p95``, ``p99``)."""
        values = self.quantile(list(REPORTED_QUANTILES.values()))
        return dict(zip(REPORTED_QUANTILES, (float(v) for v in values), strict=True))

    def _check_compatible(self, other: QuantileSketch) -> None:
        if (other.relative_accuracy, other.max_bins) != (self.relative_accuracy, self.max_bins):
            raise ValueError("cannot merge sketches of different relative accuracy or max_bins")

    def merge(self, other: QuantileSketch) -> Self:
        """Add another sketch of the same accuracy into this one (in place); returns self."""
        self._check_compatible(other)
        self.positive.merge(other.positive)
        self.negative.merge(other.negative)
        self.zero_count += other.zero_count
        self.n_missing += other.n_missing
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        return self

    def __iadd__(self, other: QuantileSketch) -> Self:
        return self.merge(other)

    def copy(self) -> QuantileSketch:
        """Independent copy."""
        return QuantileSketch(self.relative_accuracy, self.max_bins).merge(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for snapshots (count arrays are views: encode before updating)."""
        return {
            "relative_accuracy": self.relative_accuracy,
            "max_bins": self.max_bins,
            "positive": self.positive.to_dict(),
            "negative": self.negative.to_dict(),
            "zero_count": self.zero_count,
            "n_missing": self.n_missing,
            "sum": self.sum,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuantileSketch:
        """Inverse of :meth:`to_dict`."""
        s = cls(d["relative_accuracy"], d["max_bins"])
        s.positive.load(d["positive"])
        s.negative.load(d["negative"])
        s.zero_count = int(d["zero_count"])
        s.n_missing = int(d["n_missing"])
        s.sum = float(d["sum"])
        s.min = math.inf if d["min"] is None else float(d["min"])
        s.max = -math.inf if d["max"] is None else float(d["max"])
        return s


class ServingMeasures:
    """One :class:`QuantileSketch` per declared serving measure, for one time bucket or window.

    ``update`` takes the batch's columns by measure name (missing names: nothing added);
    merging adds bucket to bucket.
    """

    def __init__(
        self,
        names: Iterable[str],
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        max_bins: int = DEFAULT_MAX_BINS,
    ) -> None:
        self.sketches: dict[str, QuantileSketch] = {
            name: QuantileSketch(relative_accuracy, max_bins) for name in names
        }

    def update(self, columns: Mapping[str, ArrayLike]) -> None:
        """Add each declared measure's values from ``columns`` (NaN for a missing value)."""
        for name, sketch in self.sketches.items():
            values = columns.get(name)
            if values is not None:
                sketch.update(values)

    def merge(self, other: ServingMeasures) -> Self:
        """Add another state over the same measures (in place); returns self."""
        if other.sketches.keys() != self.sketches.keys():
            raise ValueError("cannot merge serving measures over different names")
        for name, sketch in self.sketches.items():
            sketch.merge(other.sketches[name])
        return self

    def __iadd__(self, other: ServingMeasures) -> Self:
        return self.merge(other)

    def copy(self) -> ServingMeasures:
        """Independent copy."""
        c = ServingMeasures(())
        c.sketches = {name: s.copy() for name, s in self.sketches.items()}
        return c

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Per measure: count, p50, p95, p99 (NaN when no value arrived)."""
        return {name: {"count": s.count, **s.quantiles()} for name, s in self.sketches.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for snapshots."""
        return {name: s.to_dict() for name, s in self.sketches.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServingMeasures:
        """Inverse of :meth:`to_dict`."""
        c = cls(())
        c.sketches = {name: QuantileSketch.from_dict(s) for name, s in d.items()}
        return c
