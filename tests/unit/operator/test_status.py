"""status: observations -> conditions, health and events (pure)."""

from __future__ import annotations

from mm_operator.observe import Problem, TargetState, WorkerState
from mm_operator.status import Alert, HealthReading, Observation, compute_status

FOUND = TargetState(True, "Found", "found", {"app": "x"})
UP = WorkerState(True, 1, 1, "Available", "1/1")


def obs(**kw):
    base = dict(generation=2, model="m", target=FOUND, worker=UP,
                health=HealthReading("worker", enough_data=True))  # fmt: skip
    base.update(kw)
    return Observation(**base)


def cond(status, type_):
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_healthy_when_running_with_data_and_no_alerts():
    st, _ = compute_status(obs(), None, "T1")
    assert st["health"] == "Healthy"
    assert cond(st, "Ready")["status"] == "True"
    assert cond(st, "Healthy")["status"] == "True"
    assert st["observedGeneration"] == 2
    assert all(c["observedGeneration"] == 2 for c in st["conditions"])


def test_worst_firing_severity_wins_and_info_is_ignored():
    alerts = (Alert("ModelMonitorAccuracyLow", "warning"), Alert("ModelMonitorWorkerDown", "critical"),
              Alert("ModelMonitorFeatureDrift", "info"))  # fmt: skip
    st, _ = compute_status(obs(health=HealthReading("prometheus", alerts=alerts)), None, "T")
    assert st["health"] == "Critical"
    assert "ModelMonitorWorkerDown" in cond(st, "Healthy")["message"]
    assert st["firingAlertCount"] == 3
    info_only = HealthReading("prometheus", alerts=(alerts[2],), enough_data=True)
    assert compute_status(obs(health=info_only), None, "T")[0]["health"] == "Healthy"


def test_unknown_cases():
    missing = TargetState(False, "NotFound", "Deployment ns/x does not exist")
    cases = [
        obs(target=missing),
        obs(worker=WorkerState(True, 1, 0, "Progressing", "0/1")),
        obs(health=HealthReading("worker", error="connection refused")),
        obs(health=HealthReading("worker", enough_data=False)),
        obs(problems=(Problem("ReferenceNotFound", "spec.data.reference", "no"),)),
        obs(spec_error="spec.window.size: bad"),
    ]
    reasons = [compute_status(o, None, "T")[0] for o in cases]
    assert [s["health"] for s in reasons] == ["Unknown"] * len(cases)
    assert cond(reasons[0], "Ready")["status"] == "False"
    assert cond(reasons[4], "Ready")["reason"] == "ReferenceNotFound"
    assert cond(reasons[5], "Ready")["reason"] == "InvalidSpec"


def test_transition_time_kept_until_status_changes_and_events_only_on_change():
    first, events1 = compute_status(obs(), None, "T1")
    again, events2 = compute_status(obs(), first, "T2")
    assert cond(again, "Ready")["lastTransitionTime"] == "T1"
    assert events1 and not events2
    degraded, events3 = compute_status(
        obs(health=HealthReading("am", alerts=(Alert("ModelMonitorDataDrift", "warning"),))),
        again,
        "T3",
    )
    assert cond(degraded, "Healthy")["lastTransitionTime"] == "T3"
    assert cond(degraded, "Ready")["lastTransitionTime"] == "T1"
    assert next((e.type, e.reason) for e in events3) == ("Warning", "HealthWarning")


def test_key_metric_in_summary():
    reading = HealthReading("worker", summary={"quality": {"accuracy": 0.91234}}, enough_data=True)
    st, _ = compute_status(obs(health=reading, key_metric="accuracy"), None, "T")
    assert st["summary"]["keyMetric"] == "accuracy 0.912"


def test_key_metric_falls_back_to_the_estimate_until_labels_come():
    estimated = {"estimatedQuality": {"accuracy": 0.70612}, "multivariateDrift": True}
    reading = HealthReading("worker", summary=estimated, enough_data=True)
    st, _ = compute_status(obs(health=reading, key_metric="accuracy"), None, "T")
    assert st["summary"]["keyMetric"] == "accuracy 0.706 (estimated)"
    assert st["summary"]["estimatedQuality"] == {"accuracy": 0.7061}
    both = HealthReading("worker", summary={**estimated, "quality": {"accuracy": 0.9}})
    st, _ = compute_status(obs(health=both, key_metric="accuracy"), None, "T")
    assert st["summary"]["keyMetric"] == "accuracy 0.900"


def test_summary_figures_are_rounded_for_kubectl():
    reading = HealthReading(
        "prometheus",
        summary={"driftShare": 5 / 6, "quality": {"f1": 2 / 3}, "records": 7},
        enough_data=True,
    )
    st, _ = compute_status(obs(health=reading), None, "T")
    assert st["summary"] == {"driftShare": 0.8333, "quality": {"f1": 0.6667}, "records": 7}


def test_a_paused_monitor_is_unknown_whatever_still_fires():
    """Found in review: spec.worker.replicas 0 turned health Critical, as WorkerAbsent fired
    and health looked at alerts before the pause."""
    paused = WorkerState(True, 0, 0, "Paused", "spec.worker.replicas is 0")
    absent = HealthReading(
        "alertmanager", alerts=(Alert("ModelMonitorWorkerAbsent", "critical"),), enough_data=None
    )
    st, events = compute_status(obs(worker=paused, health=absent), None, "T")
    assert st["health"] == "Unknown"
    assert (cond(st, "Healthy")["reason"], cond(st, "Healthy")["status"]) == (
        "WorkerPaused",
        "Unknown",
    )
    assert "paused" in cond(st, "Healthy")["message"]
    assert not [e for e in events if e.reason == "HealthCritical"]
