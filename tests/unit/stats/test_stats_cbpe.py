"""CBPE against direct numpy / scikit-learn computations on seeded data: the calibration map,
the expected confusion matrix, ROC-AUC against sklearn's weighted ``roc_auc_score``, the
mergeable state, and estimates near the truth under a covariate shift."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from monitor_worker.estimators import fit_cbpe, needs_calibration
from monitor_worker.stats import cbpe as C
from tests.support import estimation_data as data


@pytest.fixture(scope="module")
def binary_set() -> data.ClassificationSet:
    return data.binary()


@pytest.fixture(scope="module")
def binary_model(binary_set) -> C.CBPEModel:
    s = binary_set
    return fit_cbpe(s.y_ref, s.pred_ref, s.score_ref, 2, chunk_size=s.chunk_rows)


@pytest.fixture(scope="module")
def multi_set() -> data.ClassificationSet:
    return data.multiclass()


@pytest.fixture(scope="module")
def multi_model(multi_set) -> C.CBPEModel:
    s = multi_set
    return fit_cbpe(s.y_ref, s.pred_ref, s.score_ref, s.n_classes, chunk_size=s.chunk_rows)


def state_of(model: C.CBPEModel, pred: np.ndarray, score: np.ndarray, batch: int = 1000):
    st = C.CBPEState(model)
    for start in range(0, pred.size, batch):
        st.update(pred[start : start + batch], score[start : start + batch])
    return st


def test_isotonic_map_equals_sklearn_predict(binary_set):
    s = binary_set
    iso = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(s.score_ref, s.y_ref)
    m = C.IsotonicMap(iso.X_thresholds_, iso.y_thresholds_)
    probe = np.concatenate([s.score[:5000], [-1.0, 0.0, 1.0, 2.0]])  # out of range clips
    np.testing.assert_allclose(m(probe), iso.predict(probe), rtol=0, atol=1e-12)


def test_needs_calibration_decides_like_nannyml(binary_set):
    s = binary_set
    # Over-confident scores: calibration helps. Scores equal to the true probability
    # (what the isotonic map learns) do not need it.
    assert needs_calibration(s.y_ref, s.score_ref)
    iso = IsotonicRegression(out_of_bounds="clip").fit(s.score_ref, s.y_ref)
    rng = np.random.default_rng(3)
    p = rng.random(20_000)
    assert not needs_calibration((rng.random(p.size) < p).astype(np.int64), p)
    assert not needs_calibration(np.ones(100, dtype=np.int64), np.linspace(0, 1, 100))
    assert iso.predict([0.5])[0] > 0  # the map is a real probability map


def test_expected_confusion_matrix_is_the_sum_of_calibrated_probabilities(multi_model, multi_set):
    s = multi_set
    st = state_of(multi_model, s.pred[:7000], s.score[:7000], batch=999)
    p = multi_model.calibrate(multi_model.scores_matrix(s.score[:7000], 7000))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    expected = np.zeros((3, 3))
    for j in range(3):
        expected[:, j] = p[s.pred[:7000] == j].sum(axis=0)
    np.testing.assert_allclose(st.expected, expected, rtol=1e-12)
    assert st.n == 7000
    # accuracy is the mean probability of the predicted class
    np.testing.assert_allclose(
        C.expected_value(st, "accuracy"), p[np.arange(7000), s.pred[:7000]].mean(), rtol=1e-12
    )


def test_binary_metrics_from_the_expected_matrix(binary_model, binary_set):
    s = binary_set
    st = state_of(binary_model, s.pred[-5000:], s.score[-5000:])
    p = binary_model.calibrate(binary_model.scores_matrix(s.score[-5000:], 5000))[:, 1]
    pred = s.pred[-5000:]
    tp, fp = p[pred == 1].sum(), (1 - p[pred == 1]).sum()
    fn = p[pred == 0].sum()
    assert C.expected_value(st, "precision") == pytest.approx(tp / (tp + fp), rel=1e-12)
    assert C.expected_value(st, "recall") == pytest.approx(tp / (tp + fn), rel=1e-12)
    assert C.expected_value(st, "f1") == pytest.approx(tp / (tp + 0.5 * (fp + fn)), rel=1e-12)


@pytest.mark.parametrize("which", ["binary", "multiclass"])
def test_roc_auc_equals_sklearn_on_probability_weighted_rows(which, request):
    """Each row counts as a positive with weight p and a negative with weight 1 - p, ordered
    by its uncalibrated score: sklearn's weighted ROC-AUC of that is the exact estimate; ours
    bins the scores. Measured max error 2e-7 (binary), 3e-6 (3 classes); tested at 2e-5."""
    s = request.getfixturevalue(f"{'multi' if which == 'multiclass' else which}_set")
    model = request.getfixturevalue(f"{'multi' if which == 'multiclass' else which}_model")
    for chunk in (slice(0, 5000), slice(45_000, 50_000)):
        st = state_of(model, s.pred[chunk], s.score[chunk])
        raw = model.scores_matrix(s.score[chunk], 5000)
        p = model.calibrate(raw)
        aucs = []
        for k in range(raw.shape[1]):
            cls = 1 if model.binary else k
            y = np.r_[np.ones(5000), np.zeros(5000)]
            w = np.r_[p[:, cls], 1 - p[:, cls]]
            aucs.append(roc_auc_score(y, np.r_[raw[:, k], raw[:, k]], sample_weight=w))
        assert C.expected_value(st, "roc-auc") == pytest.approx(np.mean(aucs), abs=2e-5)


@pytest.mark.parametrize("which", ["binary", "multiclass"])
def test_estimates_lie_near_the_truth_under_covariate_shift(which, request):
    """Scores stay calibrated under the shift, so every estimate is within 3 of NannyML's
    sampling errors of the value computed from the held-back labels, plus 0.01 for ROC-AUC
    (NannyML's AUC sampling error is a rough formula) and for every multiclass metric: one
    isotonic map per class, renormalised, is not a joint calibration, and in the most
    shifted chunk macro F1 is off by 3.1 sampling errors (0.018; NannyML's estimate is the
    same number)."""
    from sklearn import metrics as skm

    name = "multi" if which == "multiclass" else which
    s = request.getfixturevalue(f"{name}_set")
    model = request.getfixturevalue(f"{name}_model")
    avg = "binary" if model.binary else "macro"
    for start in range(0, s.y.size, s.chunk_rows):
        c = slice(start, start + s.chunk_rows)
        est = C.estimate_all(state_of(model, s.pred[c], s.score[c]))
        y, pred, score = s.y[c], s.pred[c], s.score[c]
        truth = {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, average=avg),
            "recall": skm.recall_score(y, pred, average=avg),
            "f1": skm.f1_score(y, pred, average=avg),
            "roc-auc": skm.roc_auc_score(y, score, multi_class="ovr"),
        }
        for metric, value in truth.items():
            e = est[metric]
            slack = 3 * e.sampling_error
            slack += 0.01 if metric == "roc-auc" or not model.binary else 0.0
            assert abs(e.value - value) <= slack, (which, start, metric, e.value, value)


def test_state_merges_and_survives_a_snapshot(binary_model, binary_set):
    s = binary_set
    whole = state_of(binary_model, s.pred[:6000], s.score[:6000], batch=6000)
    a = state_of(binary_model, s.pred[:2500], s.score[:2500])
    b = state_of(binary_model, s.pred[2500:6000], s.score[2500:6000])
    merged = a.copy().merge(b)
    np.testing.assert_allclose(merged.expected, whole.expected, rtol=1e-12)
    np.testing.assert_allclose(merged.pos, whole.pos, rtol=1e-12, atol=1e-12)
    blob = orjson.loads(orjson.dumps(merged.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    back = C.CBPEState.from_dict(blob, binary_model)
    for m in C.CBPE_METRICS:
        assert C.expected_value(back, m) == C.expected_value(merged, m)
    assert a.n == 2500  # copy() left a alone
    model_blob = orjson.dumps(binary_model.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)
    model_back = C.CBPEModel.from_dict(orjson.loads(model_blob))
    again = state_of(model_back, s.pred[:6000], s.score[:6000], batch=6000)
    np.testing.assert_allclose(again.expected, whole.expected, rtol=1e-12)
    assert C.estimate(again, "f1") == C.estimate(whole, "f1")


def test_sampling_error_shrinks_with_the_square_root_of_n(binary_model):
    se_1k = C.sampling_error(binary_model, "accuracy", 1000)
    assert C.sampling_error(binary_model, "accuracy", 4000) == pytest.approx(se_1k / 2)
    st = C.CBPEState(binary_model)
    assert C.estimate(st, "accuracy") is None  # no records
    assert C.estimate_all(st) == {}


def test_bad_input_is_refused(binary_model, multi_model):
    st = C.CBPEState(binary_model)
    with pytest.raises(ValueError, match="integer class indices"):
        st.update(np.array([0.5, 1.0]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        st.update(np.array([0, 2]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="shape"):
        C.CBPEState(multi_model).update(np.array([0, 1]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="shape"):  # flat n * k values are not taken as (n, k)
        C.CBPEState(multi_model).update(np.array([0, 1]), np.full(6, 1 / 3))
    st.update(np.array([0, 1, 1]), np.array([0.2, np.nan, 0.9]))  # NaN score: row skipped
    assert st.n == 2
    with pytest.raises(ValueError, match="merge"):
        st.merge(C.CBPEState(multi_model))


def test_binary_scores_may_come_as_one_or_two_columns(binary_model, binary_set):
    s = binary_set
    one = state_of(binary_model, s.pred[:3000], s.score[:3000])
    two = state_of(binary_model, s.pred[:3000], np.column_stack([1 - s.score, s.score])[:3000])
    np.testing.assert_array_equal(one.expected, two.expected)
    with pytest.raises(ValueError, match="shape"):
        C.CBPEState(binary_model).update(np.array([0, 1]), np.array([0.1, 0.2, 0.3, 0.4]))
