"""Serving-measure quantiles: the DDSketch against numpy.quantile and the ddsketch package.

Tolerance: the sketch's guarantee, relative error ``a`` (1 %) against numpy's ``method="lower"``
order statistic (rank ``floor(q (n - 1))``); a value exactly on a bucket edge sits exactly at the
bound, so the bound gets 1e-9 of itself for float rounding.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor_worker.stats.quantiles import QuantileSketch, ServingMeasures

QS = np.array([0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0])


def assert_within_guarantee(sketch: QuantileSketch, data: np.ndarray) -> None:
    exact = np.quantile(data, QS, method="lower")
    got = sketch.quantile(QS)
    bound = sketch.relative_accuracy * np.abs(exact) * (1 + 1e-9)
    assert np.all(np.abs(got - exact) <= bound), np.c_[QS, exact, got]


def seeded_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "latency lognormal": rng.lognormal(3.0, 1.0, 200_000),
        "tokens integers": rng.poisson(300, 50_000).astype(float),
        "heavy tail pareto": (rng.pareto(1.5, 100_000) + 1) * 10,
        "with zeros": np.concatenate([np.zeros(3000), rng.exponential(5.0, 7000)]),
        "signed": rng.normal(0.0, 100.0, 30_000),
        "tiny": rng.uniform(1e-6, 1e-3, 10_000),
    }


@pytest.mark.parametrize("name", list(seeded_cases()))
def test_quantiles_within_relative_accuracy_of_numpy(name: str) -> None:
    data = seeded_cases()[name]
    s = QuantileSketch(0.01)
    s.update(data)
    assert s.count == data.size
    assert_within_guarantee(s, data)
    # The extremes are exact (clamped to the tracked min and max).
    assert s.quantile(0.0) == data.min() and s.quantile(1.0) == data.max()


def test_linear_interpolated_quantile_lies_within_its_neighbours_bounds() -> None:
    data = np.random.default_rng(3).lognormal(2.0, 0.5, 10_001)
    s = QuantileSketch(0.02)
    s.update(data)
    lo = np.quantile(data, QS, method="lower")
    hi = np.quantile(data, QS, method="higher")
    got = s.quantile(QS)
    assert np.all(got >= lo * (1 - 0.02) - 1e-12) and np.all(got <= hi * (1 + 0.02) + 1e-12)


def test_batches_and_merges_give_the_same_state_as_one_update() -> None:
    data = seeded_cases()["signed"]
    whole = QuantileSketch()
    whole.update(data)
    parts = [QuantileSketch() for _ in range(7)]
    for part, chunk in zip(parts, np.array_split(data, 7), strict=True):
        for piece in np.array_split(chunk, 5):  # several updates per bucket
            part.update(piece)
    merged = QuantileSketch()
    for part in reversed(parts):
        merged += part
    np.testing.assert_array_equal(merged.quantile(QS), whole.quantile(QS))
    assert merged.count == whole.count
    assert merged.sum == pytest.approx(whole.sum)


def test_missing_values_are_counted_not_sketched() -> None:
    s = QuantileSketch()
    s.update([1.0, np.nan, 2.0, np.inf, -np.inf, 3.0])
    assert (s.count, s.n_missing) == (3, 3)
    assert np.isnan(QuantileSketch().quantile(0.5))
    with pytest.raises(ValueError, match="quantiles"):
        s.quantile(1.5)


def test_memory_is_bounded_and_low_buckets_fold() -> None:
    # 512 buckets of 2 % span a factor of ~27000; 5 % of the values lie far below that.
    s = QuantileSketch(0.01, max_bins=512)
    rng = np.random.default_rng(0)
    data = np.concatenate([10.0 ** rng.uniform(-8, -3, 5000), rng.lognormal(5, 1, 95_000)])
    for chunk in np.array_split(rng.permutation(data), 10):
        s.update(chunk)
    assert s.positive.counts.size <= 512
    # Only the bottom of the distribution loses accuracy; upper quantiles keep the guarantee.
    top = np.array([0.1, 0.5, 0.9, 0.99])
    exact = np.quantile(data, top, method="lower")
    assert np.all(np.abs(s.quantile(top) - exact) <= 0.01 * exact)
    # The folded bottom answers with the lowest kept bucket: too high, never too low.
    assert s.quantile(0.01) >= np.quantile(data, 0.01, method="lower")


def test_snapshot_round_trip_through_json() -> None:
    s = QuantileSketch()
    s.update(seeded_cases()["signed"])
    d = orjson.loads(orjson.dumps(s.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    back = QuantileSketch.from_dict(d)
    np.testing.assert_array_equal(back.quantile(QS), s.quantile(QS))
    empty = QuantileSketch.from_dict(
        orjson.loads(orjson.dumps(QuantileSketch().to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    )
    assert empty.count == 0 and np.isnan(empty.quantile(0.5))


def test_merging_different_accuracies_is_refused() -> None:
    with pytest.raises(ValueError, match="relative accuracy"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))


@settings(max_examples=200, deadline=None)
@given(
    # Magnitudes within a factor 1e15 of each other: under gamma^2048 (5.6e17 at a = 1 %) for
    # every accuracy drawn, so no bucket folds (folding is tested above).
    st.lists(
        st.one_of(
            st.just(0.0),
            st.floats(min_value=1e-3, max_value=1e12),
            st.floats(min_value=-1e12, max_value=-1e-3),
        ),
        min_size=1,
        max_size=300,
    ),
    st.floats(min_value=0.01, max_value=0.2),
)
def test_guarantee_holds_for_any_data(values: list[float], accuracy: float) -> None:
    data = np.asarray(values)
    s = QuantileSketch(accuracy)
    s.update(data)
    exact = np.quantile(data, QS, method="lower")
    assert np.all(np.abs(s.quantile(QS) - exact) <= accuracy * np.abs(exact) * (1 + 1e-9))


@pytest.mark.text  # ddsketch is installed into .venv-text by scripts/setup-text.sh
def test_same_answers_as_the_ddsketch_package() -> None:
    import ddsketch

    for name, data in seeded_cases().items():
        theirs = ddsketch.DDSketch(0.01)
        for v in data[:20_000]:
            theirs.add(float(v))
        ours = QuantileSketch(0.01)
        ours.update(data[:20_000])
        inner = QS[1:-1]  # ours clamps q=0 and q=1 to the exact extremes; ddsketch does not
        expected = [theirs.get_quantile_value(q) for q in inner]
        np.testing.assert_allclose(ours.quantile(inner), expected, rtol=1e-9, err_msg=name)


def test_serving_measures_per_name() -> None:
    rng = np.random.default_rng(5)
    a, b = (
        ServingMeasures(["latency_ms", "prompt_tokens"]),
        ServingMeasures(["latency_ms", "prompt_tokens"]),
    )
    lat = rng.lognormal(4, 0.7, 5000)
    a.update({"latency_ms": lat[:2000], "completion_tokens": np.ones(3)})
    b.update({"latency_ms": lat[2000:], "prompt_tokens": rng.poisson(80, 10).astype(float)})
    a += b
    summary = a.summary()
    assert summary["latency_ms"]["count"] == 5000
    assert summary["prompt_tokens"]["count"] == 10
    p99 = np.quantile(lat, 0.99, method="lower")
    assert abs(summary["latency_ms"]["p99"] - p99) <= 0.01 * p99
    assert set(summary) == {"latency_ms", "prompt_tokens"}
    back = ServingMeasures.from_dict(
        orjson.loads(orjson.dumps(a.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    )
    assert back.summary() == summary
    with pytest.raises(ValueError, match="different names"):
        a.merge(ServingMeasures(["latency_ms"]))
