"""Quality accumulators against scikit-learn."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from monitor_worker.stats import quality as Q


def softmax_scores(rng: np.random.Generator, y: np.ndarray, k: int, sep: float) -> np.ndarray:
    logits = rng.normal(size=(y.size, k))
    logits[np.arange(y.size), y] += sep
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def classification(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    proba = softmax_scores(rng, y, k, 1.2)
    return y, proba.argmax(axis=1), proba


def state_of(y, pred, proba, k: int, chunks: int = 3) -> Q.ClassificationState:
    s = Q.ClassificationState(k)
    for part in np.array_split(np.arange(y.size), chunks):
        s.update(y[part], pred[part], None if proba is None else proba[part])
    return s


@pytest.mark.parametrize(("k", "seed"), [(2, 0), (3, 1), (5, 2)])
def test_confusion_and_label_metrics_match_sklearn(k: int, seed: int) -> None:
    y, pred, proba = classification(3000, k, seed)
    s = state_of(y, pred, proba, k)
    labels = list(range(k))
    np.testing.assert_array_equal(s.confusion, skm.confusion_matrix(y, pred, labels=labels))
    assert Q.accuracy(s) == skm.accuracy_score(y, pred)
    averages = ["macro", "weighted", "micro"] + (["binary"] if k == 2 else [])
    for avg in averages:
        for ours, theirs in (
            (Q.precision, skm.precision_score),
            (Q.recall, skm.recall_score),
            (Q.f1, skm.f1_score),
        ):
            expected = theirs(y, pred, average=avg, zero_division=0)
            np.testing.assert_allclose(ours(s, average=avg), expected, rtol=1e-12, err_msg=avg)


def test_absent_and_never_predicted_classes_like_sklearn() -> None:
    # 4 classes declared; class 3 never occurs, class 2 is never predicted.
    y = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    pred = np.array([0, 1, 1, 1, 0, 1, 1, 0])
    s = Q.ClassificationState(4)
    s.update(y, pred)
    for avg in ("macro", "weighted", "micro"):
        for ours, theirs in (
            (Q.precision, skm.precision_score),
            (Q.recall, skm.recall_score),
            (Q.f1, skm.f1_score),
        ):
            expected = theirs(y, pred, average=avg, zero_division=0)
            np.testing.assert_allclose(ours(s, average=avg), expected, rtol=1e-12)
    with pytest.raises(ValueError):
        Q.precision(s, average="binary")


def test_binary_zero_division() -> None:
    s = Q.ClassificationState(2)
    s.update([0, 0, 1], [0, 0, 0])  # positive class never predicted
    assert Q.precision(s) == skm.precision_score([0, 0, 1], [0, 0, 0], zero_division=0) == 0.0
    assert Q.f1(s) == 0.0
    assert Q.recall(s, pos_label=0) == 1.0


@pytest.mark.parametrize("k", [2, 4])
def test_log_loss_matches_sklearn_including_clipping(k: int) -> None:
    y, pred, proba = classification(2000, k, 3)
    proba = proba.copy()
    proba[:5] = np.eye(k)[(y[:5] + 1) % k]  # confidently wrong: probability 0 for the truth
    proba[5:10] = np.eye(k)[y[5:10]]  # probability exactly 1
    s = state_of(y, pred, proba, k)
    np.testing.assert_allclose(
        Q.log_loss(s), skm.log_loss(y, proba, labels=list(range(k))), rtol=1e-9
    )


def test_binary_one_column_probabilities() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 1500)
    p1 = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    s = state_of(y, (p1 > 0.5).astype(int), p1, 2)
    np.testing.assert_allclose(Q.log_loss(s), skm.log_loss(y, p1), rtol=1e-9)
    assert abs(Q.roc_auc(s) - skm.roc_auc_score(y, p1)) <= 1e-3


@pytest.mark.parametrize(("k", "n", "sep"), [(2, 2000, 0.3), (2, 50_000, 2.5), (3, 20_000, 1.0)])
def test_binned_roc_auc_within_tolerance(k: int, n: int, sep: float) -> None:
    rng = np.random.default_rng(n + k)
    y = rng.integers(0, k, n)
    proba = softmax_scores(rng, y, k, sep)
    s = state_of(y, proba.argmax(axis=1), proba, k)
    expected = (
        skm.roc_auc_score(y, proba[:, 1])
        if k == 2
        else skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert abs(Q.roc_auc(s) - expected) <= 5e-4


def test_roc_auc_is_exact_when_scores_sit_on_bin_centres() -> None:
    # Ties inside a bin count half, exactly as sklearn treats tied scores.
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 3000)
    p1 = (np.clip(rng.normal(300 + 200 * y, 150), 0, 999).astype(int) + 0.5) / 1000
    s = state_of(y, (p1 > 0.5).astype(int), p1, 2)
    np.testing.assert_allclose(Q.roc_auc(s), skm.roc_auc_score(y, p1), rtol=1e-12)


def test_minimum_counts_and_undefined_metrics() -> None:
    s = Q.ClassificationState(3)
    assert Q.accuracy(s) is None and Q.f1(s, average="macro") is None
    assert Q.log_loss(s) is None and Q.roc_auc(s) is None
    s.update([0, 1, 2], [0, 1, 1], np.full((3, 3), 1 / 3))
    assert Q.accuracy(s) == pytest.approx(2 / 3)
    assert Q.accuracy(s, min_count=4) is None and Q.log_loss(s, min_count=4) is None
    one_class = Q.ClassificationState(2)
    one_class.update([1, 1], [1, 0], [0.9, 0.2])
    assert Q.roc_auc(one_class) is None  # sklearn raises: only one class in y_true
    with pytest.raises(ValueError):
        s.update([3], [0])
    with pytest.raises(ValueError):
        s.update([0], [0], [0.5])  # one-column probabilities need a binary state


_labels = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.floats(0, 1)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(_labels, min_size=1, max_size=4))
def test_classification_merge_equals_single_update(chunks) -> None:
    def batch(rows):
        y = np.array([r[0] for r in rows], dtype=np.int64)
        pred = np.array([r[1] for r in rows], dtype=np.int64)
        a = np.array([r[2] for r in rows])
        proba = np.column_stack([a, (1 - a) / 2, (1 - a) / 2]) if rows else np.zeros((0, 3))
        return y, pred, proba

    whole = Q.ClassificationState(3, n_score_bins=20)
    whole.update(*batch([r for c in chunks for r in c]))
    merged = Q.ClassificationState(3, n_score_bins=20)
    for c in chunks:
        part = Q.ClassificationState(3, n_score_bins=20)
        part.update(*batch(c))
        merged += part
    np.testing.assert_array_equal(merged.confusion, whole.confusion)
    np.testing.assert_array_equal(merged.score_all, whole.score_all)
    np.testing.assert_array_equal(merged.score_pos, whole.score_pos)
    assert merged.n_proba == whole.n_proba
    np.testing.assert_allclose(merged.log_loss_sum, whole.log_loss_sum, rtol=1e-9)


def test_classification_round_trip() -> None:
    y, pred, proba = classification(500, 3, 6)
    s = state_of(y, pred, proba, 3)
    back = Q.ClassificationState.from_dict(json_round_trip(s.to_dict()))
    np.testing.assert_array_equal(back.confusion, s.confusion)
    np.testing.assert_array_equal(back.score_pos, s.score_pos)
    assert back.log_loss_sum == s.log_loss_sum and back.n_proba == s.n_proba
    assert Q.roc_auc(back) == Q.roc_auc(s)


# ------------------------------------------------------------------------ regression


def regression_state(y, pred, chunks: int = 4) -> Q.RegressionState:
    s = Q.RegressionState()
    for part in np.array_split(np.arange(len(y)), chunks):
        s.update(y[part], pred[part])
    return s


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_regression_metrics_match_sklearn(offset: float) -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(offset, 3, 4000)
    y[:10] = 0.0  # MAPE's eps guard
    pred = y + rng.normal(0.2, 1, y.size)
    s = regression_state(y, pred)
    np.testing.assert_allclose(Q.mae(s), skm.mean_absolute_error(y, pred), rtol=1e-9)
    np.testing.assert_allclose(Q.mse(s), skm.mean_squared_error(y, pred), rtol=1e-9)
    np.testing.assert_allclose(Q.rmse(s), skm.root_mean_squared_error(y, pred), rtol=1e-9)
    np.testing.assert_allclose(Q.r2(s), skm.r2_score(y, pred), rtol=1e-9)
    np.testing.assert_allclose(Q.mape(s), skm.mean_absolute_percentage_error(y, pred), rtol=1e-9)
    np.testing.assert_allclose(Q.mean_error(s), np.mean(pred - y), rtol=1e-9)


def test_regression_edge_cases() -> None:
    s = Q.RegressionState()
    assert Q.mae(s) is None and Q.r2(s) is None
    s.update([1.0, np.nan, 3.0], [1.0, 2.0, np.inf])
    assert s.n == 1 and s.n_missing == 2
    assert Q.r2(s) is None  # fewer than 2 rows
    const = regression_state(np.full(6, 2.0), np.full(6, 2.0), chunks=2)
    assert Q.r2(const) == skm.r2_score(np.full(6, 2.0), np.full(6, 2.0)) == 1.0
    off = regression_state(np.full(6, 2.0), np.full(6, 2.5), chunks=2)
    assert Q.r2(off) == skm.r2_score(np.full(6, 2.0), np.full(6, 2.5)) == 0.0
    assert Q.mae(off, min_count=7) is None


_pairs = st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(_pairs, min_size=1, max_size=4))
def test_regression_merge_equals_single_update(chunks) -> None:
    whole = Q.RegressionState()
    rows = [r for c in chunks for r in c]
    whole.update([r[0] for r in rows], [r[1] for r in rows])
    merged = Q.RegressionState()
    for c in chunks:
        part = Q.RegressionState()
        part.update([r[0] for r in c], [r[1] for r in c])
        merged.merge(part)
    assert merged.n == whole.n
    for key in ("mean_y", "m2_y", "sum_err", "sum_abs_err", "sum_sq_err", "sum_ape"):
        np.testing.assert_allclose(getattr(merged, key), getattr(whole, key), rtol=1e-9, atol=1e-6)


def test_regression_round_trip() -> None:
    rng = np.random.default_rng(8)
    y = rng.normal(size=100)
    s = regression_state(y, y + 0.1)
    back = Q.RegressionState.from_dict(json_round_trip(s.to_dict()))
    assert back.to_dict() == s.to_dict() and isinstance(back.n, int)


def json_round_trip(d: dict) -> dict:
    """Through JSON the way snapshots go (orjson writes numpy arrays as lists)."""
    return orjson.loads(orjson.dumps(d, option=orjson.OPT_SERIALIZE_NUMPY))
