"""KServe's canary endpoint and segments in windows of their own (monitor_worker.windows): a
canary's drift is not averaged into the default's, labels join the prediction in the window
that holds it, the windows are bounded, the series carry ``kserve_endpoint``/``segment``, and the
default endpoint without segments keeps exactly the series it had."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats
from sklearn import metrics as skm

from mm_api import alerts
from mm_api import metrics as m
from mm_api.worker_config import parse_config
from monitor_worker.exporter import WindowCollector
from monitor_worker.ingest import (
    MAIN,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    EventKey,
    EventRefused,
    PayloadError,
)
from monitor_worker.profile import build_profile
from monitor_worker.reference import ReferenceData
from monitor_worker.service import MonitorService
from monitor_worker.windows import window_code

LABELS = {"modelmonitor": "m", "model": "m"}


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def service(ref_x, clock=None, segments=None, **cfg):
    config = parse_config(
        {
            "monitor": {"name": "m"},
            "model": {"name": "m", "task": "binary-classification"},
            "window": {"size": "1h", "buckets": 12, "minSamples": 50},
            "outliers": {"enabled": False},
            "kserve": {"segments": segments or {}},
            **cfg,
        }
    )
    profile = build_profile(config, ReferenceData(pa.table({"x": ref_x}), "test"))
    return MonitorService(config, profile, clock or Clock())


def send(svc, ce_id, xs, preds, endpoint=None, team=None, response_first=False):
    """One KServe inference (request and response halves) of ``xs`` and ``preds``."""
    headers = {}
    if endpoint is not None:
        headers["ce-endpoint"] = endpoint
    if team is not None:
        headers["ce-metadata"] = json.dumps({"X-Team": [team]})
    req = orjson.dumps({"instances": [[float(x)] for x in xs]})
    resp = orjson.dumps({"predictions": [int(p) for p in preds]})
    halves = [(REQUEST_TYPE, req), (RESPONSE_TYPE, resp)]
    if response_first:
        halves.reverse()
    out = None
    for ce_type, body in halves:
        out = svc.ingest_cloudevent({"ce-id": ce_id, "ce-type": ce_type, **headers}, body)
    return out


def evaluate(svc):
    return svc.evaluate(svc.window_summary())


def scrape(svc) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(WindowCollector(LABELS, "binary-classification", lambda: svc))
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            extra = tuple(sorted((k, v) for k, v in s.labels.items() if k not in LABELS))
            out[(s.name, extra)] = s.value
    return out


def test_canary_drift_is_kept_out_of_the_default_figures():
    rng = np.random.default_rng(11)
    ref = rng.normal(size=800)
    default_x, canary_x = rng.normal(0, 1, 400), rng.normal(2.0, 1, 300)
    svc = service(ref)
    for i in range(4):
        send(svc, f"d{i}", default_x[i * 100 : (i + 1) * 100], np.zeros(100))
    for i in range(3):
        chunk = canary_x[i * 100 : (i + 1) * 100]
        send(svc, f"c{i}", chunk, np.ones(100), endpoint="canary", response_first=i == 1)
    ev = evaluate(svc)
    # The main window holds the default's records only: scipy on those alone.
    assert ev.records == 400
    assert ev.features["x"].method == "ks"
    assert ev.features["x"].score == pytest.approx(stats.ks_2samp(ref, default_x).pvalue, rel=1e-9)
    assert not ev.features["x"].drifted
    canary = svc.keyed_evaluations[EventKey("canary")]
    assert canary.records == 300
    assert canary.features["x"].score == pytest.approx(
        stats.ks_2samp(ref, canary_x).pvalue, rel=1e-9
    )
    assert canary.features["x"].drifted and canary.dataset_drift
    # Averaging them would have shown drift in the default's figure.
    mixed = stats.ks_2samp(ref, np.concatenate([default_x, canary_x])).pvalue
    assert mixed < 0.05 < ev.features["x"].score
    # The monitor's counters count every record once.
    assert svc.state.totals.records == 700


def test_a_label_joins_its_canary_prediction_in_the_canary_window():
    rng = np.random.default_rng(12)
    svc = service(rng.normal(size=500))
    n = 200
    y = rng.integers(0, 2, n)
    pred_default = rng.integers(0, 2, n)
    pred_canary = np.where(rng.random(n) < 0.9, y, 1 - y)  # the canary is far better
    for i in range(n):
        send(svc, f"d{i}", [rng.normal()], [pred_default[i]])
        send(svc, f"c{i}", [rng.normal()], [pred_canary[i]], endpoint="canary")
    assert len(svc.state.pending) == 2 * n  # one ring for every window
    labels = [{"id": f"c{i}", "label": int(y[i])} for i in range(n)]
    labels += [{"id": f"d{i}", "label": int(y[i])} for i in range(n // 2)]
    out = svc.ingest_labels(orjson.dumps({"labels": labels}))
    assert out == {"accepted": 300, "matched": 300, "unmatched": 0}
    ev = evaluate(svc)
    canary = svc.keyed_evaluations[EventKey("canary")]
    assert canary.labelled == n and ev.labelled == n // 2
    assert canary.quality["accuracy"] == pytest.approx(skm.accuracy_score(y, pred_canary))
    assert canary.quality["f1"] == pytest.approx(skm.f1_score(y, pred_canary))
    half = slice(0, n // 2)
    assert ev.quality["accuracy"] == pytest.approx(skm.accuracy_score(y[half], pred_default[half]))
    assert svc.state.totals.labels_matched == 300 and svc.state.totals.labelled == 300
    assert len(svc.state.pending) == n // 2


def test_segments_get_windows_of_their_own_and_are_bounded():
    rng = np.random.default_rng(13)
    svc = service(rng.normal(size=300), segments={"headers": ["X-Team"], "maxValues": 2})
    k = 0
    for endpoint in ("default", "canary"):
        for team in (None, "fraud", "risk"):
            send(svc, f"e{k}", rng.normal(size=60), np.zeros(60), endpoint=endpoint, team=team)
            k += 1
    with pytest.raises(EventRefused) as e:
        send(svc, "over", [0.0], [0], team="ops")
    assert (e.value.reason, e.value.status) == ("segment-limit", 422)
    with pytest.raises(EventRefused):
        send(svc, "over2", [0.0], [0], endpoint="canary", team="ops")
    keys = {key for key, _ in svc.keyed}
    fraud, risk = (("X-Team", "fraud"),), (("X-Team", "risk"),)
    assert keys == {
        EventKey("default", fraud), EventKey("default", risk),
        EventKey("canary"), EventKey("canary", fraud), EventKey("canary", risk),
    }  # fmt: skip
    max_values = svc.config.kserve.segments.max_values
    assert 1 + len(svc.keyed) <= 2 * (max_values + 1)
    evaluate(svc)
    assert {key: ev.records for key, ev in svc.keyed_evaluations.items()} == dict.fromkeys(keys, 60)
    assert svc.evaluation is not None and svc.evaluation.records == 60
    # A refused event left nothing behind.
    assert svc.state.totals.records == 6 * 60


def test_headers_not_allow_listed_and_the_default_endpoint_keep_the_main_window():
    rng = np.random.default_rng(14)
    svc = service(rng.normal(size=300))  # no segments allow-listed
    send(svc, "a", rng.normal(size=60), np.zeros(60), endpoint="default", team="fraud")
    send(svc, "b", rng.normal(size=60), np.zeros(60), endpoint="")
    assert len(svc.keyed) == 0 and not svc.keyed.keys
    with pytest.raises(PayloadError) as e:
        send(svc, "c", [0.0], [0], endpoint="blue")
    assert (e.value.field, e.value.status) == ("ce-endpoint", 400)
    assert evaluate(svc).records == 120 and svc.keyed_evaluations == {}


def test_metrics_carry_endpoint_and_segment_and_the_default_series_are_unchanged():
    rng = np.random.default_rng(15)
    ref = rng.normal(size=500)
    xs = rng.normal(0.2, 1, 120)
    plain = service(ref)
    send(plain, "d", xs, np.zeros(120))
    evaluate(plain)
    before = scrape(plain)

    svc = service(ref, segments={"headers": ["X-Team"]})
    send(svc, "d", xs, np.zeros(120))
    send(svc, "c", rng.normal(3, 1, 80), np.ones(80), endpoint="canary")
    send(svc, "s", rng.normal(0, 1, 70), np.ones(70), team="fr,aud")
    evaluate(svc)
    after = scrape(svc)
    keyed = {k: v for k, v in after.items() if dict(k[1]).keys() & set(m.KEYED_LABELS)}
    main = {k: v for k, v in after.items() if k not in keyed}
    # The main window's series: the same names, labels and figures as without keyed windows
    # (records and the timings of the evaluation aside: the monitor counts every record).
    varying = {m.RECORDS.series, m.EVALUATION_DURATION.series, m.PENDING_LABELS.series}
    assert main.keys() == before.keys()
    assert {k: v for k, v in main.items() if k[0] not in varying} == {
        k: v for k, v in before.items() if k[0] not in varying
    }
    canary = (("kserve_endpoint", "canary"), ("segment", ""))
    team = (("kserve_endpoint", "default"), ("segment", "X-Team=fr\\,aud"))
    assert after[(m.WINDOW_RECORDS.series, canary)] == 80
    assert after[(m.WINDOW_RECORDS.series, team)] == 70
    score = (m.FEATURE_DRIFT_SCORE.series, (*canary, ("feature", "x"), ("method", "ks")))
    ev = svc.keyed_evaluations[EventKey("canary")]
    assert after[(score[0], tuple(sorted(score[1])))] == ev.features["x"].score
    # Only the window's figures are keyed, each with both labels.
    assert {name for name, _ in keyed} <= {metric.series for metric in m.KEYED_METRICS}
    assert all({"kserve_endpoint", "segment"} <= dict(labels).keys() for _, labels in keyed)
    assert m.EVALUATION_TIMESTAMP.series not in {name for name, _ in keyed}


def test_alerts_are_per_endpoint_and_segment_in_promql_and_in_the_worker():
    rule = alerts.Compare(m.DRIFT_SHARE, ">=", 0.5)
    assert "kserve_endpoint, segment" in rule.promql('modelmonitor="m"')
    assert "segment" not in alerts.Compare(m.PENDING_LABELS, ">", 1).promql('modelmonitor="m"')
    rng = np.random.default_rng(16)
    svc = service(rng.normal(size=500))
    send(svc, "d", rng.normal(size=200), np.zeros(200))
    send(svc, "c", rng.normal(4, 1, 200), np.zeros(200), endpoint="canary")
    evaluate(svc)
    drift = [v for v in svc.status().violations if v.alert == alerts.DATA_DRIFT]
    assert [v.labels.get("kserve_endpoint") for v in drift] == ["canary"]


def test_a_canary_request_without_its_response_goes_to_the_canary_window():
    rng = np.random.default_rng(17)
    clock = Clock()
    svc = service(rng.normal(size=300), clock=clock)
    headers = {"ce-id": "lonely", "ce-type": REQUEST_TYPE, "ce-endpoint": "canary"}
    svc.ingest_cloudevent(headers, orjson.dumps({"instances": [[1.0], [2.0]]}))
    clock.t += 3600 * 0.5
    send(svc, "later", [0.0], [0])  # expires the waiting half
    evaluate(svc)
    assert svc.keyed_evaluations[EventKey("canary")].records == 2
    assert svc.evaluation is not None and svc.evaluation.records == 1


def test_keyed_windows_survive_a_snapshot_and_their_labels_still_join(tmp_path):
    rng = np.random.default_rng(18)
    ref = rng.normal(size=500)
    clock = Clock()
    a = service(ref, clock=clock, segments={"headers": ["X-Team"], "maxValues": 1})
    send(a, "c", rng.normal(1, 1, 150), np.ones(150), endpoint="canary")
    send(a, "s", rng.normal(0, 1, 100), np.zeros(100), team="fraud")
    before = {k: (e.records, e.features["x"].score) for k, e in _evaluated(a).items()}
    a.save(tmp_path)
    b = service(ref, clock=clock, segments={"headers": ["X-Team"], "maxValues": 1})
    assert b.restore(tmp_path)
    assert {k: (e.records, e.features["x"].score) for k, e in _evaluated(b).items()} == before
    with pytest.raises(EventRefused):  # the admitted segment is remembered too
        send(b, "t", [0.0], [0], team="risk")
    assert b.ingest_labels(orjson.dumps({"labels": [{"id": "c/3", "label": 1}]}))["matched"] == 1
    assert _evaluated(b)[EventKey("canary")].labelled == 1


def _evaluated(svc):
    evaluate(svc)
    return svc.keyed_evaluations


def test_idle_windows_are_dropped_and_made_again_for_a_late_label():
    rng = np.random.default_rng(19)
    clock = Clock()
    svc = service(rng.normal(size=300), clock=clock, labels={"ttl": "3h"})
    send(svc, "c", [0.5, 1.5], [1, 0], endpoint="canary")
    clock.t += 2 * 3600  # past the window: the canary's buckets are gone
    evaluate(svc)
    assert len(svc.keyed) == 0 and EventKey("canary") not in svc.keyed_evaluations
    assert svc.ingest_labels(orjson.dumps({"labels": [{"id": "c/0", "label": 1}]}))["matched"] == 1
    evaluate(svc)
    assert svc.keyed_evaluations[EventKey("canary")].labelled == 1
    assert svc.evaluation is not None and svc.evaluation.labelled == 0


def test_window_codes_are_stable_and_the_main_one_is_zero():
    assert window_code(MAIN) == 0
    a, b = EventKey("canary"), EventKey("default", (("X-Team", "fraud"),))
    assert window_code(a) == window_code(EventKey("canary")) != window_code(b) != 0
    assert window_code(a) < 2**53  # exact as a float


def test_a_half_refused_for_its_body_admits_no_segment():
    rng = np.random.default_rng(20)
    svc = service(rng.normal(size=300), segments={"headers": ["X-Team"], "maxValues": 1})
    headers = {"ce-id": "e", "ce-type": REQUEST_TYPE, "ce-metadata": '{"X-Team": ["a"]}'}
    with pytest.raises(EventRefused) as e:
        svc.ingest_cloudevent(headers, b"")  # not an inference
    assert e.value.reason == "not-inference"
    send(svc, "f", [0.0], [0], team="b")  # the one segment allowed is still free
    assert {key for key, _ in svc.keyed} == {EventKey("default", (("X-Team", "b"),))}


def test_with_a_shared_store_every_event_goes_to_the_main_window(caplog):
    rng = np.random.default_rng(21)
    config = parse_config(
        {
            "monitor": {"name": "m"},
            "model": {"name": "m", "task": "binary-classification"},
            "kserve": {"segments": {"headers": ["X-Team"]}},
        }
    )
    profile = build_profile(config, ReferenceData(pa.table({"x": rng.normal(size=100)}), "t"))
    svc = MonitorService(config, profile, Clock(), store=object())  # type: ignore[arg-type]
    out = send(svc, "c", [1.0], [1], endpoint="canary", team="fraud")
    assert out == {"accepted": 1, "joined": False, "queued": True}
    assert len(svc.halves) == 2 and len(svc.keyed) == 0 and not svc.keyed.values.segments()
    assert "keyed windows are not kept with a shared store" in caplog.text


def test_a_new_reference_starts_every_window_fresh_and_canary_labels_still_join():
    # What the worker does when the reference is reloaded (monitor_worker.loader): a new
    # service takes over the old one's totals, pending predictions and known windows.
    rng = np.random.default_rng(21)
    clock = Clock()
    old = service(rng.normal(size=500), clock)
    y = rng.integers(0, 2, 100)
    for i in range(100):
        send(old, f"c{i}", [rng.normal()], [y[i]], endpoint="canary")
    new = service(rng.normal(1.0, 1.0, size=500), clock)
    new.carry_over(old)
    assert len(new.keyed) == 0 and new.state.totals.records == 100
    out = new.ingest_labels(orjson.dumps({"labels": [{"id": f"c{i}", "label": int(y[i])}
                                                     for i in range(100)]}))  # fmt: skip
    assert out["matched"] == 100
    evaluate(new)
    canary = new.keyed_evaluations[EventKey("canary")]
    assert canary.labelled == 100 and canary.quality["accuracy"] == 1.0
