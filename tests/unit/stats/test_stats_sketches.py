"""Streaming sketches: binning, histograms, categorical counts and the row reservoir."""

from __future__ import annotations

import bisect
from collections import Counter

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor_worker.stats.sketches import (
    NEW_VALUES_CAP,
    CategoricalCounts,
    CategoricalVocabulary,
    NumericBinning,
    NumericHistogram,
    Reservoir,
)


def json_round_trip(d: dict) -> dict:
    """Through JSON the way snapshots go (orjson writes numpy arrays as lists)."""
    return orjson.loads(orjson.dumps(d, option=orjson.OPT_SERIALIZE_NUMPY))


# ------------------------------------------------------------------------------- binning


def test_continuous_binning_uses_reference_quantiles() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    b = NumericBinning.from_reference(ref, n_bins=1000)
    assert not b.discrete
    assert b.n_unique == 20_000
    assert b.edges.size == 1001
    assert b.edges[0] == ref.min() and b.edges[-1] == ref.max()
    counts = b.counts(ref)
    # Quantile bins hold ~20 reference values each; overflow holds only the maximum.
    assert counts[0] == 0 and counts[-1] == 1
    assert counts[1:-1].min() >= 19 and counts[1:-1].max() <= 21


def test_counts_match_a_per_value_loop() -> None:
    rng = np.random.default_rng(1)
    b = NumericBinning.from_reference(rng.normal(size=3000), n_bins=50)
    x = np.concatenate([rng.normal(0, 2, 500), [np.nan, np.inf, -np.inf]])
    expected = np.zeros(b.n_slots, dtype=np.int64)
    edges = b.edges.tolist()
    for v in x[np.isfinite(x)]:
        expected[bisect.bisect_right(edges, v)] += 1
    np.testing.assert_array_equal(b.counts(x), expected)


def test_discrete_binning_gives_each_reference_value_its_slot() -> None:
    b = NumericBinning.from_reference([3.0, 1.0, 1.0, 2.0, np.nan, 3.0])
    assert b.discrete and b.n_unique == 3
    np.testing.assert_array_equal(b.edges, [1.0, 2.0, 3.0])
    # slots: underflow, [1,2), [2,3), overflow (>= 3)
    np.testing.assert_array_equal(b.counts([0.5, 1.0, 1.5, 2.0, 3.0, 7.0]), [1, 2, 1, 2])


def test_constant_and_empty_reference() -> None:
    b = NumericBinning.from_reference([5.0] * 10 + [np.nan])
    assert b.discrete and b.edges.tolist() == [5.0]
    np.testing.assert_array_equal(b.counts([4.0, 5.0, 5.0, 6.0, np.nan]), [1, 3])
    with pytest.raises(ValueError):
        NumericBinning.from_reference([np.nan, np.inf])


def test_quantile_edges_are_deduplicated() -> None:
    # Half the mass on one value: many quantiles coincide.
    rng = np.random.default_rng(2)
    ref = np.concatenate([np.zeros(5000), rng.normal(size=5000)])
    b = NumericBinning.from_reference(ref, n_bins=1000)
    assert np.all(np.diff(b.edges) > 0)
    assert b.edges.size < 1001


# ----------------------------------------------------------------------------- histogram


def test_histogram_moments_tails_and_missing() -> None:
    rng = np.random.default_rng(3)
    b = NumericBinning.from_reference(rng.normal(size=2000), n_bins=100)
    x = np.concatenate([rng.normal(0.5, 2, 5000), [np.nan, np.inf]])
    h = NumericHistogram(b)
    h.update(x[:1234])
    h.update(x[1234:])
    f = x[np.isfinite(x)]
    assert h.n == f.size and h.n_missing == 2
    np.testing.assert_allclose([h.mean, h.std], [f.mean(), f.std()], rtol=1e-12)
    assert (h.min, h.max) == (f.min(), f.max())
    lo, hi = b.edges[0], b.edges[-1]
    np.testing.assert_allclose(h.under_sum, np.sum(lo - f[f < lo]), rtol=1e-12)
    np.testing.assert_allclose(h.over_sum, np.sum(f[f >= hi] - hi), rtol=1e-12)
    inner = (f >= lo) & (f < hi)
    left = b.edges[np.searchsorted(b.edges, f[inner], side="right") - 1]
    np.testing.assert_allclose(h.gaps[1:-1].sum(), np.sum(f[inner] - left), rtol=1e-9)
    np.testing.assert_allclose(h.tail_sq[1], np.sum((f[f >= hi] - hi) ** 2), rtol=1e-12)


def test_discrete_histogram_tracks_values_outside_the_reference() -> None:
    b = NumericBinning.from_reference([1.0, 2.0, 3.0])
    h = NumericHistogram(b)
    h.update([1.0, 1.5, 2.0, 2.0, 3.0, 4.0, 0.0, 1.5])
    np.testing.assert_array_equal(h.counts, [1, 3, 2, 2])
    assert h.offgrid is not None
    np.testing.assert_array_equal(h.offgrid, [1, 2, 0, 1])
    assert h.new_values == [0.0, 1.5, 4.0]
    h.update(np.arange(100) + 0.5)
    assert len(h.new_values) == NEW_VALUES_CAP and h.new_values_truncated


def test_new_values_do_not_depend_on_merge_order() -> None:
    b = NumericBinning.from_reference([0.0, 1.0])
    values = np.random.default_rng(8).permutation(np.arange(100) + 0.5)
    parts = []
    for chunk in np.array_split(values, 7):
        h = NumericHistogram(b)
        h.update(chunk)
        parts.append(h)
    forward, backward = NumericHistogram(b), NumericHistogram(b)
    for h in parts:
        forward += h
    for h in reversed(parts):
        backward += h
    assert forward.new_values == backward.new_values == (np.arange(32) + 0.5).tolist()
    assert forward.new_values_truncated
    v = CategoricalVocabulary.from_reference(["a"])
    one, two = CategoricalCounts(v), CategoricalCounts(v)
    one.update([f"n{i:03d}" for i in range(50, 100)])
    two.update([f"n{i:03d}" for i in range(50)])
    one += two
    assert one.unseen_values == [f"n{i:03d}" for i in range(32)] and one.unseen_truncated


def _assert_hist_equal(a: NumericHistogram, b: NumericHistogram) -> None:
    np.testing.assert_array_equal(a.counts, b.counts)
    if a.offgrid is not None or b.offgrid is not None:
        np.testing.assert_array_equal(a.offgrid, b.offgrid)
    assert (a.n, a.n_missing, a.min, a.max) == (b.n, b.n_missing, b.min, b.max)
    assert a.new_values == b.new_values
    np.testing.assert_allclose(a.gaps, b.gaps, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.tail_sq, b.tail_sq, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([a.mean, a.m2], [b.mean, b.m2], rtol=1e-9, atol=1e-9)


_BINNINGS = {
    "continuous": NumericBinning.from_reference(np.random.default_rng(4).normal(size=500), 50),
    "discrete": NumericBinning.from_reference([0.0, 1.0, 2.0, 5.0]),
}
_values = st.lists(
    st.one_of(
        st.floats(-10, 10, allow_nan=False),
        st.sampled_from([0.0, 1.0, 2.0, 5.0, float("nan")]),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(_BINNINGS)),
    chunks=st.lists(_values, min_size=1, max_size=5),
)
def test_histogram_merge_equals_single_update(kind: str, chunks: list[list[float]]) -> None:
    binning = _BINNINGS[kind]
    whole = NumericHistogram(binning)
    whole.update(np.array([v for c in chunks for v in c], dtype=float))
    merged = NumericHistogram(binning)
    for c in chunks:
        part = NumericHistogram(binning)
        part.update(np.array(c, dtype=float))
        merged += part
    _assert_hist_equal(merged, whole)


def test_histogram_round_trip_and_binning_guard() -> None:
    rng = np.random.default_rng(5)
    b = NumericBinning.from_reference(rng.normal(size=1000), n_bins=40)
    h = NumericHistogram(b)
    h.update(rng.normal(1, 1, 300))
    b2 = NumericBinning.from_dict(json_round_trip(b.to_dict()))
    assert b2.same_as(b) and b2.discrete == b.discrete and b2.n_unique == b.n_unique
    back = NumericHistogram.from_dict(json_round_trip(h.to_dict()), b2)
    _assert_hist_equal(back, h)
    empty = NumericHistogram.from_dict(json_round_trip(NumericHistogram(b).to_dict()), b)
    assert empty.n == 0 and empty.min == np.inf
    other = NumericBinning.from_reference(rng.normal(size=1000), n_bins=40)
    with pytest.raises(ValueError):
        NumericHistogram.from_dict(h.to_dict(), other)
    with pytest.raises(ValueError):
        h.merge(NumericHistogram(other))
    c = h.copy()
    c.update([100.0])
    assert c.n == h.n + 1


# --------------------------------------------------------------------------- categorical


def test_vocabulary_cap_order_and_slots() -> None:
    ref = ["b"] * 5 + ["a"] * 5 + ["c"] * 3 + ["d"] * 2 + ["e"] + [None, float("nan")]
    v = CategoricalVocabulary.from_reference(ref, max_categories=3)
    assert v.categories == ("a", "b", "c")  # by count, ties by string
    assert v.known_tail == {"d", "e"} and v.tail_complete and v.n_unique == 5
    c = CategoricalCounts(v)
    c.update(["a", "d", "zz", "b", "e", None, "zz", "yy", float("nan")])
    assert c.as_dict() == {"a": 1, "b": 1, "c": 0, "<other>": 2, "<unseen>": 3}
    assert c.n == 7 and c.n_missing == 2
    assert c.unseen_values == ["yy", "zz"]


def test_incomplete_tail_never_reports_unseen() -> None:
    v = CategoricalVocabulary.from_reference(list("abcdef"), max_categories=2, max_known=1)
    assert not v.tail_complete
    c = CategoricalCounts(v)
    c.update(["a", "f", "new"])
    assert c.as_dict()["<other>"] == 2 and c.as_dict()["<unseen>"] == 0


def test_ints_and_strings_are_the_same_categories() -> None:
    v = CategoricalVocabulary.from_reference(np.array([1, 2, 2, 3]))
    c = CategoricalCounts(v)
    c.update(["2", "3"])
    c.update(np.array([2, 7]))
    assert c.as_dict() == {"2": 2, "1": 0, "3": 1, "<other>": 0, "<unseen>": 1}


def test_categorical_counts_match_counter() -> None:
    rng = np.random.default_rng(6)
    ref = rng.choice([f"k{i}" for i in range(50)], size=5000)
    cur = rng.choice([f"k{i}" for i in range(60)], size=7000)
    v = CategoricalVocabulary.from_reference(ref, max_categories=30)
    c = CategoricalCounts(v)
    c.update(cur)
    counter = Counter(cur.tolist())
    ref_set = set(ref.tolist())
    for i, cat in enumerate(v.categories):
        assert c.counts[i] == counter[cat]
    assert c.counts[v.other] == sum(n for k, n in counter.items() if k in ref_set) - sum(
        counter[k] for k in v.categories
    )
    assert c.counts[v.unseen] == sum(n for k, n in counter.items() if k not in ref_set)


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(
        st.lists(st.one_of(st.sampled_from(list("abcdxyz")), st.none()), max_size=30),
        min_size=1,
        max_size=5,
    )
)
def test_categorical_merge_equals_single_update(chunks: list[list[str | None]]) -> None:
    v = CategoricalVocabulary.from_reference(list("aabbbcd"), max_categories=2)
    whole = CategoricalCounts(v)
    whole.update(np.array([x for c in chunks for x in c], dtype=object))
    merged = CategoricalCounts(v)
    for chunk in chunks:
        part = CategoricalCounts(v)
        part.update(np.array(chunk, dtype=object))
        merged.merge(part)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.n_missing == whole.n_missing
    assert merged.unseen_values == whole.unseen_values


def test_categorical_round_trip() -> None:
    v = CategoricalVocabulary.from_reference(list("aabbbcd"), max_categories=2)
    c = CategoricalCounts(v)
    c.update(["a", "c", "q", None])
    v2 = CategoricalVocabulary.from_dict(json_round_trip(v.to_dict()))
    assert v2.categories == v.categories and v2.known_tail == v.known_tail
    back = CategoricalCounts.from_dict(json_round_trip(c.to_dict()), v2)
    assert back.as_dict() == c.as_dict() and back.n_missing == 1
    assert back.unseen_values == ["q"]


# ----------------------------------------------------------------------------- reservoir


def test_reservoir_is_exact_below_capacity() -> None:
    rows = np.arange(30, dtype=float).reshape(15, 2)
    r = Reservoir(2, capacity=20, seed=1)
    r.update(rows[:4])
    r.update(rows[4:])
    assert r.exact and r.size == 15
    np.testing.assert_array_equal(r.sample, rows)
    other = Reservoir(2, capacity=20, seed=2)
    other.update(rows[:5] + 100)
    r.merge(other)
    assert r.exact and r.n_seen == 20
    np.testing.assert_array_equal(r.sample, np.concatenate([rows, rows[:5] + 100]))
    r.update(rows[:1])
    assert not r.exact and r.size == 20 and r.n_seen == 21


def test_reservoir_one_feature_accepts_1d_and_checks_shape() -> None:
    r = Reservoir(1, capacity=5)
    r.update(np.arange(3.0))
    np.testing.assert_array_equal(r.sample[:, 0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError):
        Reservoir(2).update(np.zeros((3, 3)))


def _inclusion_counts(n_items: int, trials: int, build) -> np.ndarray:
    hits = np.zeros(n_items)
    for t in range(trials):
        res = build(t)
        hits[res.sample[:, 0].astype(int)] += 1
    return hits


def _assert_uniform(hits: np.ndarray, expected: float) -> None:
    # Inclusions are nearly independent across items; a chi-square over items with a very
    # generous p-value bound still fails on any systematic bias (e.g. first/last batch favoured).
    chi2 = np.sum((hits - expected) ** 2 / expected)
    p = stats.chi2.sf(chi2, hits.size - 1)
    assert p > 1e-4, (chi2, p)


def test_reservoir_sampling_is_uniform() -> None:
    n, cap, trials = 400, 40, 400
    items = np.arange(n, dtype=float)

    def build(seed: int) -> Reservoir:
        r = Reservoir(1, capacity=cap, seed=seed)
        for chunk in np.split(items, [7, 30, 31, 200]):  # uneven batches, one of size 1
            r.update(chunk)
        return r

    hits = _inclusion_counts(n, trials, build)
    assert hits.sum() == cap * trials
    _assert_uniform(hits, cap * trials / n)
    # The first and last halves are equally represented (catches a first-batch bias).
    assert abs(hits[:200].sum() - hits[200:].sum()) < 0.1 * hits.sum()


def test_reservoir_merge_is_uniform_over_the_union() -> None:
    n, cap, trials = 400, 40, 400
    items = np.arange(n, dtype=float)

    def build(seed: int) -> Reservoir:
        a = Reservoir(1, capacity=cap, seed=seed)
        a.update(items[:60])  # small bucket
        b = Reservoir(1, capacity=cap, seed=seed + 10_000)
        b.update(items[60:])  # large bucket
        return a.merge(b)

    hits = _inclusion_counts(n, trials, build)
    _assert_uniform(hits, cap * trials / n)
    # Without hypergeometric weighting the small bucket would get half the sample.
    share_small = hits[:60].sum() / hits.sum()
    assert abs(share_small - 60 / 400) < 0.03


def test_reservoir_round_trip_resumes_identically() -> None:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(500, 3))
    r = Reservoir(3, capacity=50, seed=3)
    r.update(rows[:200])
    back = Reservoir.from_dict(json_round_trip(r.to_dict()))
    copy = r.copy()
    for x in (r, back, copy):
        x.update(rows[200:])
    np.testing.assert_array_equal(back.sample, r.sample)
    np.testing.assert_array_equal(copy.sample, r.sample)
    assert back.n_seen == 500


def test_reservoir_columns_update_takes_the_same_sample_as_rows() -> None:
    rng = np.random.default_rng(8)
    a, b = Reservoir(3, capacity=50, seed=4), Reservoir(3, capacity=50, seed=4)
    for n in (10, 30, 25, 400, 1, 2000):
        x = rng.normal(size=(n, 3))
        a.update(x)
        b.update_columns([x[:, 0], x[:, 1], x[:, 2]], n)
    assert a.n_seen == b.n_seen
    np.testing.assert_array_equal(a.sample, b.sample)


@pytest.mark.parametrize("groups", [[1], [2, 3], [1, 1, 4], [6]])
def test_reservoir_update_of_several_batches_takes_the_same_sample_as_one_by_one(groups) -> None:
    """The window hands the reservoir its batches at the flush (Reservoir.update_parts): the
    sample must be the one batch-by-batch updates take, filling phase included."""
    rng = np.random.default_rng(9)
    batches = [rng.normal(size=(n, 3)) for n in (10, 30, 25, 400, 1, 2000, 0, 700, 333)]
    a, b = Reservoir(3, capacity=50, seed=4), Reservoir(3, capacity=50, seed=4)
    for x in batches:
        a.update_columns([x[:, 0], x[:, 1], x[:, 2]], x.shape[0])
    parts = [([x[:, 0], x[:, 1], x[:, 2]], x.shape[0]) for x in batches]
    start, g = 0, 0
    while start < len(parts):
        size = groups[g % len(groups)]
        b.update_parts(parts[start : start + size])
        start, g = start + size, g + 1
    assert a.n_seen == b.n_seen
    np.testing.assert_array_equal(a.sample, b.sample)


def test_sorted_quantiles_equal_numpys_bit_for_bit() -> None:
    from monitor_worker.stats.sketches import sorted_quantiles

    rng = np.random.default_rng(12)
    q = np.linspace(0.0, 1.0, 1001)
    for x in (
        rng.normal(size=100_000),
        rng.lognormal(size=1234),
        rng.integers(0, 5, 999) * 1.5,
        np.array([3.0, 1.0]),
    ):
        np.testing.assert_array_equal(sorted_quantiles(np.sort(x), q), np.quantile(x, q))


def test_reservoir_takes_columns_of_any_numeric_dtype_and_stride() -> None:
    """The window hands over float64 features, but a prediction column may be integers and a
    column may be a strided view: the sample is the one float64 copies give."""
    rng = np.random.default_rng(10)
    matrix = rng.normal(size=(3000, 2))
    ints = rng.integers(0, 5, 3000)
    a, b = Reservoir(3, capacity=50, seed=4), Reservoir(3, capacity=50, seed=4)
    for s in range(0, 3000, 700):
        part = slice(s, s + 700)
        n = len(ints[part])
        a.update_parts([([matrix[part, 0], matrix[part, 1], ints[part]], n)])
        b.update_parts([([np.ascontiguousarray(matrix[part, 0]),
                          np.ascontiguousarray(matrix[part, 1]), ints[part].astype(float)], n)])  # fmt: skip
    np.testing.assert_array_equal(a.sample, b.sample)
