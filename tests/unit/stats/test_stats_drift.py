"""Drift tests: exact paths against scipy, binned paths within the documented tolerances,
decisions, the automatic choice and the dataset-level share."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from monitor_worker.stats import drift as D
from monitor_worker.stats.sketches import (
    CategoricalCounts,
    CategoricalVocabulary,
    NumericBinning,
    NumericHistogram,
)


def hist_pair(ref: np.ndarray, cur: np.ndarray) -> tuple[NumericHistogram, NumericHistogram]:
    b = NumericBinning.from_reference(ref)
    hr, hc = NumericHistogram(b), NumericHistogram(b)
    hr.update(ref)
    hc.update(cur)
    return hr, hc


def cat_pair(ref, cur, max_categories: int = 1000) -> tuple[CategoricalCounts, CategoricalCounts]:
    v = CategoricalVocabulary.from_reference(ref, max_categories=max_categories)
    r, c = CategoricalCounts(v), CategoricalCounts(v)
    r.update(ref)
    c.update(cur)
    return r, c


# ------------------------------------------------------------------- exact vs scipy


@pytest.mark.parametrize(
    ("n", "m", "shift"), [(200, 300, 0.0), (800, 700, 0.3), (5000, 20000, 0.05)]
)
def test_ks_exact_matches_scipy(n: int, m: int, shift: float) -> None:
    rng = np.random.default_rng(n)
    ref, cur = rng.normal(size=n), rng.normal(shift, 1, m)
    res = D.ks_test(np.append(ref, np.nan), cur)
    expected = stats.ks_2samp(ref, cur)
    assert res.statistic == expected.statistic and res.p_value == expected.pvalue
    assert res.drifted == (expected.pvalue <= 0.05) and res.exact


def test_wasserstein_exact_matches_scipy() -> None:
    rng = np.random.default_rng(10)
    ref, cur = rng.lognormal(size=700), rng.lognormal(0.2, 1, 900)
    res = D.wasserstein_norm(ref, cur)
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    np.testing.assert_allclose(res.statistic, expected, rtol=1e-12)
    # Constant reference: the norm is floored at 0.001.
    flat = D.wasserstein_norm(np.ones(10), np.full(10, 1.01))
    np.testing.assert_allclose(flat.statistic, 0.01 / 0.001, rtol=1e-9)


def test_chi_square_matches_scipy_over_union_of_keys() -> None:
    rng = np.random.default_rng(11)
    ref = rng.choice(list("abcde"), size=600, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    cur = rng.choice(list("abcde"), size=450, p=[0.25, 0.3, 0.25, 0.1, 0.1])
    r, c = cat_pair(ref, cur)
    res = D.categorical_drift(r, c, "chisquare")
    rc, cc = Counter(ref.tolist()), Counter(cur.tolist())
    keys = sorted(set(rc) | set(cc))
    f_exp = [rc[k] * len(cur) / len(ref) for k in keys]
    expected = stats.chisquare([cc[k] for k in keys], f_exp)
    np.testing.assert_allclose([res.statistic, res.p_value], expected, rtol=1e-9)
    # A category the reference never had: infinite statistic, p = 0, drift.
    r2, c2 = cat_pair(ref, np.append(cur, "new"))
    res2 = D.categorical_drift(r2, c2, "chisquare")
    assert res2.statistic == math.inf and res2.p_value == 0.0 and res2.drifted


def test_z_test_equals_uncorrected_two_by_two_chi_square() -> None:
    rng = np.random.default_rng(12)
    ref = rng.choice(["no", "yes"], size=900, p=[0.7, 0.3])
    cur = rng.choice(["no", "yes"], size=1100, p=[0.66, 0.34])
    r, c = cat_pair(ref, cur)
    res = D.categorical_drift(r, c, "z")
    table = [
        [np.sum(ref == "yes"), np.sum(ref == "no")],
        [np.sum(cur == "yes"), np.sum(cur == "no")],
    ]
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    np.testing.assert_allclose(res.statistic**2, chi2, rtol=1e-9)
    np.testing.assert_allclose(res.p_value, p, rtol=1e-7)
    # Identical single value on both sides: p = 1 (Evidently's special case).
    same = D.categorical_drift(*cat_pair(["a"] * 5, ["a"] * 7), "z")
    assert same.p_value == 1.0 and not same.drifted


def test_js_and_psi_on_evidently_bins() -> None:
    rng = np.random.default_rng(13)
    ref, cur = rng.normal(size=3000), rng.normal(0.2, 1.1, 2000)
    r_counts, c_counts = D.evidently_bins(ref, cur)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(cur, edges)[0] / cur.size
    np.testing.assert_array_equal(r_counts / ref.size, p)
    js = D.jensen_shannon(r_counts, c_counts)
    np.testing.assert_allclose(js.statistic, distance.jensenshannon(p, q), rtol=1e-12)
    # PSI written out term by term with Evidently's zero filling.
    p_f, q_f = p.copy(), q.copy()
    for arr in (p_f, q_f):
        smallest = min(v for v in arr if v > 0)
        fill = smallest / 1e6 if smallest <= 1e-4 else 1e-4
        arr[arr == 0] = fill
    expected = sum((a - b) * math.log(a / b) for a, b in zip(p_f, q_f, strict=True))
    np.testing.assert_allclose(D.psi(r_counts, c_counts).statistic, expected, rtol=1e-12)


def test_few_unique_numeric_values_are_binned_as_keys() -> None:
    ref = np.array([0.0, 1.0, 1.0, 2.0] * 50)
    cur = np.array([1.0, 2.0, 3.0, 3.0] * 30)
    r, c = D.evidently_bins(ref, cur)
    np.testing.assert_array_equal(r, [50, 100, 50, 0])
    np.testing.assert_array_equal(c, [0, 30, 30, 60])


@pytest.mark.parametrize("n", [1, 2, 7, 100, 12345])
def test_sturges_edges_match_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(3, 2, n)
    np.testing.assert_array_equal(
        D.sturges_edges(x.min(), x.max(), n), np.histogram_bin_edges(x, bins="sturges")
    )
    const = np.full(n, 4.0)
    np.testing.assert_array_equal(
        D.sturges_edges(4.0, 4.0, n), np.histogram_bin_edges(const, bins="sturges")
    )


# --------------------------------------------------------- binned within tolerances

N_REF, N_CUR = 5000, 20_000


def _distributions():
    rng = np.random.default_rng(20)
    normal = rng.normal
    return {
        "same normal": (normal(size=N_REF), normal(size=N_CUR)),
        "shifted": (normal(size=N_REF), normal(0.3, 1, N_CUR)),
        "scaled": (normal(size=N_REF), normal(0, 1.5, N_CUR)),
        "heavy tails t(2)": (rng.standard_t(2, N_REF), rng.standard_t(2, N_CUR) + 0.2),
        "lognormal": (rng.lognormal(size=N_REF), 1.2 * rng.lognormal(size=N_CUR)),
        "partly out of range": (normal(size=N_REF), normal(2.5, 1, N_CUR)),
        "wholly out of range": (normal(size=N_REF), normal(-10, 1, N_CUR)),
        "zero inflated": (
            np.where(rng.random(N_REF) < 0.5, 0.0, normal(size=N_REF)),
            np.where(rng.random(N_CUR) < 0.4, 0.0, normal(size=N_CUR)),
        ),
        "integers 0..99": (
            rng.integers(0, 100, N_REF).astype(float),
            rng.integers(3, 103, N_CUR).astype(float),
        ),
        "constant": (np.full(N_REF, 5.0), np.where(rng.random(N_CUR) < 0.05, 5.5, 5.0)),
    }


DISTRIBUTIONS = _distributions()


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_binned_statistics_within_documented_tolerance(name: str) -> None:
    ref, cur = DISTRIBUTIONS[name]
    hr, hc = hist_pair(ref, cur)
    d_exact = D.ks_test(ref, cur).statistic
    d_binned = D.ks_test_binned(hr, hc).statistic
    assert 0.0 <= d_exact - d_binned <= 0.002
    w_exact = D.wasserstein_norm(ref, cur).statistic
    w_binned = D.wasserstein_norm_binned(hr, hc).statistic
    assert abs(w_binned - w_exact) <= 0.01 + 0.01 * w_exact
    js_exact = D.jensen_shannon(*D.evidently_bins(ref, cur)).statistic
    js_binned = D.jensen_shannon(*D.evidently_bins_binned(hr, hc)).statistic
    assert abs(js_binned - js_exact) <= 0.01
    psi_exact = D.psi(*D.evidently_bins(ref, cur)).statistic
    psi_binned = D.psi(*D.evidently_bins_binned(hr, hc)).statistic
    if psi_exact < 1:
        assert abs(psi_binned - psi_exact) <= 0.02 + 0.05 * psi_exact
    else:  # gross drift: Evidently's zero filling dominates; only the decision is stable
        assert psi_binned >= 1


def test_binned_ks_is_exact_for_discrete_data_including_the_p_value() -> None:
    rng = np.random.default_rng(21)
    ref = rng.poisson(4, 12_000).astype(float)
    cur = rng.poisson(4.1, 15_000).astype(float)
    cur = cur[np.isin(cur, ref)]  # only reference values: the edges see every jump
    hr, hc = hist_pair(ref, cur)
    binned = D.ks_test_binned(hr, hc)
    expected = stats.ks_2samp(ref, cur, method="asymp")
    np.testing.assert_allclose(binned.statistic, expected.statistic, rtol=1e-12)
    np.testing.assert_allclose(binned.p_value, expected.pvalue, rtol=1e-9)
    w = D.wasserstein_norm_binned(hr, hc).statistic
    np.testing.assert_allclose(w, D.wasserstein_norm(ref, cur).statistic, rtol=1e-9)


def test_discrete_keys_from_histograms_match_raw_js() -> None:
    rng = np.random.default_rng(22)
    ref = rng.poisson(3, 4000).astype(float)
    cur = np.concatenate([rng.poisson(3.3, 3000), [0.5, 0.5, 99.0]])  # two values not in ref
    hr, hc = hist_pair(ref, cur)
    exact = D.jensen_shannon(*D.evidently_bins(ref, cur)).statistic
    binned = D.jensen_shannon(*D.evidently_bins_binned(hr, hc)).statistic
    np.testing.assert_allclose(binned, exact, rtol=1e-9)


# --------------------------------------------------------------------- decisions

NUMERIC_METHODS = ["ks", "wasserstein", "jensenshannon", "psi"]


@pytest.mark.parametrize("method", NUMERIC_METHODS)
@pytest.mark.parametrize("path", ["exact", "binned"])
def test_numeric_decisions(method: str, path: str) -> None:
    rng = np.random.default_rng(30)
    ref = rng.normal(size=3000)
    same = rng.normal(size=3000)
    drifted = rng.normal(1.0, 1.0, 3000)
    for cur, expected in ((same, False), (drifted, True)):
        hr, hc = hist_pair(ref, cur)
        kwargs = {"reference_sample": ref, "current_sample": cur} if path == "exact" else {}
        res = D.numeric_drift(hr, hc, method, **kwargs)
        assert res.drifted is expected, res
        assert res.exact == (path == "exact") and res.method == method


@pytest.mark.parametrize("method", ["chisquare", "z", "jensenshannon", "psi"])
def test_categorical_decisions(method: str) -> None:
    rng = np.random.default_rng(31)
    cats = ["a", "b"] if method == "z" else list("abcd")
    p_ref = np.full(len(cats), 1 / len(cats))
    p_drift = np.array([0.7, 0.3]) if method == "z" else np.array([0.55, 0.15, 0.15, 0.15])
    ref = rng.choice(cats, 4000, p=p_ref)
    for cur, expected in (
        (rng.choice(cats, 4000, p=p_ref), False),
        (rng.choice(cats, 4000, p=p_drift), True),
    ):
        res = D.categorical_drift(*cat_pair(ref, cur), method)
        assert res.drifted is expected, res


@pytest.mark.parametrize("method", ["chisquare", "z"])
def test_numeric_few_values_p_value_tests(method: str) -> None:
    rng = np.random.default_rng(32)
    values = [0.0, 1.0] if method == "z" else [0.0, 1.0, 2.0]
    ref = rng.choice(values, 800)
    for cur, expected in ((np.concatenate([ref, ref[::-1]]), False), (np.zeros(900), True)):
        hr, hc = hist_pair(ref, cur)
        exact = D.numeric_drift(hr, hc, method, reference_sample=ref, current_sample=cur)
        binned = D.numeric_drift(hr, hc, method)
        assert exact.drifted is expected and binned.drifted is expected
        np.testing.assert_allclose(binned.statistic, exact.statistic, rtol=1e-9)


def test_threshold_semantics() -> None:
    assert D.is_drifted("ks", 0.05, 0.05)  # Evidently's KS uses <=
    assert not D.is_drifted("chisquare", 0.05, 0.05)
    assert not D.is_drifted("z", 0.05, 0.05)
    assert D.is_drifted("wasserstein", 0.1, 0.1)
    assert not D.is_drifted("psi", 0.0999, 0.1)
    res = D.jensen_shannon([10, 10], [10, 12], threshold=0.01)
    assert res.threshold == 0.01 and res.drifted and res.score == res.statistic
    with pytest.raises(ValueError):
        D.is_drifted("nope", 0.1, 0.1)


# ---------------------------------------------------------- choice and dataset share


@pytest.mark.parametrize(
    ("feature_type", "n_ref", "n_unique", "expected"),
    [
        ("numerical", 1000, 2, "z"),
        ("numerical", 1000, 3, "chisquare"),
        ("numerical", 1000, 5, "chisquare"),
        ("numerical", 1000, 6, "ks"),
        ("numerical", 1001, 5, "jensenshannon"),
        ("numerical", 1001, 6, "wasserstein"),
        ("categorical", 10, 2, "z"),
        ("categorical", 1000, 3, "chisquare"),
        ("categorical", 1001, 2, "jensenshannon"),
        ("categorical", 5000, 500, "jensenshannon"),
    ],
)
def test_choose_method(feature_type: str, n_ref: int, n_unique: int, expected: str) -> None:
    assert D.choose_method(feature_type, n_ref, n_unique) == expected


def test_automatic_choice_from_states_counts_new_values() -> None:
    # Reference has 2 values; current brings a third: z would be wrong, chisquare is right.
    ref = np.array([0.0, 1.0] * 100)
    cur = np.array([0.0, 1.0, 2.0] * 50)
    hr, hc = hist_pair(ref, cur)
    assert D.numeric_drift(hr, hc).method == "chisquare"
    assert D.numeric_drift(*hist_pair(ref, ref)).method == "z"
    big = np.random.default_rng(33).normal(size=1001)
    assert D.numeric_drift(*hist_pair(big, big)).method == "wasserstein"
    assert D.numeric_drift(*hist_pair(big[:1000], big[:1000])).method == "ks"
    r, c = cat_pair(["x", "y"] * 10, ["x", "y", "w"])
    assert D.categorical_drift(r, c).method == "chisquare"
    assert D.categorical_drift(*cat_pair(["x", "y"] * 10, ["x"])).method == "z"


def test_drift_share() -> None:
    def res(drifted: bool) -> D.DriftResult:
        return D.DriftResult("psi", 0.2, None, 0.1, drifted)

    half = D.drift_share({"a": res(True), "b": res(False)})
    assert (half.n_features, half.n_drifted, half.share, half.drifted) == (2, 1, 0.5, True)
    third = D.drift_share([res(True), res(False), res(False)], share_threshold=0.5)
    assert third.share == pytest.approx(1 / 3) and not third.drifted
    assert not D.drift_share([]).drifted


def test_invalid_inputs_raise() -> None:
    rng = np.random.default_rng(34)
    hr, _ = hist_pair(rng.normal(size=100), rng.normal(size=10))
    other, _ = hist_pair(rng.normal(size=100), rng.normal(size=10))
    with pytest.raises(ValueError):
        D.ks_test_binned(hr, other)
    with pytest.raises(ValueError):
        D.wasserstein_norm_binned(hr, NumericHistogram(hr.binning))
    with pytest.raises(ValueError):
        D.ks_test([1.0, 2.0], [np.nan])
    with pytest.raises(ValueError):
        D.categorical_drift(*cat_pair(["a"], ["a"]), "ks")
    with pytest.raises(ValueError):
        D.choose_method("text", 10, 10)


@pytest.mark.parametrize("df", [1, 2, 3, 7, 30, 150, 999])
def test_chi2_sf_matches_scipy(df: int) -> None:
    for x in (1e-6, 0.01, 0.5, df / 2, df - 1, df, df + 3, 2 * df, 5 * df + 40, 1e4):
        assert D.chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-12, abs=1e-300), (
            x,
            df,
        )
    assert D.chi2_sf(0.0, df) == 1.0 and D.chi2_sf(math.inf, df) == 0.0


def test_numpy_distances_match_scipy() -> None:
    from scipy.spatial import distance

    rng = np.random.default_rng(21)
    for _ in range(20):
        u, v = rng.normal(size=rng.integers(1, 500)), rng.lognormal(size=rng.integers(1, 500))
        assert D.wasserstein_distance(u, v) == pytest.approx(
            stats.wasserstein_distance(u, v), rel=1e-12
        )
        p, q = rng.random(30) * (rng.random(30) > 0.3), rng.random(30)
        assert D.jensenshannon_distance(p, q) == pytest.approx(
            distance.jensenshannon(p, q), rel=1e-12
        )
    for z in (0.0, 0.5, -1.3, 3.2, -8.0):
        assert D.normal_cdf(z) == pytest.approx(stats.norm.cdf(z), rel=1e-14)


def test_the_serving_path_does_not_import_scipy_stats() -> None:
    """Wasserstein, Jensen-Shannon, PSI, chi-square and z tests run without scipy.stats (about
    50 MB); only the KS tests of small references load it."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from monitor_worker.stats import drift as D\n"
        "D.chi_square([5, 6, 7], [7, 6, 5]); D.z_test([5, 6], [6, 5])\n"
        "D.jensen_shannon([1, 2], [2, 1]); D.psi([1, 2], [2, 1])\n"
        "D.wasserstein_norm(np.arange(10.0), np.arange(3.0))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scipy.stats', 'scipy.spatial'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
