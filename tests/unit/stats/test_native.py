"""The compiled histogram kernel gives the numpy path's state: counts, off-grid counts and
new values exactly, gaps, tails and moments up to float rounding, on generated data (values on
edges, between them, outside, NaN/inf, discrete and continuous binnings)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor_worker import native
from monitor_worker.stats.sketches import NumericBinning, NumericHistogram

pytestmark = pytest.mark.skipif(
    native.histogram is None, reason="the C kernel is not built (no compiler): numpy path only"
)

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


def both(
    binning: NumericBinning, batches: list[np.ndarray]
) -> tuple[NumericHistogram, NumericHistogram]:
    a, b = NumericHistogram(binning), NumericHistogram(binning)
    for x in batches:
        a.update(x)
        b.update_numpy(x)
    return a, b


def assert_same(a: NumericHistogram, b: NumericHistogram) -> None:
    np.testing.assert_array_equal(a.counts, b.counts)
    if b.offgrid is not None:
        np.testing.assert_array_equal(a.offgrid, b.offgrid)
        assert a.new_values == b.new_values and a.new_values_truncated == b.new_values_truncated
    assert (a.n, a.n_missing) == (b.n, b.n_missing)
    np.testing.assert_allclose(a.gaps, b.gaps, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.tail_sq, b.tail_sq, rtol=1e-9, atol=1e-9)
    assert a.min == b.min and a.max == b.max
    if np.isfinite(b.m2) and abs(b.mean) < 1e150:
        np.testing.assert_allclose([a.mean, a.m2], [b.mean, b.m2], rtol=1e-9, atol=1e-6)
    else:  # squares beyond float64: both say the spread is infinite, the mean is moot
        assert not np.isfinite(a.m2) or abs(a.mean) >= 1e150


@settings(max_examples=200, deadline=None)
@given(
    reference=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000),
    batches=st.lists(st.lists(floats | st.floats(-1e6, 1e6), max_size=500), max_size=4),
    n_bins=st.sampled_from([1, 5, 50, 1000]),
)
def test_the_kernel_equals_the_numpy_path(reference, batches, n_bins):
    binning = NumericBinning.from_reference(reference, n_bins=n_bins)
    with np.errstate(over="ignore"):
        a, b = both(binning, [np.asarray(x, dtype=np.float64) for x in batches])
    assert_same(a, b)


@pytest.mark.parametrize("discrete", [False, True])
def test_values_on_every_edge_and_between_on_seeded_data(discrete):
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 40, 5000).astype(float) if discrete else rng.lognormal(0, 2, 50_000)
    binning = NumericBinning.from_reference(ref)
    assert binning.discrete is discrete
    x = np.concatenate([binning.edges, (binning.edges[:-1] + binning.edges[1:]) / 2,
                        rng.lognormal(0, 3, 20_000), [-1e300, 1e300, np.nan, np.inf, -np.inf]])  # fmt: skip
    with np.errstate(over="ignore"):
        a, b = both(binning, [x, x[::-1].copy()])
    assert_same(a, b)


def test_wrong_buffers_are_refused():
    binning = NumericBinning.from_reference(np.arange(10.0))
    h = NumericHistogram(binning)
    with pytest.raises(TypeError, match="float64"):
        native.histogram.histogram_update(
            binning.edges, binning.lut, np.arange(5, dtype=np.int32), h.counts, h.gaps, None
        )  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="slots"):
        native.histogram.histogram_update(
            binning.edges, binning.lut, np.ones(3), h.counts[:-1], h.gaps, None
        )  # type: ignore[union-attr]


def test_edges_crowded_in_one_cell_of_the_lookup_table():
    """Found by the property test: two edges within 1e-262 of each other at the end of a range
    of 1e6 share the table's last cell with a value between them."""
    binning = NumericBinning(np.array([-986940.1630798018, -1.2331210889224048e-262,
                                       -3.235210879294331e-279]), discrete=False, n_unique=3)  # fmt: skip
    a, b = both(binning, [np.array([-2.0734523073919464e-159, -1e-300, 0.0, -986940.0])])
    assert_same(a, b)


@settings(max_examples=100, deadline=None)
@given(
    reference=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=2000),
    batches=st.lists(st.lists(floats | st.floats(-1e6, 1e6), max_size=700), max_size=5),
    n_bins=st.sampled_from([1, 5, 50, 1000]),
    stride=st.sampled_from([1, 2, 3]),
)
def test_a_flush_of_several_batches_of_any_stride_equals_the_numpy_path(
    reference, batches, n_bins, stride
):
    """NumericHistogram.update_parts hands the kernel a flush's batches as they are (columns
    of a row-major matrix included): the state is the numpy path's over their concatenation,
    and the moments are those of one call (blocks merged by Chan's update, not one pass)."""
    binning = NumericBinning.from_reference(reference, n_bins=n_bins)
    parts = [np.repeat(np.asarray(x, dtype=np.float64), stride)[::stride] for x in batches]
    a, b = NumericHistogram(binning), NumericHistogram(binning)
    with np.errstate(over="ignore"):
        a.update_parts(parts)
        b.update_numpy(np.concatenate(parts) if parts else np.empty(0))
    assert_same(a, b)


@pytest.mark.parametrize(
    "shape",
    ["sorted", "reversed", "random walk", "constant runs", "two values", "runs with NaN"],
)
def test_runs_of_one_slot_equal_the_numpy_path(shape):
    """Neighbours that share a slot (sorted or slowly moving values, a feature of few values)
    are counted once per run in the kernel: the same state as one update per value."""
    rng = np.random.default_rng(11)
    reference = rng.normal(0, 1, 20_000)
    x = {
        "sorted": lambda: np.sort(rng.normal(0, 1.2, 50_000)),
        "reversed": lambda: np.sort(rng.normal(0, 1.2, 50_000))[::-1].copy(),
        "random walk": lambda: np.cumsum(rng.normal(0, 2e-4, 50_000)),
        "constant runs": lambda: np.repeat(rng.normal(0, 1, 200), 250),
        "two values": lambda: rng.choice([0.25, 0.75], 50_000, p=[0.9, 0.1]),
        "runs with NaN": lambda: np.where(
            rng.random(50_000) < 0.1, np.nan, np.sort(rng.normal(0, 3, 50_000))
        ),
    }[shape]()
    for discrete in (False, True):
        ref = np.round(reference * 4) / 4 if discrete else reference
        values = np.round(x * 4) / 4 if discrete else x
        binning = NumericBinning.from_reference(ref)
        assert binning.discrete is discrete
        a, b, c = NumericHistogram(binning), NumericHistogram(binning), NumericHistogram(binning)
        a.update(values)
        b.update_parts([values[i : i + 1000] for i in range(0, values.size, 1000)])
        c.update_numpy(values)
        assert_same(a, c)
        assert_same(b, c)


def test_a_flush_of_other_dtypes_and_shapes_equals_the_numpy_path():
    """Parts the kernel refuses as they are (integers, float32, a matrix, a list) are made
    float64 vectors first; nothing is counted twice."""
    rng = np.random.default_rng(8)
    binning = NumericBinning.from_reference(rng.normal(0, 50, 5000))
    parts = [
        rng.normal(0, 50, 300),
        rng.integers(-100, 100, 200),
        rng.normal(0, 50, 100).astype(np.float32),
        rng.normal(0, 50, (10, 3)),
        [1.5, -2.0, float("nan")],
    ]
    a, b = NumericHistogram(binning), NumericHistogram(binning)
    a.update_parts(parts)
    b.update_numpy(np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts]))
    assert_same(a, b)
    assert a.n == 300 + 200 + 100 + 30 + 2 and a.n_missing == 1


def test_moments_of_a_large_offset_and_a_small_spread_stay_exact():
    """Timestamps-like values (1.7e9 +- 1e-3): sums taken from the first value keep the
    variance exact to 1e-10 (block sums taken from zero lost 4e-6 of it here)."""
    rng = np.random.default_rng(4)
    x = 1.7e9 + rng.normal(0, 1e-3, 100_003)
    h = NumericHistogram(NumericBinning.from_reference(x[:5000]))
    h.update_parts([x[:70_001], x[70_001:]])
    assert h.n == x.size
    np.testing.assert_allclose(h.mean, x.mean(), rtol=1e-15)
    exact = x.astype(np.longdouble)
    np.testing.assert_allclose(h.m2 / h.n, float(((exact - exact.mean()) ** 2).mean()), rtol=1e-10)


def test_values_that_are_not_vectors_are_refused():
    binning = NumericBinning.from_reference(np.arange(10.0))
    h = NumericHistogram(binning)
    with pytest.raises(TypeError, match="one-dimensional float64"):
        native.histogram.histogram_update(  # type: ignore[union-attr]
            binning.edges, binning.lut, [np.ones(3), np.ones((2, 2))], h.counts, h.gaps, None
        )
    with pytest.raises(TypeError, match="one-dimensional float64"):
        native.histogram.histogram_update(  # type: ignore[union-attr]
            binning.edges, binning.lut, [np.ones(3, dtype=np.float32)], h.counts, h.gaps, None
        )
    assert h.counts.sum() == 0  # nothing was counted before the refusal


def test_take_rows_writes_the_rows_numpy_would_and_checks_every_index():
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(300, 4))
    columns = [matrix[:, j] for j in range(4)]  # strided views
    columns[1] = np.ascontiguousarray(columns[1])
    rows = rng.choice(300, 40, replace=False).astype(np.int64)
    slots = rng.choice(50, 40, replace=False).astype(np.int64)
    out, expected = np.zeros((50, 4)), np.zeros((50, 4))
    native.histogram.take_rows(columns, rows, out, slots)  # type: ignore[union-attr]
    expected[slots] = matrix[rows]
    np.testing.assert_array_equal(out, expected)
    before = out.copy()
    for bad_rows, bad_slots, error in (
        (np.array([0, 300]), np.array([0, 1]), IndexError),
        (np.array([0, -1]), np.array([0, 1]), IndexError),
        (np.array([0, 1]), np.array([0, 50]), IndexError),
        (np.array([0, 1]), np.array([0]), ValueError),
    ):
        with pytest.raises(error):
            native.histogram.take_rows(columns, bad_rows, out, bad_slots)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="one column per column"):
        native.histogram.take_rows(columns[:3], rows, out, slots)  # type: ignore[union-attr]
    np.testing.assert_array_equal(out, before)  # a refused call writes nothing
