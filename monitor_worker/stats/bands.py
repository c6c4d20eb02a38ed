"""What an estimator reports for a window, and the two bands NannyML puts around it.

* The **confidence band** is ``value +- 3 * sampling_error`` (NannyML's ``SAMPLING_ERROR_RANGE``),
  clipped to the metric's range; the sampling error comes from the reference (each estimator
  keeps the components NannyML derives there) and the window's record count.
* The **threshold band** is NannyML's default ``StandardDeviationThreshold``: the mean of the
  metric over the reference's own chunks +- 3 standard deviations (``np.nanstd``, ddof 0). A
  bound that falls outside the metric's range is replaced by the range's limit (performance
  estimation) or dropped (reconstruction drift), as NannyML does. A window alerts when its
  value is below the lower or above the upper threshold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: NannyML's SAMPLING_ERROR_RANGE: the confidence band is value +- 3 sampling errors.
SAMPLING_ERROR_RANGE = 3.0
#: NannyML's StandardDeviationThreshold default multipliers.
THRESHOLD_STDS = 3.0


@dataclass(frozen=True)
class Thresholds:
    """Alert bounds derived from the reference's chunks (None: no bound on that side)."""

    lower: float | None
    upper: float | None

    def alert(self, value: float) -> bool:
        """True when ``value`` is outside the band (NannyML's ``Metric.alert``)."""
        return (self.lower is not None and value < self.lower) or (
            self.upper is not None and value > self.upper
        )

    def to_dict(self) -> dict[str, float | None]:
        """Plain form for snapshots."""
        return {"lower": self.lower, "upper": self.upper}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Thresholds:
        """Inverse of :meth:`to_dict`."""
        return cls(d["lower"], d["upper"])


@dataclass(frozen=True)
class Estimate:
    """One estimated figure of a window."""

    value: float
    sampling_error: float
    lower: float  # confidence band: value - 3 sampling errors, clipped to the metric's range
    upper: float
    thresholds: Thresholds
    alert: bool
    n: int  # records the estimate covers

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``/v1/status``."""
        return {
            "value": self.value,
            "samplingError": self.sampling_error,
            "lower": self.lower,
            "upper": self.upper,
            "lowerThreshold": self.thresholds.lower,
            "upperThreshold": self.thresholds.upper,
            "alert": self.alert,
            "records": self.n,
        }


def make_estimate(
    value: float,
    sampling_error: float,
    thresholds: Thresholds,
    n: int,
    low: float = -np.inf,
    high: float = np.inf,
) -> Estimate:
    """An :class:`Estimate` with its confidence band clipped to ``[low, high]``."""
    return Estimate(
        value=float(value),
        sampling_error=float(sampling_error),
        lower=float(max(low, value - SAMPLING_ERROR_RANGE * sampling_error)),
        upper=float(min(high, value + SAMPLING_ERROR_RANGE * sampling_error)),
        thresholds=thresholds,
        alert=thresholds.alert(float(value)),
        n=int(n),
    )


def reference_thresholds(
    chunk_values: np.ndarray,
    low: float | None = None,
    high: float | None = None,
    drop_outside: bool = False,
) -> Thresholds:
    """NannyML's ``StandardDeviationThreshold`` on the metric's values over reference chunks,
    then ``calculate_threshold_values``: a lower bound at or below ``low`` (an upper bound at
    or above ``high``) becomes ``low`` (``high``), or None when ``drop_outside``."""
    values = np.asarray(chunk_values, dtype=np.float64)
    if values.size == 0 or np.isnan(values).all():
        return Thresholds(None, None)
    mean, std = float(np.nanmean(values)), float(np.nanstd(values))
    lower: float | None = mean - THRESHOLD_STDS * std
    upper: float | None = mean + THRESHOLD_STDS * std
    if low is not None and lower is not None and lower <= low:
        lower = None if drop_outside else low
    if high is not None and upper is not None and upper >= high:
        upper = None if drop_outside else high
    return Thresholds(lower, upper)


def chunk_slices(n: int, chunk_size: int) -> Iterator[slice]:
    """NannyML's ``SizeBasedChunker`` (``incomplete='keep'``): full chunks in order, then the
    remainder as a last, smaller chunk."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def default_chunk_size(n: int) -> int:
    """NannyML's ``DefaultChunker``: the reference in 10 chunks."""
    return max(n // 10, 1)
