"""Quality without labels and multivariate drift through the worker's real path: records posted
to a MonitorService as JSON (the ingest thread's code), window buckets, evaluation, the alert
table, /v1/status. Against NannyML 0.13.1's numbers recorded on the same seeded data
(tests/unit/stats/nannyml_reference.json, by nannyml_record.py in NannyML's venv): each 5000-row
analysis chunk is one window, posted in 1000-record batches, and the reference bands use
5000-row chunks as the recording did. Tolerances (measured differences in brackets, from the
stats-level check test_stats_estimation_vs_nannyml.py, which this extends to the service):

* CBPE accuracy, precision, recall, F1: 1e-9 absolute [< 4e-15]; ROC-AUC 1e-5 binary [4e-9],
  2e-5 multiclass [4e-6] (binned scores).
* DLE MAE and RMSE: 1.5% relative [1.0%] (HistGradientBoosting instead of LightGBM); every
  record of the window scored (the reservoir holds the whole chunk), so no sample error.
* PCA reconstruction error: 1e-9 relative [3e-14].
* sampling errors and reference bands: 1e-9 relative; every alert decision: identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from mm_api.worker_config import ConfigError, parse_config
from monitor_worker.estimation_checks import EstimationRefused
from monitor_worker.evaluate import Evaluation
from monitor_worker.profile import Profile, build_profile
from monitor_worker.reference import ReferenceData
from monitor_worker.service import MonitorService
from monitor_worker.snapshot import pack, unpack
from monitor_worker.window import Bucket
from tests.support import estimation_data as data

RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "stats" / "nannyml_reference.json").read_text()
)
NANNYML_NAMES = {"roc-auc": "roc_auc"}
CHUNK = data.CHUNK_ROWS
WINDOW = 3600.0
BAND_ALERT = "ModelMonitorEstimatedQualityOutsideBand"


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def config(task: str, **sections: Any):
    return parse_config(
        {
            "monitor": {"name": "m", "namespace": "ml"},
            "model": {"name": "m", "task": task, **sections.pop("model", {})},
            "window": {"size": "1h", "buckets": 12, "evaluationInterval": "30s", "minSamples": 100},
            "outliers": {"enabled": False},
            **sections,
        }
    )


def features(x: np.ndarray) -> dict[str, np.ndarray]:
    return {f"f{j}": x[:, j] for j in range(x.shape[1])}


def post_columns(svc: MonitorService, columns: dict[str, Any], batch: int = 1000) -> None:
    """Post ``columns`` (arrays) as JSON column-form bodies of ``batch`` records."""
    n = len(next(iter(columns.values())))
    for lo in range(0, n, batch):
        body = {}
        for k, v in columns.items():
            part = np.asarray(v)[lo : lo + batch]
            if part.dtype.kind == "f":
                body[k] = [None if np.isnan(e).any() else e.tolist() for e in part]
            else:
                body[k] = part.tolist()
        svc.ingest_records(orjson.dumps({"columns": body}))


def chunk_windows(svc: MonitorService, clock: Clock, columns: dict[str, np.ndarray]):
    """Each 5000-row chunk of ``columns`` posted into a fresh window and evaluated."""
    n = len(next(iter(columns.values())))
    out: list[Evaluation] = []
    for lo in range(0, n, CHUNK):
        clock.t += 2 * WINDOW  # the previous chunk has left the window
        post_columns(svc, {k: v[lo : lo + CHUNK] for k, v in columns.items()})
        out.append(svc.evaluate(svc.window_summary()))
    return out


def compare(ev: Evaluation, metric: str, recorded: dict[str, list], i: int, tol: float, rel: bool):
    e = ev.estimated[metric]
    expected = recorded["value"][i]
    assert abs(e.value - expected) <= (tol * abs(expected) if rel else tol), (metric, i, e.value)
    assert e.sampling_error == pytest.approx(recorded["sampling_error"][i], rel=1e-9)
    for side in ("lower", "upper"):
        want, got = recorded[f"{side}_threshold"][i], getattr(e, f"{side}_threshold")
        assert (got is None) == (want is None), (metric, side, i)
        if want is not None:
            assert got == pytest.approx(want, rel=1e-9), (metric, side, i)
    assert e.outside_band == recorded["alert"][i], (metric, i, e.value)


def band_alerts(ev: Evaluation) -> set[str]:
    return {v.labels["metric"] for v in ev.violations if v.alert == BAND_ALERT}


# -- CBPE --------------------------------------------------------------------------------------


def binary_reference(s: data.ClassificationSet) -> dict[str, np.ndarray]:
    return {**features(s.x_ref), "label": s.y_ref, "prediction": s.pred_ref, "score": s.score_ref}


def multiclass_reference(s: data.ClassificationSet) -> dict[str, np.ndarray]:
    scores = {f"score_{k}": s.score_ref[:, k] for k in range(s.n_classes)}
    return {**features(s.x_ref), "label": s.y_ref, "prediction": s.pred_ref, **scores}


CBPE_CASES = {
    "cbpe_binary": (data.binary, "binary-classification", binary_reference, 1e-5),
    "cbpe_multiclass": (data.multiclass, "multiclass-classification", multiclass_reference, 2e-5),
}


@pytest.fixture(scope="module")
def cbpe_profiles() -> dict[str, tuple[data.ClassificationSet, Any, Profile]]:
    out = {}
    for key, (make, task, reference, _) in CBPE_CASES.items():
        s = make()
        model = {"classes": [str(k) for k in range(s.n_classes)]} if s.n_classes > 2 else {}
        cfg = config(task, model=model, estimation={"chunkSize": CHUNK})
        out[key] = (s, cfg, build_profile(cfg, ReferenceData(pa.table(reference(s)), "seeded")))
    return out


@pytest.mark.parametrize("key", CBPE_CASES)
def test_cbpe_through_the_worker_agrees_with_nannyml_and_alerts_on_the_same_windows(
    cbpe_profiles, key
):
    s, cfg, profile = cbpe_profiles[key]
    auc_tol = CBPE_CASES[key][3]
    recorded = RECORDED[key]
    assert data.fingerprint(s.x_ref, s.score_ref, s.x, s.score) == pytest.approx(
        recorded["fingerprint"], rel=1e-12
    )
    assert profile.estimation.method == "cbpe"
    clock = Clock()
    svc = MonitorService(cfg, profile, clock)
    # binary: the positive class's score; multiclass: a probability vector per record
    windows = chunk_windows(svc, clock, {**features(s.x), "prediction": s.pred, "score": s.score})
    for i, ev in enumerate(windows):
        assert ev.records == CHUNK and ev.estimation_records == CHUNK
        for metric in ("accuracy", "precision", "recall", "f1", "roc-auc"):
            theirs = recorded["metrics"][NANNYML_NAMES.get(metric, metric)]
            compare(ev, metric, theirs, i, auc_tol if metric == "roc-auc" else 1e-9, rel=False)
            # near the truth from the held-back labels (NannyML's realized values: sklearn)
            e = ev.estimated[metric]
            if metric in ("accuracy", "f1", "roc-auc"):
                assert abs(e.value - theirs["realized"][i]) <= 3 * e.sampling_error + 0.01
        nannyml_alerts = {
            m for m in ev.estimated if recorded["metrics"][NANNYML_NAMES.get(m, m)]["alert"][i]
        }
        assert band_alerts(ev) == nannyml_alerts, i
    # the covariate shift of the second half moves the estimates out of the reference band
    assert any(band_alerts(ev) for ev in windows[5:])


def test_quality_thresholds_alert_on_the_estimate_and_both_figures_show_when_labels_come(
    cbpe_profiles,
):
    s, _, profile = cbpe_profiles["cbpe_binary"]
    cfg = config(
        "binary-classification",
        estimation={"chunkSize": CHUNK},
        quality={"thresholds": [{"metric": "accuracy", "min": 0.75, "severity": "critical"}]},
    )
    clock = Clock()
    svc = MonitorService(cfg, profile, clock)
    rows = slice(9 * CHUNK, 10 * CHUNK)  # the most shifted chunk: accuracy near 0.68
    ids = [f"r{i}" for i in range(CHUNK)]
    post_columns(
        svc, {**features(s.x[rows]), "id": np.array(ids), "prediction": s.pred[rows],
              "score": s.score[rows]},
    )  # fmt: skip
    ev = svc.evaluate(svc.window_summary())
    fired = {(v.alert, v.severity) for v in ev.violations}
    assert ("ModelMonitorEstimatedAccuracyLow", "critical") in fired
    assert "accuracy" not in ev.quality  # no labels yet: only the estimate
    doc = svc.status_document()
    assert doc["estimation"] == {"enabled": True, "method": "cbpe", "reason": None,
                                 "scoredRecords": CHUNK}  # fmt: skip
    assert set(doc["estimatedQuality"]) == {"accuracy", "precision", "recall", "f1", "roc-auc"}
    figure = doc["estimatedQuality"]["accuracy"]
    assert figure["lower"] < figure["value"] < figure["upper"]
    assert figure["lower"] == pytest.approx(figure["value"] - 3 * figure["samplingError"])
    svc.ingest_labels(
        orjson.dumps(
            {"labels": [{"id": i, "label": int(y)} for i, y in zip(ids, s.y[rows], strict=True)]}
        )
    )
    ev = svc.evaluate(svc.window_summary())
    doc = svc.status_document()
    measured, estimated = doc["quality"]["accuracy"], doc["estimatedQuality"]["accuracy"]
    assert measured == pytest.approx(float(np.mean(s.y[rows] == s.pred[rows])), rel=1e-12)
    assert abs(estimated["value"] - measured) <= 3 * estimated["samplingError"] + 0.01
    fired = {v.alert for v in ev.violations}
    assert {"ModelMonitorAccuracyLow", "ModelMonitorEstimatedAccuracyLow"} <= fired


def test_records_without_scores_leave_cbpe_silent_and_say_why(cbpe_profiles):
    s, cfg, profile = cbpe_profiles["cbpe_binary"]
    svc = MonitorService(cfg, profile, Clock())
    post_columns(svc, {**features(s.x[:2000]), "prediction": s.pred[:2000]})
    ev = svc.evaluate(svc.window_summary())
    assert ev.estimated == {} and ev.records == 2000
    doc = svc.status_document()
    assert doc["estimation"]["enabled"] is True
    assert "0 records with a prediction and a score" in doc["estimation"]["reason"]
    assert "estimatedQuality" not in doc or doc["estimatedQuality"] == {}


# -- DLE ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dle_profile() -> tuple[data.RegressionSet, Any, Profile]:
    s = data.regression()
    # The reservoir holds a whole 5000-row chunk: every record of the window is scored.
    cfg = config("regression", estimation={"chunkSize": CHUNK, "sampleSize": CHUNK})
    reference = {**features(s.x_ref), "label": s.y_ref, "prediction": s.pred_ref}
    return s, cfg, build_profile(cfg, ReferenceData(pa.table(reference), "seeded"))


def test_dle_through_the_worker_agrees_with_nannyml_and_alerts_on_the_same_windows(dle_profile):
    s, cfg, profile = dle_profile
    recorded = RECORDED["dle"]
    assert profile.estimation.method == "dle"
    clock = Clock()
    svc = MonitorService(cfg, profile, clock)
    windows = chunk_windows(svc, clock, {**features(s.x), "prediction": s.pred})
    for i, ev in enumerate(windows):
        for metric in ("mae", "rmse"):
            compare(ev, metric, recorded["metrics"][metric], i, 0.015, rel=True)
            e = ev.estimated[metric]
            assert e.sample_error == 0.0  # the whole window scored
            real = recorded["metrics"][metric]["realized"][i]
            assert abs(e.value - real) <= 3 * e.sampling_error + 0.02 * real
        nannyml_alerts = {m for m in ("mae", "rmse") if recorded["metrics"][m]["alert"][i]}
        assert band_alerts(ev) == nannyml_alerts, i


def test_dle_on_a_sample_of_a_large_window_reports_the_sample_error(dle_profile):
    s, _, profile = dle_profile
    cfg = config("regression", estimation={"chunkSize": CHUNK})  # reservoir: 2000 rows
    svc = MonitorService(cfg, profile, Clock())
    post_columns(svc, {**features(s.x[:20000]), "prediction": s.pred[:20000]})
    ev = svc.evaluate(svc.window_summary())
    mae = ev.estimated["mae"]
    assert mae.records == 20000 and mae.sample_error is not None and mae.sample_error > 0
    spread = 3 * np.hypot(mae.sampling_error, mae.sample_error)
    assert mae.lower == pytest.approx(mae.value - spread) and mae.upper == pytest.approx(
        mae.value + spread
    )
    err = np.abs(s.y[:20000] - s.pred[:20000]).mean()  # the truth of these 20000 records
    assert abs(mae.value - err) <= spread + 0.02 * err


# -- multivariate drift ------------------------------------------------------------------------


def multivariate_columns(x: np.ndarray, cat: np.ndarray, categories: list[str]):
    return {**features(x), "cat": np.array([categories[c] for c in cat])}


@pytest.fixture(scope="module")
def multivariate_profile():
    s = data.multivariate()
    cfg = config(
        "binary-classification",
        drift={"multivariate": {"method": "pca-reconstruction", "chunkSize": CHUNK}},
    )
    reference = multivariate_columns(s.x_ref, s.cat_ref, s.categories)
    return s, cfg, build_profile(cfg, ReferenceData(pa.table(reference), "seeded"))


def test_reconstruction_error_through_the_worker_agrees_with_nannyml(multivariate_profile):
    s, cfg, profile = multivariate_profile
    recorded = RECORDED["reconstruction"]
    assert profile.estimation.reconstruction is not None
    assert profile.estimation.reconstruction.n_components == recorded["n_components"]
    np.testing.assert_allclose(
        profile.estimation.reconstruction.reference_values, recorded["reference_values"], rtol=1e-9
    )
    assert profile.estimation.method is None  # no label column: quality not estimated
    clock = Clock()
    svc = MonitorService(cfg, profile, clock)
    windows = chunk_windows(svc, clock, multivariate_columns(s.x, s.cat, s.categories))
    theirs = recorded["metrics"]["reconstruction_error"]
    for i, ev in enumerate(windows):
        mv = ev.multivariate
        assert mv is not None and mv.method == "pca-reconstruction" and mv.records == CHUNK
        assert mv.value == pytest.approx(theirs["value"][i], rel=1e-9)
        assert mv.sampling_error == pytest.approx(theirs["sampling_error"][i], rel=1e-9)
        assert mv.upper_threshold == pytest.approx(theirs["upper_threshold"][i], rel=1e-9)
        assert mv.drifted == theirs["alert"][i], i
        fired = "ModelMonitorMultivariateDrift" in {v.alert for v in ev.violations}
        assert fired == theirs["alert"][i], i
    # Every marginal stays the same: per-feature drift misses what the reconstruction sees.
    shifted = windows[-1]
    assert shifted.multivariate is not None and shifted.multivariate.drifted
    assert "drifted together" in shifted.multivariate.message
    doc = svc.status_document()["drift"]["multivariate"]
    assert doc["method"] == "pca-reconstruction" and doc["drifted"] is True
    assert set(doc["referenceBand"]) == {"lower", "upper"}


def test_a_threshold_replaces_the_reference_band(multivariate_profile):
    s, _, profile = multivariate_profile
    cfg = config(
        "binary-classification",
        drift={"multivariate": {"method": "pca-reconstruction", "threshold": 100.0}},
    )
    clock = Clock()
    svc = MonitorService(cfg, profile, clock)
    (ev,) = chunk_windows(
        svc, clock, multivariate_columns(s.x[-CHUNK:], s.cat[-CHUNK:], s.categories)
    )
    assert ev.multivariate is not None
    assert ev.multivariate.upper_threshold == 100.0 and ev.multivariate.lower_threshold is None
    assert not ev.multivariate.drifted


def domain_windows(x_ref, x, cat_ref=None, cat=None, categories=None) -> list[Evaluation]:
    cfg = config("binary-classification", drift={"multivariate": {"method": "domain-classifier"}})
    reference = (
        features(x_ref) if cat_ref is None else multivariate_columns(x_ref, cat_ref, categories)
    )
    profile = build_profile(cfg, ReferenceData(pa.table(reference), "seeded"))
    assert profile.estimation.domain_reference is not None
    assert profile.estimation.domain_reference.shape == (2000, len(reference))
    clock = Clock()
    svc = MonitorService(cfg, profile, clock)
    current = features(x) if cat is None else multivariate_columns(x, cat, categories)
    return chunk_windows(svc, clock, current)


def test_domain_classifier_sees_a_covariate_shift():
    s = data.binary()
    windows = domain_windows(s.x_ref[:20000], s.x[[*range(CHUNK), *range(9 * CHUNK, 10 * CHUNK)]])
    first, last = (ev.multivariate for ev in windows)
    assert first is not None and last is not None and first.method == "domain-classifier"
    assert first.upper_threshold == 0.55 and last.upper_threshold == 0.55
    assert not first.drifted and first.value < 0.55
    assert last.drifted and last.value > 0.6 and last.records == 2000  # the window's sample
    assert "ModelMonitorMultivariateDrift" in {v.alert for v in windows[1].violations}


def test_a_linear_domain_classifier_misses_a_broken_correlation_pca_sees():
    """Feature 1 loses its correlation with the others, every marginal unchanged: a linear
    classifier on the rows has nothing to separate (docs/estimation.md: which method)."""
    s = data.multivariate()
    (ev,) = domain_windows(
        s.x_ref[:20000], s.x[-CHUNK:], s.cat_ref[:20000], s.cat[-CHUNK:], s.categories
    )
    assert ev.multivariate is not None and not ev.multivariate.drifted
    assert abs(ev.multivariate.value - 0.5) < 0.05


# -- one window, however it is split ---------------------------------------------------------


@pytest.fixture(scope="module")
def combined_profile():
    """A binary classifier with CBPE and PCA reconstruction drift, on a 20k-row reference."""
    s = data.binary()
    cfg = config(
        "binary-classification",
        drift={"multivariate": {"method": "pca-reconstruction"}},
        outliers={"enabled": True, "sampleSize": 4000},
    )
    reference = {k: v[:20000] for k, v in binary_reference(s).items()}
    return s, cfg, build_profile(cfg, ReferenceData(pa.table(reference), "seeded"))


def estimates(ev: Evaluation) -> dict[str, float]:
    out = {f"estimated {k}": e.value for k, e in ev.estimated.items()}
    assert ev.multivariate is not None
    out["reconstruction"] = ev.multivariate.value
    return out


def test_a_window_split_over_buckets_replicas_or_a_snapshot_estimates_the_same(
    combined_profile, tmp_path
):
    s, cfg, profile = combined_profile
    rows = slice(7 * CHUNK, 7 * CHUNK + 3000)
    columns = {**features(s.x[rows]), "prediction": s.pred[rows], "score": s.score[rows]}
    now = 1_000_000.0

    def fresh() -> MonitorService:
        return MonitorService(cfg, profile, Clock(now))

    one = fresh()
    post_columns(one, columns)
    reference = estimates(one.evaluate(one.window_summary()))
    assert set(reference) == {
        "estimated accuracy", "estimated precision", "estimated recall", "estimated f1",
        "estimated roc-auc", "reconstruction",
    }  # fmt: skip

    # two buckets: the records' timestamps split them between two time slots
    two = fresh()
    stamps = np.where(np.arange(3000) % 2 == 0, now - WINDOW / 2, now)
    post_columns(two, {**columns, "timestamp": stamps})
    assert len(two.state.buckets) == 2
    split = estimates(two.evaluate(two.window_summary()))

    # two replicas: each ingests half; one evaluates its window merged with the other's parts
    # as the shared store hands them over (packed Bucket.to_dict documents)
    a, b = fresh(), fresh()
    post_columns(a, {k: v[:1700] for k, v in columns.items()})
    post_columns(b, {k: v[1700:] for k, v in columns.items()})
    window = a.window_summary()
    for bucket in b.state.buckets.values():
        window.merge(Bucket.from_dict(unpack(pack(bucket.to_dict())), profile))
    replicas = estimates(a.evaluate(window))

    # a restart from a snapshot
    one.save(tmp_path)
    restored = fresh()
    assert restored.restore(tmp_path)
    snapshot = estimates(restored.evaluate(restored.window_summary()))

    for other in (split, replicas, snapshot):
        assert other.keys() == reference.keys()
        for k, v in reference.items():
            assert other[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k


def test_dle_window_split_over_replicas_estimates_the_same(dle_profile):
    s, cfg, profile = dle_profile
    columns = {**features(s.x[:3000]), "prediction": s.pred[:3000]}
    one = MonitorService(cfg, profile, Clock())
    post_columns(one, columns)
    a, b = MonitorService(cfg, profile, Clock()), MonitorService(cfg, profile, Clock())
    post_columns(a, {k: v[:1000] for k, v in columns.items()})
    post_columns(b, {k: v[1000:] for k, v in columns.items()})
    window = a.window_summary()
    for bucket in b.state.buckets.values():
        window.merge(Bucket.from_dict(unpack(pack(bucket.to_dict())), profile))
    merged, single = a.evaluate(window), one.evaluate(one.window_summary())
    for metric in ("mae", "rmse"):
        assert merged.estimated[metric].value == pytest.approx(
            single.estimated[metric].value, rel=1e-12
        )


def test_a_snapshot_made_without_estimation_restores_into_a_worker_with_it(dle_profile, tmp_path):
    """Turning DLE on adds the prediction to the reservoir; an older snapshot still loads."""
    s, cfg, profile = dle_profile
    off = config(
        "regression",
        estimation={"enabled": False},
        outliers={"enabled": False, "sampleSize": CHUNK},  # the same reservoir capacity
    )
    reference = {**features(s.x_ref), "label": s.y_ref, "prediction": s.pred_ref}
    plain = build_profile(off, ReferenceData(pa.table(reference), "seeded"))
    assert plain.fingerprint == profile.fingerprint and plain.estimation.dle is None
    before = MonitorService(off, plain, Clock())
    post_columns(before, {**features(s.x[:500]), "prediction": s.pred[:500]})
    before.save(tmp_path)
    after = MonitorService(cfg, profile, Clock())
    assert after.restore(tmp_path)
    post_columns(after, {**features(s.x[500:1000]), "prediction": s.pred[500:1000]})
    ev = after.evaluate(after.window_summary())
    assert ev.records == 1000 and ev.estimated["mae"].records == 500  # predictions seen since
    # samples of another size do not fit: the worker starts fresh rather than fail to merge
    smaller = config("regression", estimation={"chunkSize": CHUNK, "sampleSize": 3000})
    assert not MonitorService(smaller, profile, Clock()).restore(tmp_path)


# -- refusals ----------------------------------------------------------------------------------


def small_reference(n: int = 500, **drop: bool) -> ReferenceData:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 2))
    cols = {"a": x[:, 0], "b": x[:, 1], "label": (x[:, 0] > 0).astype(int),
            "prediction": (x[:, 0] > 0.1).astype(int), "score": 1 / (1 + np.exp(-2 * x[:, 0]))}  # fmt: skip
    return ReferenceData(pa.table({k: v for k, v in cols.items() if not drop.get(k)}), "small")


@pytest.mark.parametrize(
    ("task", "reference", "field"),
    [
        ("binary-classification", small_reference(score=True), "data.scoreColumn"),
        ("binary-classification", small_reference(label=True), "data.labelColumn"),
        ("binary-classification", small_reference(prediction=True), "data.predictionColumn"),
        ("binary-classification", small_reference(n=60), "data.labelColumn"),
        ("binary-classification", None, "data.reference"),
        ("regression", small_reference(label=True), "data.labelColumn"),
        ("multiclass-classification", small_reference(), "model.classes"),
    ],
)
def test_estimation_that_cannot_work_is_refused_when_asked_for_and_off_otherwise(
    task, reference, field
):
    features_ = [{"name": "a", "type": "numerical"}, {"name": "b", "type": "numerical"}]
    model = {"classes": None} if task != "multiclass-classification" else {}
    asked = config(task, estimation={"enabled": True}, data={"features": features_}, model=model)
    with pytest.raises(EstimationRefused) as e:
        build_profile(asked, reference)
    assert e.value.field == field and str(e.value).startswith(field)
    auto = config(task, data={"features": features_}, model=model)
    profile = build_profile(auto, reference)
    assert profile.estimation.method is None
    assert profile.estimation.off_reason is not None
    assert profile.estimation.off_reason.startswith(field)
    doc = MonitorService(auto, profile, Clock())
    doc.evaluate(doc.window_summary())
    assert doc.status_document()["estimation"] == {
        "enabled": False,
        "reason": profile.estimation.off_reason,
    }


def test_cbpe_of_too_many_classes_is_refused_naming_model_classes():
    classes = [f"c{i}" for i in range(51)]
    asked = config(
        "multiclass-classification", model={"classes": classes}, estimation={"enabled": True}
    )
    with pytest.raises(EstimationRefused, match="51 classes") as e:
        build_profile(asked, small_reference())
    assert e.value.field == "model.classes"


def test_a_chunk_size_leaving_one_reference_chunk_is_refused():
    asked = config("binary-classification", estimation={"enabled": True, "chunkSize": 500})
    with pytest.raises(EstimationRefused, match=r"estimation\.chunkSize"):
        build_profile(asked, small_reference(n=500))
    off = config("binary-classification", estimation={"enabled": False})
    assert build_profile(off, small_reference()).estimation.off_reason == (
        "estimation.enabled is false"
    )


def test_multivariate_drift_with_one_feature_is_refused_naming_the_field():
    one = [{"name": "a", "type": "numerical"}]
    with pytest.raises(ConfigError, match=r"drift\.multivariate: multivariate drift needs"):
        config(
            "binary-classification",
            data={"features": one},
            drift={"multivariate": {"method": "pca-reconstruction"}},
        )
    # features inferred from a one-column reference: refused at start
    cfg = config("binary-classification", drift={"multivariate": {}})
    reference = ReferenceData(pa.table({"a": np.arange(200.0), "label": np.arange(200) % 2}), "r")
    with pytest.raises(EstimationRefused) as e:
        build_profile(cfg, reference)
    assert e.value.field == "drift.multivariate"
    with pytest.raises(EstimationRefused, match=r"data\.reference"):
        build_profile(
            config(
                "binary-classification",
                data={
                    "features": [
                        {"name": "a", "type": "numerical"},
                        {"name": "b", "type": "numerical"},
                    ]
                },
                drift={"multivariate": {}},
            ),
            None,
        )
    with pytest.raises(ConfigError, match=r"drift\.multivariate: threshold: a domain-classifier"):
        config(
            "binary-classification",
            drift={"multivariate": {"method": "domain-classifier", "threshold": 0.3}},
        )


def test_the_serving_process_fits_estimators_without_importing_sklearn():
    """CBPE and DLE are fitted in a child process; the worker only scores with numpy."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, pyarrow as pa\n"
        "from mm_api.worker_config import parse_config\n"
        "from monitor_worker.profile import build_profile\n"
        "from monitor_worker.reference import ReferenceData\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.normal(size=(1000, 2)); s = 1 / (1 + np.exp(-x[:, 0]))\n"
        "ref = {'a': x[:, 0], 'b': x[:, 1], 'label': (rng.random(1000) < s).astype(int),\n"
        "       'prediction': (s > 0.5).astype(int), 'score': s}\n"
        "for task in ('binary-classification', 'regression'):\n"
        "    cfg = parse_config({'monitor': {'name': 'm'}, 'model': {'name': 'm', 'task': task},\n"
        "                        'outliers': {'enabled': False}, 'estimation': {'enabled': True},\n"
        "                        'drift': {'multivariate': {'method': 'domain-classifier'}}})\n"
        "    r = dict(ref, label=ref['label'] + x[:, 1]) if task == 'regression' else ref\n"
        "    p = build_profile(cfg, ReferenceData(pa.table(r), 'r'))\n"
        "    assert p.estimation.method == ('dle' if task == 'regression' else 'cbpe')\n"
        "print(any(m.startswith('sklearn') for m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[3],
    )
    assert out.stdout.strip() == "False"
