"""The worker's pipeline (payload -> window -> evaluation) against scikit-learn and scipy on
seeded data, plus windows, late labels, snapshots and KServe CloudEvents joins."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pyarrow as pa
import pytest
from scipy import stats
from sklearn import metrics

from mm_api.worker_config import parse_config
from monitor_worker.ingest import REQUEST_TYPE, RESPONSE_TYPE, EventRefused, PayloadError
from monitor_worker.profile import build_profile
from monitor_worker.reference import ReferenceData
from monitor_worker.service import MonitorService
from monitor_worker.snapshot import FILE_NAME


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def service(task="binary-classification", reference=None, clock=None, **cfg):
    config = {
        "monitor": {"name": "m"},
        "model": {"name": "m", "task": task, **cfg.pop("model", {})},
        "window": {"size": "1h", "buckets": 12, "evaluationInterval": "30s", "minSamples": 50},
        **cfg,
    }
    c = parse_config(config)
    ref = ReferenceData(pa.table(reference), "test") if reference is not None else None
    if ref is None:
        c = parse_config({**config, "data": {"features": [{"name": "x", "type": "numerical"}]}})
    return MonitorService(c, build_profile(c, ref), clock or Clock())


def evaluate(svc):
    return svc.evaluate(svc.window_summary())


def post(svc, doc):
    return svc.ingest_records(orjson.dumps(doc))


def test_binary_quality_matches_sklearn():
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.integers(0, 2, n)
    score = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
    pred = (score > 0.5).astype(int)
    x = rng.normal(size=n)
    svc = service(reference={"x": rng.normal(size=500)}, outliers={"enabled": False})
    # Predictions first (with ids), labels later, in chunks: the late-label join path.
    for lo in range(0, n, 1000):
        sl = slice(lo, lo + 1000)
        post(svc, {"columns": {"x": x[sl].tolist(), "id": [f"r{i}" for i in range(lo, lo + 1000)],
                               "prediction": pred[sl].tolist(), "score": score[sl].tolist()}})  # fmt: skip
    out = svc.ingest_labels(
        orjson.dumps({"labels": [{"id": f"r{i}", "label": int(y[i])} for i in range(n)]})
    )
    assert out == {"accepted": n, "matched": n, "unmatched": 0}
    q = evaluate(svc).quality
    assert q["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), rel=1e-12)
    assert q["precision"] == pytest.approx(metrics.precision_score(y, pred), rel=1e-12)
    assert q["recall"] == pytest.approx(metrics.recall_score(y, pred), rel=1e-12)
    assert q["f1"] == pytest.approx(metrics.f1_score(y, pred), rel=1e-12)
    assert q["log-loss"] == pytest.approx(metrics.log_loss(y, score), rel=1e-9)
    # ROC-AUC comes from 1000 score bins: documented tolerance 5e-4.
    assert q["roc-auc"] == pytest.approx(metrics.roc_auc_score(y, score), abs=5e-4)


def test_multiclass_macro_and_weighted_match_sklearn():
    rng = np.random.default_rng(2)
    n = 2000
    classes = ["a", "b", "c"]
    y = rng.choice(classes, n)
    pred = np.where(rng.random(n) < 0.7, y, rng.choice(classes, n))
    for average in ("macro", "weighted", "micro"):
        svc = service("multiclass-classification", model={"classes": classes},
                      quality={"average": average}, outliers={"enabled": False})  # fmt: skip
        post(
            svc,
            {
                "columns": {
                    "x": rng.normal(size=n).tolist(),
                    "prediction": pred.tolist(),
                    "label": y.tolist(),
                }
            },
        )
        q = evaluate(svc).quality
        assert q["f1"] == pytest.approx(metrics.f1_score(y, pred, average=average), rel=1e-12)
        assert q["precision"] == pytest.approx(
            metrics.precision_score(y, pred, average=average), rel=1e-12
        )
        assert q["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), rel=1e-12)


def test_regression_quality_matches_sklearn():
    rng = np.random.default_rng(3)
    n = 2500
    y = rng.normal(100, 20, n)
    pred = y + rng.normal(0, 5, n)
    svc = service("regression", outliers={"enabled": False})
    post(
        svc,
        {
            "columns": {
                "x": rng.normal(size=n).tolist(),
                "prediction": pred.tolist(),
                "label": y.tolist(),
            }
        },
    )
    q = evaluate(svc).quality
    assert q["mae"] == pytest.approx(metrics.mean_absolute_error(y, pred), rel=1e-10)
    assert q["mse"] == pytest.approx(metrics.mean_squared_error(y, pred), rel=1e-10)
    assert q["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y, pred)), rel=1e-10)
    assert q["r2"] == pytest.approx(metrics.r2_score(y, pred), rel=1e-10)
    assert q["mape"] == pytest.approx(metrics.mean_absolute_percentage_error(y, pred), rel=1e-10)


def test_small_reference_uses_exact_ks_and_chi_square():
    rng = np.random.default_rng(4)
    ref_x, ref_c = rng.normal(size=800), rng.choice(["u", "v", "w"], 800)
    cur_x, cur_c = rng.normal(0.3, 1, 600), rng.choice(["u", "v", "w"], 600, p=[0.6, 0.2, 0.2])
    svc = service(reference={"x": ref_x, "c": ref_c}, outliers={"enabled": False})
    post(svc, {"columns": {"x": cur_x.tolist(), "c": cur_c.tolist()}})
    ev = evaluate(svc)
    ks = ev.features["x"]
    assert ks.method == "ks" and ks.exact
    assert ks.score == pytest.approx(stats.ks_2samp(ref_x, cur_x).pvalue, rel=1e-9)
    chi = ev.features["c"]
    assert chi.method == "chi-square"
    keys = ["u", "v", "w"]
    r = np.array([(ref_c == k).sum() for k in keys], float)
    c = np.array([(cur_c == k).sum() for k in keys], float)
    expected = stats.chisquare(c, r / r.sum() * c.sum()).pvalue
    assert chi.score == pytest.approx(expected, rel=1e-9)
    assert ks.drifted and chi.drifted
    assert ev.drift_share == 1.0 and ev.dataset_drift


def test_large_window_wasserstein_within_tolerance():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=20_000)
    cur = rng.normal(0.05, 1.1, 30_000)  # more rows than the reservoir: binned statistic
    svc = service(reference={"x": ref}, outliers={"enabled": False})
    for lo in range(0, cur.size, 5000):
        post(svc, {"columns": {"x": cur[lo : lo + 5000].tolist()}})
    r = evaluate(svc).features["x"]
    assert r.method == "wasserstein" and not r.exact
    exact = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert r.score == pytest.approx(exact, abs=0.01 + 0.01 * exact)  # docs/metrics.md tolerance


def test_window_slides_and_min_samples_withholds_figures():
    clock = Clock()
    svc = service(reference={"x": np.random.default_rng(6).normal(size=500)}, clock=clock,
                  outliers={"enabled": False})  # fmt: skip
    post(svc, {"columns": {"x": [0.1] * 40, "prediction": [1] * 40, "label": [1] * 40}})
    ev = evaluate(svc)
    assert ev.records == 40 and not ev.sufficient
    assert ev.quality == {} and ev.drift_share is None
    assert [v.alert for v in ev.violations] == ["ModelMonitorInsufficientSamples"]
    post(svc, {"columns": {"x": [0.2] * 60, "prediction": [0] * 60, "label": [1] * 60}})
    ev = evaluate(svc)
    assert ev.records == 100 and ev.quality["accuracy"] == pytest.approx(0.4)
    clock.t += 3600 + 301  # one window and one bucket later: the first records are gone
    ev = evaluate(svc)
    assert ev.records == 0
    assert svc.state.totals.records == 100  # counters are monotonic


def test_record_timestamps_place_rows_and_late_ones_are_counted():
    clock = Clock()
    svc = service(
        reference={"x": np.zeros(10) + np.arange(10)}, clock=clock, outliers={"enabled": False}
    )
    now = clock.t
    post(svc, {"columns": {"x": [1.0, 2.0, 3.0], "timestamp": [now - 10, now - 1800, now - 7200]}})
    assert svc.state.totals.late_records == 1
    assert sum(b.n for b in svc.state.buckets.values()) == 2
    assert len(svc.state.buckets) == 2


def test_late_labels_ttl_unmatched_and_capacity():
    clock = Clock()
    svc = service(clock=clock, labels={"ttl": "10m", "maxPending": 3}, outliers={"enabled": False})
    post(svc, {"columns": {"x": [1.0] * 5, "id": list("abcde"), "prediction": [1] * 5}})
    # capacity 3: a and b were pushed out
    assert svc.state.totals.labels_expired == 2
    clock.t += 601
    post(svc, {"columns": {"x": [1.0], "id": ["f"], "prediction": [0]}})
    out = svc.ingest_labels(
        orjson.dumps(
            {"labels": [{"id": k, "label": 1} for k in "acdf"] + [{"id": "zz", "label": 0}]}
        )
    )
    assert out["matched"] == 1  # only f: c and d expired by TTL, a by capacity, zz unknown
    t = svc.state.totals
    assert (t.labels_matched, t.labels_unmatched, t.labels_expired) == (1, 4, 5)


def test_unknown_multiclass_label_is_rejected_with_field():
    svc = service(
        "multiclass-classification", model={"classes": ["a", "b"]}, outliers={"enabled": False}
    )
    with pytest.raises(PayloadError) as e:
        post(svc, {"columns": {"x": [1.0], "prediction": ["a"], "label": ["z"]}})
    assert e.value.field == "label" and "'z' is not one of the classes" in str(e.value)
    assert svc.state.totals.records == 0  # nothing of a rejected batch is kept


def test_snapshot_round_trip_restores_the_same_figures(tmp_path):
    rng = np.random.default_rng(7)
    ref = {"x": rng.normal(size=3000), "c": rng.choice(["p", "q"], 3000)}
    clock = Clock()
    a = service(reference=ref, clock=clock)
    post(a, {"columns": {"x": rng.normal(0.5, 1, 4000).tolist(), "c": rng.choice(["p", "q"], 4000).tolist(),
                         "prediction": rng.integers(0, 2, 4000).tolist(), "label": rng.integers(0, 2, 4000).tolist()}})  # fmt: skip
    post(
        a, {"columns": {"x": [0.0, 1.0], "c": ["p", "q"], "id": ["k1", "k2"], "prediction": [1, 0]}}
    )
    before = evaluate(a)
    a.save(tmp_path)
    b = service(reference=ref, clock=clock)
    assert b.restore(tmp_path)
    after = evaluate(b)
    assert after.records == before.records == 4002
    assert after.quality == before.quality
    assert {k: v.score for k, v in after.features.items()} == {
        k: v.score for k, v in before.features.items()
    }
    assert after.outlier_ratio == before.outlier_ratio
    assert len(b.state.pending) == 2
    assert b.ingest_labels(orjson.dumps({"labels": [{"id": "k1", "label": 1}]}))["matched"] == 1


def test_corrupt_or_foreign_snapshot_means_fresh_start(tmp_path, caplog):
    svc = service(reference={"x": np.arange(100.0)})
    (tmp_path / FILE_NAME).write_text("{not json")
    assert not svc.restore(tmp_path)
    assert (tmp_path / f"{FILE_NAME}.corrupt").exists()
    assert "corrupt" in caplog.text
    other = service(reference={"x": np.arange(100.0) + 5})  # another reference: other fingerprint
    other.save(tmp_path)
    assert not svc.restore(tmp_path)
    assert (tmp_path / f"{FILE_NAME}.stale").exists()


def test_cloudevents_pair_joined_in_either_order():
    rng = np.random.default_rng(8)
    svc = service(reference={"x": rng.normal(size=100)}, outliers={"enabled": False})
    req = json.dumps({"instances": [[0.5], [1.5]]}).encode()
    resp = json.dumps({"predictions": [1, 0]}).encode()
    first = svc.ingest_cloudevent({"ce-id": "e1", "ce-type": REQUEST_TYPE}, req)
    assert first == {"accepted": 1, "joined": False} and svc.state.totals.records == 0
    second = svc.ingest_cloudevent({"ce-id": "e1", "ce-type": RESPONSE_TYPE}, resp)
    assert second["joined"] and svc.state.totals.records == 2
    svc.ingest_cloudevent(
        {"ce-id": "e2", "ce-type": RESPONSE_TYPE}, json.dumps({"predictions": [1]}).encode()
    )
    svc.ingest_cloudevent(
        {"ce-id": "e2", "ce-type": REQUEST_TYPE}, json.dumps({"instances": [[2.0]]}).encode()
    )
    assert svc.state.totals.records == 3
    # Late labels join by ce-id (one instance) or ce-id/index (several).
    out = svc.ingest_labels(
        orjson.dumps({"labels": [{"id": "e1/0", "label": 1}, {"id": "e2", "label": 0}]})
    )
    assert out["matched"] == 2
    with pytest.raises(PayloadError) as e:
        svc.ingest_cloudevent({"ce-id": "e3", "ce-type": "com.example.other"}, req)
    assert e.value.field == "ce-type"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"predictions": [1, {}]}, "predictions[1]"),
        (
            {"outputs": [{"name": "predict", "shape": [1], "datatype": [], "data": [1]}]},
            "outputs[0].datatype",
        ),
        (
            {"outputs": [{"name": "predict", "shape": ["1"], "datatype": "INT64", "data": [1]}]},
            "outputs[0].shape",
        ),
        ({"outputs": [{"name": "predict", "shape": [1], "datatype": "INT64"}]}, "outputs[0]"),
    ],
)
def test_a_bad_response_half_is_refused_before_its_request_comes(body, field):
    """Found by the fuzz suite: a malformed response half was answered 200 and kept until
    its request arrived, which then got the 400. Its request is refused too when it comes
    (nothing half accepted: it would otherwise count as a record without a prediction)."""
    svc = service(reference={"x": np.arange(100.0)}, outliers={"enabled": False})
    with pytest.raises(PayloadError) as e:
        svc.ingest_cloudevent({"ce-id": "e9", "ce-type": RESPONSE_TYPE}, orjson.dumps(body))
    assert e.value.field == field
    req = json.dumps({"instances": [[0.5]]}).encode()
    with pytest.raises(EventRefused) as e:
        svc.ingest_cloudevent({"ce-id": "e9", "ce-type": REQUEST_TYPE}, req)
    assert (e.value.reason, e.value.status, e.value.field) == ("partner-refused", 422, "ce-id")
    assert len(svc.pairs) == 0
    svc.clock = lambda: 1e6 + 3600  # long after: nothing comes back as a record
    post(svc, {"columns": {"x": [1.0]}})
    assert svc.state.totals.records == 1


def test_truncated_snapshot_is_corrupt(tmp_path):
    svc = service(reference={"x": np.arange(100.0)})
    post(svc, {"columns": {"x": [1.0, 2.0], "id": ["a", "b"], "prediction": [1, 0]}})
    svc.save(tmp_path)
    path = tmp_path / FILE_NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a write cut short
    fresh = service(reference={"x": np.arange(100.0)})
    assert not fresh.restore(tmp_path)
    assert fresh.state.totals.records == 0
    assert (tmp_path / f"{FILE_NAME}.corrupt").exists()


def test_kserve_calls_that_are_not_inferences_are_refused_with_their_reason():
    """What the agent logs for GET /v2/models/<m>: an empty request, the model's metadata."""
    svc = service(reference={"x": np.arange(100.0)}, outliers={"enabled": False})
    metadata = {"name": "m", "versions": [], "platform": "", "inputs": [], "outputs": []}
    with pytest.raises(EventRefused) as e:
        svc.ingest_cloudevent({"ce-id": "g1", "ce-type": REQUEST_TYPE}, b"")
    assert (e.value.reason, e.value.field) == ("not-inference", "body")
    with pytest.raises(EventRefused) as e:
        svc.ingest_cloudevent({"ce-id": "g1", "ce-type": RESPONSE_TYPE}, orjson.dumps(metadata))
    assert (e.value.reason, e.value.field) == ("not-inference", "outputs")
    assert len(svc.pairs) == 0 and svc.state.totals.records == 0


def test_a_refused_half_drops_the_waiting_partner():
    svc = service(reference={"x": np.arange(100.0)}, outliers={"enabled": False})
    req = json.dumps({"instances": [[0.5]]}).encode()
    assert svc.ingest_cloudevent({"ce-id": "p1", "ce-type": REQUEST_TYPE}, req)["joined"] is False
    assert len(svc.pairs) == 1
    binary = {"ce-id": "p1", "ce-type": RESPONSE_TYPE, "content-type": "application/octet-stream"}
    with pytest.raises(EventRefused) as e:
        svc.ingest_cloudevent(binary, b"\x00\x01 not json")
    assert e.value.reason == "binary-tensor"
    assert len(svc.pairs) == 0  # the request does not come back later as a record
    svc.clock = lambda: 1e6 + 3600
    svc.ingest_cloudevent({"ce-id": "p2", "ce-type": REQUEST_TYPE}, req)  # expires old halves
    assert svc.state.totals.records == 0
