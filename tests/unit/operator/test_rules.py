"""rules: the alert table as PrometheusRule groups, per monitor (pure)."""

from __future__ import annotations

from mm_api.alerts import WORKER_ABSENT, WORKER_DOWN
from mm_operator.rules import render_rule_groups
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor


def monitor(**worker):
    return parse_monitor(
        {
            "metadata": {"name": "fraud", "namespace": "ml", "uid": "u", "generation": 1},
            "spec": {
                "model": {"task": "binary-classification", "targetRef": {"name": "fd"}},
                "quality": {"thresholds": [{"metric": "accuracy", "min": 0.9}]},
                "worker": worker,
            },
        }
    )


def alert_names(m) -> list[str]:
    return [
        r["alert"] for g in render_rule_groups(m, Settings()) for r in g["rules"] if "alert" in r
    ]


def test_a_paused_worker_gets_no_worker_presence_alerts():
    """Found in review: a paused monitor (replicas 0) fired ModelMonitorWorkerAbsent; its
    worker is absent on purpose. Everything else stays (it fires nothing without series)."""
    running, paused = alert_names(monitor()), alert_names(monitor(replicas=0))
    assert {WORKER_DOWN, WORKER_ABSENT} <= set(running)
    assert not {WORKER_DOWN, WORKER_ABSENT} & set(paused)
    assert set(running) - set(paused) == {WORKER_DOWN, WORKER_ABSENT}
