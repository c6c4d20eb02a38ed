"""PCA reconstruction drift against a scikit-learn pipeline built as NannyML builds it
(SimpleImputer, frequency encoding, StandardScaler, PCA), and its mergeable state."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from monitor_worker.stats import reconstruction as R
from tests.support import estimation_data as data


@pytest.fixture(scope="module")
def mv() -> data.MultivariateSet:
    return data.multivariate()


def rows_of(x: np.ndarray, cat: np.ndarray) -> np.ndarray:
    return np.column_stack([x, cat.astype(np.float64)])


def sklearn_errors(x_ref, cat_ref, x, cat, n_components):
    """NannyML's steps with scikit-learn and numpy, categories encoded by reference share."""
    num = SimpleImputer(strategy="mean").fit(x_ref)
    share = np.bincount(cat_ref, minlength=5) / cat_ref.size

    def encode(xx, cc):
        return np.column_stack([num.transform(xx), share[cc]])

    scaler = StandardScaler().fit(encode(x_ref, cat_ref))
    pca = PCA(n_components=n_components, random_state=16).fit(
        scaler.transform(encode(x_ref, cat_ref))
    )
    z = scaler.transform(encode(x, cat))
    return np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1), pca


@pytest.mark.parametrize("n_components", [0.65, 0.9, 2])
def test_errors_equal_a_sklearn_pipeline(mv, n_components):
    cat_col = np.r_[np.zeros(mv.x_ref.shape[1], bool), True]
    model = R.ReconstructionModel.fit(
        rows_of(mv.x_ref, mv.cat_ref), cat_col, n_components=n_components, chunk_size=5000
    )
    expected, pca = sklearn_errors(mv.x_ref, mv.cat_ref, mv.x, mv.cat, n_components)
    assert model.n_components == pca.n_components_
    # errors near 0 (rows almost in the subspace) differ by rounding only: 1.5e-12 measured
    np.testing.assert_allclose(model.errors(rows_of(mv.x, mv.cat)), expected, rtol=1e-9, atol=1e-10)


def test_imputation_unseen_categories_and_thresholds(mv):
    cat_col = np.r_[np.zeros(mv.x_ref.shape[1], bool), True]
    ref = rows_of(mv.x_ref, mv.cat_ref)
    ref[:50, -1] = np.nan  # missing categories take the most frequent one
    model = R.ReconstructionModel.fit(ref, cat_col, n_slots=[0] * 6 + [7], chunk_size=5000)
    counts = np.bincount(mv.cat_ref[50:], minlength=7).astype(float)
    top = int(np.argmax(counts))
    counts[top] += 50
    np.testing.assert_allclose(model.frequencies[0], counts / counts.sum(), rtol=1e-12)
    np.testing.assert_allclose(model.fill[:6], np.nanmean(mv.x_ref, axis=0), rtol=1e-12)
    probe = np.array([[0.0] * 6 + [np.nan], [0.0] * 6 + [top], [0.0] * 6 + [6.0]])
    enc = model.encode(probe)
    assert enc[0, -1] == enc[1, -1] == pytest.approx(counts[top] / counts.sum())
    assert enc[2, -1] == 0.0  # a slot the reference never used: frequency 0, like NannyML
    values = model.reference_values
    assert values.size == 10
    assert model.thresholds.upper == pytest.approx(values.mean() + 3 * values.std())


def test_state_merges_and_matches_direct_mean_and_std(mv):
    cat_col = np.r_[np.zeros(6, bool), True]
    model = R.ReconstructionModel.fit(rows_of(mv.x_ref, mv.cat_ref), cat_col, chunk_size=5000)
    rows = rows_of(mv.x, mv.cat)[40_000:50_000]
    a, b = R.ReconstructionState(model), R.ReconstructionState(model)
    for start in range(0, 6000, 1000):
        a.update(rows[start : start + 1000])
    b.update(rows[6000:])
    merged = a.copy().merge(b)
    err = model.errors(rows)
    e = R.estimate(merged)
    assert e is not None
    assert e.value == pytest.approx(err.mean(), rel=1e-12)
    assert e.sampling_error == pytest.approx(err.std(ddof=1) / np.sqrt(err.size), rel=1e-9)
    assert e.alert  # these rows are decorrelated
    back = R.ReconstructionState.from_dict(orjson.loads(orjson.dumps(merged.to_dict())), model)
    assert R.estimate(back) == e
    model_back = R.ReconstructionModel.from_dict(
        orjson.loads(orjson.dumps(model.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    )
    np.testing.assert_allclose(model_back.errors(rows), err, rtol=1e-15)
    assert R.estimate(R.ReconstructionState(model)) is None


def test_refuses_one_feature_and_bad_rows(mv):
    with pytest.raises(ValueError, match="at least two features"):
        R.ReconstructionModel.fit(mv.x_ref[:, :1], [False])
    model = R.ReconstructionModel.fit(mv.x_ref, [False] * 6)
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        model.errors(mv.x[:, :5])
