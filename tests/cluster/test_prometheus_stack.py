"""Real Prometheus scrapes a local exporter and a rule's alert reaches real Alertmanager."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from devcluster.processes import free_port
from devcluster.prometheus import static_scrape

pytestmark = pytest.mark.prometheus


@pytest.fixture
def exporter():
    registry = CollectorRegistry()
    gauge = Gauge("demo_temperature", "A value the test controls.", registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield gauge, f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_scrape_and_alert_reaches_alertmanager(exporter, alertmanager, prometheus_factory):
    gauge, target = exporter
    gauge.set(20)
    rule_groups = [
        {
            "name": "demo",
            "rules": [
                {
                    "alert": "DemoTooHot",
                    "expr": "demo_temperature > 30",
                    "for": "0s",
                    "labels": {"severity": "warning"},
                    "annotations": {"summary": "Temperature is {{ $value }}"},
                }
            ],
        }
    ]
    prom = prometheus_factory(
        scrape_configs=[static_scrape("demo", [target])],
        rule_groups=rule_groups,
        alertmanagers=[alertmanager.url],
    )
    prom.wait_for(
        lambda: any(t["health"] == "up" for t in prom.targets()), timeout=30, what="target up"
    )
    prom.wait_for(
        lambda: [r["value"][1] for r in prom.query("demo_temperature")] == ["20"],
        timeout=30,
        what="the scraped value",
    )
    assert alertmanager.alerts(alertname="DemoTooHot") == []

    gauge.set(42)
    prom.wait_for(
        lambda: len(alertmanager.alerts(alertname="DemoTooHot")) == 1,
        timeout=60,
        what="DemoTooHot in Alertmanager",
    )
    (alert,) = alertmanager.alerts(alertname="DemoTooHot")
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"] == "Temperature is 42"
    assert alert["status"]["state"] == "active"
