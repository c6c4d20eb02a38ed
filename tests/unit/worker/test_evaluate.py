"""Evaluation of one merged window: drift per feature against scipy on the exact path,
per-feature overrides, figures withheld below minSamples."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from mm_api.worker_config import parse_config
from monitor_worker.evaluate import evaluate
from monitor_worker.ingest import Batch
from monitor_worker.profile import build_profile
from monitor_worker.reference import ReferenceData
from monitor_worker.window import WindowState


def setup(drift=None, min_samples=50, n_ref=400):
    config = parse_config(
        {
            "monitor": {"name": "m"},
            "model": {"name": "m", "task": "regression"},
            "window": {"minSamples": min_samples},
            "drift": drift or {},
            "outliers": {"enabled": False},
        }
    )
    rng = np.random.default_rng(11)
    ref = {"a": rng.normal(0, 1, n_ref), "b": rng.normal(0, 1, n_ref)}
    profile = build_profile(config, ReferenceData(pa.table(ref), "seeded"))
    state = WindowState(profile, 3600, 12, 1000, 3600, 10)
    return config, profile, state, ref


def feed(state, cols, now=100.0):
    n = len(next(iter(cols.values())))
    state.add(Batch(n, {k: np.asarray(v, float) for k, v in cols.items()}, {}, {}), now)


def test_small_samples_use_exact_ks_equal_to_scipy():
    config, profile, state, ref = setup()
    rng = np.random.default_rng(12)
    cur = {"a": rng.normal(0.5, 1, 300), "b": rng.normal(0, 1, 300)}
    feed(state, cur)
    ev = evaluate(config, profile, state.merged(100.0), at=100.0)
    for f in ("a", "b"):
        expected = stats.ks_2samp(ref[f], cur[f])
        assert ev.features[f].method == "ks"
        assert ev.features[f].exact
        assert ev.features[f].score == pytest.approx(expected.pvalue, rel=1e-9)
        assert ev.features[f].statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert ev.features["a"].drifted and not ev.features["b"].drifted
    assert ev.drift_share == 0.5 and ev.dataset_drift  # share >= shareThreshold 0.5


def test_overrides_change_method_threshold_or_skip_a_feature():
    drift = {
        "features": [
            {"name": "a", "method": "wasserstein", "threshold": 0.01},
            {"name": "b", "enabled": False},
        ]
    }
    config, profile, state, ref = setup(drift=drift)
    rng = np.random.default_rng(13)
    cur = {"a": rng.normal(0.1, 1, 300), "b": rng.normal(3, 1, 300)}
    feed(state, cur)
    ev = evaluate(config, profile, state.merged(100.0), at=100.0)
    assert set(ev.features) == {"a"}
    a = ev.features["a"]
    assert a.method == "wasserstein" and a.threshold == 0.01
    expected = stats.wasserstein_distance(ref["a"], cur["a"]) / np.std(ref["a"])
    assert a.score == pytest.approx(expected, rel=1e-6)


def test_below_min_samples_nothing_is_claimed():
    config, profile, state, _ = setup(min_samples=500)
    rng = np.random.default_rng(14)
    feed(state, {"a": rng.normal(5, 1, 100), "b": rng.normal(5, 1, 100)})
    ev = evaluate(config, profile, state.merged(100.0), at=100.0)
    assert not ev.sufficient and ev.records == 100
    assert ev.features == {} and ev.drift_share is None and ev.quality == {}
