"""NannyML's threshold band and chunking, on hand-checked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from monitor_worker.stats.bands import (
    Thresholds,
    chunk_slices,
    default_chunk_size,
    make_estimate,
    reference_thresholds,
)


def test_band_is_mean_plus_minus_three_std_with_limits():
    values = np.array([0.5, 0.6, 0.7, np.nan])  # NaN chunks are ignored (nanmean/nanstd)
    t = reference_thresholds(values)
    std = np.std([0.5, 0.6, 0.7])
    assert t.lower == pytest.approx(0.6 - 3 * std) and t.upper == pytest.approx(0.6 + 3 * std)
    wide = np.array([0.1, 0.9, 0.5])
    assert reference_thresholds(wide, low=0.0, high=1.0) == Thresholds(0.0, 1.0)
    assert reference_thresholds(wide, low=0.0, high=1.0, drop_outside=True) == Thresholds(
        None, None
    )
    assert reference_thresholds(np.array([np.nan])) == Thresholds(None, None)


def test_alert_and_confidence_band():
    t = Thresholds(0.2, 0.8)
    assert t.alert(0.1) and t.alert(0.9) and not t.alert(0.2) and not t.alert(0.5)
    assert not Thresholds(None, None).alert(1e9)
    e = make_estimate(0.95, 0.03, t, 100, low=0.0, high=1.0)
    assert (e.lower, e.upper, e.alert) == (pytest.approx(0.86), 1.0, True)
    assert e.to_dict()["upperThreshold"] == 0.8


def test_chunks_keep_the_incomplete_last_one():
    assert [(s.start, s.stop) for s in chunk_slices(25, 10)] == [(0, 10), (10, 20), (20, 25)]
    assert default_chunk_size(50_000) == 5000 and default_chunk_size(3) == 1
    with pytest.raises(ValueError, match="chunk_size"):
        list(chunk_slices(5, 0))
