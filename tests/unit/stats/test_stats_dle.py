"""DLE: the numpy tree walk equals scikit-learn's ``predict``; the loss sums are mergeable
and weighted right when a bucket is scored from a sample."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from monitor_worker.estimators import export_trees, fit_dle
from monitor_worker.stats import dle as L
from tests.support import estimation_data as data


@pytest.fixture(scope="module")
def reg() -> data.RegressionSet:
    return data.regression()


@pytest.fixture(scope="module")
def model(reg) -> L.DirectLossModel:
    return fit_dle(np.column_stack([reg.x_ref, reg.pred_ref]), reg.y_ref, chunk_size=5000)


@pytest.mark.parametrize("seed", [0, 1])
def test_tree_walk_equals_sklearn_predict_with_missing_values(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(10_000, 5))
    x[rng.random(x.shape) < 0.05] = np.nan  # HGB learns where NaN goes at each split
    y = np.nan_to_num(x[:, 0]) ** 2 + np.abs(np.nan_to_num(x[:, 1])) + rng.normal(size=10_000)
    hgb = HistGradientBoostingRegressor(random_state=seed, early_stopping=False).fit(x, y)
    trees = export_trees(hgb)
    probe = rng.normal(scale=2.0, size=(4000, 5))
    probe[rng.random(probe.shape) < 0.1] = np.nan
    np.testing.assert_allclose(trees.predict(probe), hgb.predict(probe), rtol=1e-12, atol=1e-12)
    assert trees.roots.size == hgb.n_iter_
    assert np.isinf(trees.threshold).any()  # "NaN right, values left" splits: JSON-safe below
    back = L.TreeEnsemble.from_dict(
        orjson.loads(orjson.dumps(trees.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    )
    np.testing.assert_array_equal(back.predict(probe), trees.predict(probe))


def test_loss_model_scores_like_its_sklearn_models(model, reg):
    rows = np.column_stack([reg.x_ref, reg.pred_ref])[:5000]
    err = reg.y_ref - reg.pred_ref
    for target, trees in ((np.abs(err), model.abs_error), (err * err, model.squared_error)):
        hgb = HistGradientBoostingRegressor(random_state=0).fit(
            np.column_stack([reg.x_ref, reg.pred_ref]), target
        )
        np.testing.assert_allclose(trees.predict(rows), hgb.predict(rows), rtol=1e-12, atol=1e-12)
    abs_hat, sq_hat = model.losses(rows)
    assert (abs_hat >= 0).all() and (sq_hat >= 0).all()  # clipped like NannyML


def test_nannyml_sampling_components_and_thresholds(model, reg):
    err = reg.y_ref - reg.pred_ref
    assert model.sampling["mae"] == pytest.approx(np.std(np.abs(err)))
    assert model.sampling["rmse"] == pytest.approx((np.std(err**2), np.mean(err**2)))
    assert L.sampling_error(model, "mae", 400) == pytest.approx(np.std(np.abs(err)) / 20)
    chunk_mae = [np.abs(err[s : s + 5000]).mean() for s in range(0, err.size, 5000)]
    lower = model.thresholds["mae"].lower
    assert lower == pytest.approx(np.mean(chunk_mae) - 3 * np.std(chunk_mae))


def test_sums_merge_and_a_sample_stands_for_its_bucket(model, reg):
    rows = np.column_stack([reg.x, reg.pred])
    whole = L.LossState.from_rows(model, rows[:20_000])
    parts = L.LossState.from_rows(model, rows[:7000]).merge(
        L.LossState.from_rows(model, rows[7000:20_000])
    )
    for metric in L.DLE_METRICS:
        assert L.expected_value(parts, metric) == pytest.approx(
            L.expected_value(whole, metric), rel=1e-12
        )
        assert L.sample_error(whole, metric) == 0.0  # every record scored
    # Bucket A: 20k records, 2000 sampled; bucket B: 1000 records, all scored. The window's
    # MAE weights A's sample mean by 20k, not by its 2000 rows.
    a, b = rows[:20_000], rows[20_000:21_000]
    pick = np.random.default_rng(0).choice(20_000, 2000, replace=False)
    window = L.LossState.from_rows(model, a[pick], n=20_000).merge(L.LossState.from_rows(model, b))
    abs_a, _ = model.losses(a[pick])
    abs_b, _ = model.losses(b)
    expected = (20_000 * abs_a.mean() + abs_b.sum()) / 21_000
    assert L.expected_value(window, "mae") == pytest.approx(expected, rel=1e-12)
    exact = L.expected_value(L.LossState.from_rows(model, rows[:21_000]), "mae")
    assert abs(L.expected_value(window, "mae") - exact) < 4 * L.sample_error(window, "mae")
    assert 0 < L.sample_error(window, "mae") < 0.01
    blob = orjson.loads(orjson.dumps(window.to_dict()))
    back = L.LossState.from_dict(blob, model)
    assert L.estimate_all(back) == L.estimate_all(window)


def test_model_survives_a_round_trip_and_refuses_bad_rows(model, reg):
    blob = orjson.dumps(model.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)
    back = L.DirectLossModel.from_dict(orjson.loads(blob))
    rows = np.column_stack([reg.x, reg.pred])[:100]
    np.testing.assert_array_equal(back.losses(rows)[0], model.losses(rows)[0])
    assert back.sampling["mae"] == model.sampling["mae"]
    assert back.sampling["rmse"] == pytest.approx(model.sampling["rmse"])
    with pytest.raises(ValueError, match="features then prediction"):
        model.losses(reg.x[:10])
    assert L.estimate(L.LossState(model), "mae") is None
    with pytest.raises(ValueError, match="at least 10 labelled rows"):
        fit_dle(np.ones((5, 3)), np.ones(5))
