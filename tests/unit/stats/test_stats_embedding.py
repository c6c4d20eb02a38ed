"""Embedding drift: MMD against Alibi Detect and a direct scipy implementation, the domain
classifier against scikit-learn and Evidently.

Peer values were recorded by tests/unit/stats/peers/record_*.py on the seeded cases of
peer_cases.py. Tolerances:

* MMD^2: 1e-5 relative to Alibi (Alibi keeps its bandwidth as a float32 parameter, so its kernel
  uses sigma rounded to 7 digits; we keep float64), 1e-10 to the direct float64 implementation.
* MMD p-value: both sides use 2000 random permutations, so each p-value has a binomial standard
  error of at most 0.011; tested at 0.05 (4.5 standard errors).
* ROC-AUC: 1e-12 to scikit-learn's roc_auc_score (the same rank formula).
* Domain classifier: the ``sklearn`` backend equals Evidently's AUC to 1e-9 (same split, same
  SGDClassifier); the ``numpy`` backend (logistic regression) must take Evidently's decision.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from monitor_worker.stats import embedding as E
from monitor_worker.stats.sketches import Reservoir
from tests.unit.stats.peer_cases import CLASSIFIER_CASES, MMD_CASES, case_data, checksum, vectors

FIXTURES = Path(__file__).parent / "fixtures"
ALIBI = json.loads((FIXTURES / "alibi_mmd.json").read_text())
EVIDENTLY = json.loads((FIXTURES / "evidently_embeddings.json").read_text())


def direct_mmd2(x: np.ndarray, y: np.ndarray, two_sigma2: float) -> float:
    """Gretton et al.'s unbiased MMD^2 written out with scipy's cdist."""
    kxx = np.exp(-cdist(x, x, "sqeuclidean") / two_sigma2)
    kyy = np.exp(-cdist(y, y, "sqeuclidean") / two_sigma2)
    kxy = np.exp(-cdist(x, y, "sqeuclidean") / two_sigma2)
    n, m = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def direct_permutation_p(x: np.ndarray, y: np.ndarray, two_sigma2: float, rounds: int) -> float:
    pooled = np.concatenate([x, y])
    observed = direct_mmd2(x, y, two_sigma2)
    rng = np.random.default_rng(123)
    hits = 0
    for _ in range(rounds):
        idx = rng.permutation(len(pooled))
        hits += observed <= direct_mmd2(pooled[idx[: len(x)]], pooled[idx[len(x) :]], two_sigma2)
    return hits / rounds


@pytest.mark.parametrize("case", MMD_CASES, ids=[c[0] for c in MMD_CASES])
def test_mmd_matches_alibi_detect(case: tuple) -> None:
    ref, cur = case_data(case)
    recorded = ALIBI["cases"][case[0]]
    assert (checksum(ref), checksum(cur)) == (
        recorded["checksum_reference"],
        recorded["checksum_current"],
    ), "numpy drew different data than when the fixture was recorded"
    prepared = E.MMDReference(ref)
    assert prepared.sigma == pytest.approx(recorded["sigma"], rel=1e-6)
    result = E.mmd_drift(prepared, cur, n_permutations=ALIBI["n_permutations"], seed=1)
    assert result.statistic == pytest.approx(recorded["mmd2"], rel=1e-5, abs=1e-9)
    assert result.p_value == pytest.approx(recorded["p_value"], abs=0.05)
    if abs(recorded["p_value"] - 0.05) > 0.05:
        assert result.drifted == recorded["is_drift"]
    assert result.method == "mmd" and result.score == result.p_value


def test_mmd_matches_a_direct_scipy_implementation() -> None:
    ref, cur = vectors(30, 120, 8), vectors(31, 90, 8, shift=0.3)
    two_sigma2 = float(np.median(cdist(ref, ref, "sqeuclidean")[np.triu_indices(120, 1)]))
    prepared = E.MMDReference(ref)
    # Alibi's lower median of all off-diagonal entries; numpy's median of the upper triangle
    # averages the two middle values: equal here to 1 %.
    assert prepared.two_sigma2 == pytest.approx(two_sigma2, rel=0.01)
    ours = E.mmd_drift(prepared, cur, n_permutations=400, seed=2)
    assert ours.statistic == pytest.approx(direct_mmd2(ref, cur, prepared.two_sigma2), rel=1e-10)
    p = direct_permutation_p(ref, cur, prepared.two_sigma2, 400)
    assert ours.p_value == pytest.approx(p, abs=0.07)  # two 400-draw estimates: SE <= 0.035


def test_mmd_is_calibrated_under_no_drift() -> None:
    """Under the null the p-value is uniform: about 5 % of seeds drift at 0.05."""
    drifted = [
        E.mmd_drift(vectors(s, 100, 4), vectors(1000 + s, 100, 4), seed=s).drifted
        for s in range(60)
    ]
    assert sum(drifted) <= 9  # binomial(60, 0.05): P(X >= 10) < 0.2 %


def test_mmd_subsamples_to_a_bounded_size() -> None:
    ref, cur = vectors(40, 3000, 4), vectors(41, 2500, 4)
    result = E.mmd_drift(E.MMDReference(ref, max_rows=500), cur)
    assert (result.n_reference, result.n_current) == (500, 500)


def test_roc_auc_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 5000)
    for scores in (rng.normal(size=5000) + y * 0.3, rng.integers(0, 5, 5000).astype(float)):
        assert E.roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        E.roc_auc(np.ones(3), np.arange(3.0))


def test_split_is_evidently_train_test_split() -> None:
    x = np.arange(1001)
    train, test = E.evidently_split(1001)
    x_train, x_test = train_test_split(x, test_size=0.5, random_state=42, shuffle=True)
    np.testing.assert_array_equal(x[train], x_train)
    np.testing.assert_array_equal(x[test], x_test)


def test_logistic_fit_is_scikit_learn_logistic_regression() -> None:
    ref, cur = vectors(50, 1500, 12), vectors(51, 1500, 12, shift=0.2)
    x, y = np.concatenate([ref, cur]), np.r_[np.zeros(1500), np.ones(1500)]
    model = E.fit_logistic(x, y)
    scaler = StandardScaler().fit(x)
    theirs = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(scaler.transform(x), y)
    np.testing.assert_allclose(model.weights, theirs.coef_.ravel(), atol=1e-4)
    assert model.intercept == pytest.approx(float(theirs.intercept_[0]), abs=1e-4)


@pytest.mark.parametrize("case", CLASSIFIER_CASES, ids=[c[0] for c in CLASSIFIER_CASES])
def test_domain_classifier_takes_evidently_decisions(case: tuple) -> None:
    ref, cur = case_data(case)
    recorded = EVIDENTLY["cases"][case[0]]
    assert (checksum(ref), checksum(cur)) == (
        recorded["checksum_reference"],
        recorded["checksum_current"],
    ), "numpy drew different data than when the fixture was recorded"
    ours = E.domain_classifier_drift(ref, cur)
    assert ours.drifted == recorded["drifted"]
    assert ours.method == "domain-classifier" and ours.p_value is None
    if recorded["bootstrap"]:
        assert ours.threshold != 0.55  # bootstrapped from random AUCs, as Evidently
    else:
        assert ours.threshold == 0.55


def test_sklearn_backend_reproduces_evidently_exactly() -> None:
    case = CLASSIFIER_CASES[2]
    ref, cur = case_data(case)
    ours = E.domain_classifier_drift(ref, cur, backend="sklearn")
    assert ours.score == pytest.approx(EVIDENTLY["cases"][case[0]]["roc_auc"], abs=1e-9)


def test_domain_classifier_is_generic_over_numeric_matrices() -> None:
    """Tabular rows (mixed scales, a constant column) work the same way."""
    rng = np.random.default_rng(9)
    ref = np.c_[rng.normal(100, 10, 2000), rng.exponential(1, 2000), np.ones(2000)]
    cur = np.c_[rng.normal(103, 10, 2000), rng.exponential(1, 2000), np.ones(2000)]
    result = E.domain_classifier_drift(ref, cur)
    assert result.drifted and result.score > 0.55


def test_auto_choice_and_window_sample_from_a_reservoir() -> None:
    ref = vectors(60, 5000, 16)
    window = Reservoir(16, capacity=800, seed=0)
    for bucket in range(5):  # five buckets of traffic, merged into the window's sample
        b = Reservoir(16, capacity=800, seed=bucket)
        b.update(vectors(70 + bucket, 4000, 16, shift=0.4))
        window.merge(b)
    assert window.sample.shape == (800, 16)  # bounded by capacity, not by the 20000 rows
    small = E.embedding_drift(ref, window.sample)
    assert small.method == "mmd" and small.drifted
    large = E.embedding_drift(ref, vectors(80, 3000, 16, shift=0.4))
    assert large.method == "domain-classifier" and large.drifted
    assert E.choose_method(999, 5000) == "mmd"
    assert E.choose_method(1000, 1000) == "domain-classifier"


def test_bad_inputs_name_the_problem() -> None:
    good = vectors(1, 50, 4)
    with pytest.raises(ValueError, match="dimension"):
        E.mmd_drift(good, vectors(2, 50, 5))
    with pytest.raises(ValueError, match="NaN"):
        bad = good.copy()
        bad[3, 1] = np.nan
        E.domain_classifier_drift(good, bad)
    with pytest.raises(ValueError, match="at least 2 rows"):
        E.embedding_drift(good, good[:1])
    with pytest.raises(ValueError, match="identical"):
        E.MMDReference(np.ones((10, 3)))
    with pytest.raises(ValueError, match="unknown"):
        E.embedding_drift(good, good, method="cosine")
