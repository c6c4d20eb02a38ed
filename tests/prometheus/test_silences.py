"""Silences asked for with the ``modelmonitor.io/silence`` annotation, against a real
Alertmanager: the silence matches exactly this monitor's alerts (namespace and modelmonitor),
lasts as long as asked, is made once however often the handler runs, is replaced by a new
value and expired when the annotation goes. The operator doing it on ``kubectl annotate``
is tested in tests/e2e/test_alert_routing.py."""

from __future__ import annotations

import datetime as dt

import pytest

from devcluster.prometheus import http_json
from mm_operator.silences import (
    COMMENT_ANNOTATION,
    CREATED_BY,
    SILENCE_ANNOTATION,
    AlertmanagerSilences,
    SilenceError,
    sync,
)

pytestmark = pytest.mark.prometheus
UID = "5f0c7a9e-uid"


def post_alert(am, **labels: str) -> None:
    http_json(
        f"{am.url}/api/v2/alerts",
        data=[{"labels": {"severity": "warning", **labels}, "annotations": {"summary": "s"}}],
        method="POST",
    )


def silenced(am, **labels: str) -> bool:
    (alert,) = am.alerts(**labels)
    return alert["status"]["state"] == "suppressed" and bool(alert["status"]["silencedBy"])


def unexpired(am) -> list[dict]:
    return [s for s in http_json(f"{am.url}/api/v2/silences") if s["status"]["state"] != "expired"]


def test_annotation_silences_exactly_this_monitor_and_only_once(alertmanager):
    am = AlertmanagerSilences(alertmanager.url)
    now = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
    annotations = {SILENCE_ANNOTATION: "2h", COMMENT_ANNOTATION: "retraining until 14:00"}
    outcome = sync(am, "ml", "fraud", UID, annotations, now=now)
    assert outcome is not None and outcome.reason == "Silenced"
    (silence,) = unexpired(alertmanager)
    assert sorted(
        (m["name"], m["value"], m["isEqual"], m["isRegex"]) for m in silence["matchers"]
    ) == [
        ("modelmonitor", "fraud", True, False),
        ("namespace", "ml", True, False),
    ]
    assert silence["createdBy"] == CREATED_BY
    assert silence["comment"].endswith("retraining until 14:00")
    assert silence["endsAt"].startswith("2030-01-01T14:00:00")
    assert outcome.message.startswith(f"Alertmanager silence {silence['id']} ")
    # The handler retried (or run twice): no second silence.
    assert sync(am, "ml", "fraud", UID, annotations, now=now) is None
    assert len(unexpired(alertmanager)) == 1


def test_silence_suppresses_this_monitors_alerts_only(alertmanager):
    am = AlertmanagerSilences(alertmanager.url)
    sync(am, "ml", "fraud", UID, {SILENCE_ANNOTATION: "1h"})
    post_alert(
        alertmanager, alertname="ModelMonitorDataDrift", namespace="ml", modelmonitor="fraud"
    )
    post_alert(
        alertmanager, alertname="ModelMonitorDataDrift", namespace="ml", modelmonitor="churn"
    )
    post_alert(
        alertmanager, alertname="ModelMonitorDataDrift", namespace="other", modelmonitor="fraud"
    )
    assert silenced(alertmanager, namespace="ml", modelmonitor="fraud")
    assert not silenced(alertmanager, namespace="ml", modelmonitor="churn")
    assert not silenced(alertmanager, namespace="other", modelmonitor="fraud")


def test_new_value_replaces_and_removal_expires(alertmanager):
    am = AlertmanagerSilences(alertmanager.url)
    sync(am, "ml", "fraud", UID, {SILENCE_ANNOTATION: "1h"})
    (first,) = unexpired(alertmanager)
    outcome = sync(am, "ml", "fraud", UID, {SILENCE_ANNOTATION: "4h"})
    assert outcome is not None and outcome.reason == "Silenced"
    (second,) = unexpired(alertmanager)
    assert second["id"] != first["id"] and "=4h " in second["comment"]
    # Another monitor's silence (same name, another uid: deleted and re-created) is not ours.
    sync(am, "ml", "fraud", "other-uid", {SILENCE_ANNOTATION: "1h"})
    outcome = sync(am, "ml", "fraud", UID, {})
    assert (
        outcome is not None
        and outcome.reason == "SilenceExpired"
        and second["id"] in outcome.message
    )
    (left,) = unexpired(alertmanager)
    assert "uid=other-uid]" in left["comment"]
    assert sync(am, "ml", "fraud", UID, {}) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "modelmonitor.io/silence: 'soon' is not a duration"),
        ("0s", "modelmonitor.io/silence: '0s' must be longer than 0s and at most 30d"),
        ("90d", "modelmonitor.io/silence: '90d' must be longer than 0s and at most 30d"),
    ],
)
def test_bad_values_are_refused_naming_the_annotation(alertmanager, value, message):
    with pytest.raises(SilenceError) as e:
        sync(
            AlertmanagerSilences(alertmanager.url), "ml", "fraud", UID, {SILENCE_ANNOTATION: value}
        )
    assert str(e.value).startswith(message)
    assert unexpired(alertmanager) == []
