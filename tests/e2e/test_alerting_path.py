"""Journey 5, for real: operator on the local control plane, the worker started from the pod
spec the operator wrote, real Prometheus loading the PrometheusRule the operator wrote, and
real Alertmanager. Healthy traffic -> no alert, Healthy; degraded traffic -> the alert in
Alertmanager with its labels and annotations, and Warning/Critical in the status; recovery ->
resolved and Healthy again. Times from degraded traffic to alert and to status are printed
and written to ``$MM_E2E_RESULTS`` (JSON) when set."""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from devcluster.podrunner import PodRunner
from devcluster.processes import wait_until
from devcluster.prometheus import Alertmanager, Prometheus
from tests.support.operator import get_json

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "examples" / "reference.csv"
FEATURES = ("amount", "hour", "age", "device_score", "country", "merchant")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, operator):
    """Alertmanager, Prometheus, and the session's operator pointed at both."""
    work = tmp_path_factory.mktemp("alerting")
    am = Alertmanager(work / "am").start()
    prom = Prometheus(work / "prom", alertmanagers=[am.url]).start()
    operator.reconfigure(
        MM_ALERTMANAGER_URL=am.url, MM_PROMETHEUS_URL=prom.url, MM_STATUS_INTERVAL="1"
    )
    try:
        yield am, prom
    finally:
        operator.reconfigure(
            MM_ALERTMANAGER_URL=None, MM_PROMETHEUS_URL=None, MM_STATUS_INTERVAL="2"
        )
        prom.stop()
        am.stop()


class Traffic:
    """Sends batches of records with inline labels in a background thread; ``mode`` switches
    between rows resampled from the reference and a drifted, mislabelled world."""

    def __init__(self, worker, seed: int = 0) -> None:
        with REFERENCE.open() as f:
            rows = list(csv.DictReader(f))
        self.rows = rows
        self.worker = worker
        self.rng = np.random.default_rng(seed)
        self.mode = "healthy"
        self.sent = 0
        self.errors: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def batch(self, n: int = 100) -> dict:
        idx = self.rng.integers(0, len(self.rows), n)
        cols: dict[str, list] = {k: [] for k in (*FEATURES, "prediction", "label")}
        for i in idx:
            r = self.rows[i]
            amount, device = float(r["amount"]), float(r["device_score"])
            country, label = r["country"], int(r["label"])
            if self.mode == "degraded":
                amount, device = amount * 4 + 200, device * 0.3
                country = "IN" if self.rng.random() < 0.5 else "BR"
                label = 1 - int(r["prediction"]) if self.rng.random() < 0.45 else label
            cols["amount"].append(amount)
            cols["hour"].append(float(r["hour"]))
            cols["age"].append(float(r["age"]))
            cols["device_score"].append(device)
            cols["country"].append(country)
            cols["merchant"].append(r["merchant"])
            cols["prediction"].append(int(r["prediction"]))
            cols["label"].append(label)
        return {"columns": cols}

    def _run(self) -> None:
        while not self._stop.is_set():
            code, doc = self.worker.post("/v1/records", self.batch())
            if code != 200:
                self.errors.append((code, doc))
            else:
                self.sent += 100
            time.sleep(0.1)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def monitor_manifest(name: str) -> dict:
    return {
        "apiVersion": "modelmonitor.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "name": "fraud-detector",
                "task": "binary-classification",
                "targetRef": {"name": "fraud-detector"},
            },
            "data": {
                "reference": {
                    "configMapKeyRef": {"name": "fraud-reference", "key": "reference.csv"}
                }
            },
            "window": {"size": "40s", "buckets": 8, "evaluationInterval": "1s", "minSamples": 300},
            "quality": {
                "thresholds": [{"metric": "accuracy", "min": 0.78, "severity": "critical"}]
            },
            "drift": {"shareThreshold": 0.5},
            "outliers": {"maxRatio": 0.2},
            "alerts": {
                "for": "5s",
                "labels": {"team": "fraud"},
                "runbookURL": "https://runbooks.example.org/model-monitor",
            },
            "prometheus": {"serviceMonitor": {"interval": "1s"}},
        },
    }


def test_degradation_reaches_alertmanager_and_status_then_recovers(
    cluster, stack, namespace, tmp_path
):
    am, prom = stack
    name = "fraud"
    cluster.kubectl(
        "create",
        "configmap",
        "fraud-reference",
        f"--from-file=reference.csv={REFERENCE}",
        "-n",
        namespace,
    )
    cluster.kubectl(
        "create", "deployment", "fraud-detector", "--image=example.invalid/fraud:1", "-n", namespace
    )
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(monitor_manifest(name))
    )

    def status() -> dict:
        return (
            get_json(cluster.kubeconfig, "modelmonitor", name, "-n", namespace).get("status") or {}
        )

    def ready(st: dict) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))

    wait_until(lambda: ready(status()), timeout=60, what="monitor Ready")

    # 1. The rule groups exactly as the operator wrote them, loaded into Prometheus.
    rule = get_json(cluster.kubeconfig, "prometheusrule", f"mm-{name}", "-n", namespace)
    # 2. The worker from the pod spec; Prometheus scrapes it with the labels the Prometheus
    #    Operator's ServiceMonitor relabelling gives (job = Service name, namespace).
    worker = PodRunner(cluster.kubeconfig, namespace, f"mm-{name}", tmp_path / "pod").start()
    try:
        sm = get_json(cluster.kubeconfig, "servicemonitor", f"mm-{name}", "-n", namespace)
        prom.scrape_configs = [
            {
                "job_name": f"serviceMonitor/{namespace}/mm-{name}/0",
                "scrape_interval": sm["spec"]["endpoints"][0]["interval"],
                "metrics_path": sm["spec"]["endpoints"][0]["path"],
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{worker.port}"],
                        "labels": {
                            "namespace": namespace,
                            "job": f"mm-{name}",
                            "service": f"mm-{name}",
                            "endpoint": "http",
                            "pod": f"mm-{name}-local",
                        },
                    }
                ],
            }
        ]
        prom.set_rule_groups(rule["spec"]["groups"])

        traffic = Traffic(worker).start()
        try:
            _run_journey(cluster, am, prom, traffic, namespace, name, status)
        finally:
            traffic.stop()
        assert traffic.errors == [], traffic.errors[:3]
    finally:
        worker.stop()


def _active(am, namespace, name, alertname):
    return [
        a
        for a in am.alerts(alertname=alertname, namespace=namespace, modelmonitor=name)
        if a["status"]["state"] == "active"
    ]


def _run_journey(cluster, am, prom, traffic, namespace, name, status):
    # 3. Healthy traffic: no warning/critical alert, health Healthy.
    wait_until(lambda: status().get("health") == "Healthy", timeout=90, what="health Healthy")
    firing = [
        a
        for a in am.alerts(namespace=namespace, modelmonitor=name)
        if a["labels"]["severity"] in ("warning", "critical")
    ]
    assert firing == []
    st = status()
    assert st["healthSource"] == "alertmanager"
    assert st["summary"]["records"] >= 300 and st["summary"]["quality"]["accuracy"] >= 0.78

    # 4. Degraded traffic: drifted inputs and wrong predictions.
    traffic.mode = "degraded"
    t0 = time.monotonic()
    wait_until(
        lambda: _active(am, namespace, name, "ModelMonitorAccuracyLow"),
        timeout=120,
        what="ModelMonitorAccuracyLow in Alertmanager",
        interval=0.25,
    )
    t_alert = time.monotonic() - t0
    (alert,) = _active(am, namespace, name, "ModelMonitorAccuracyLow")
    labels = alert["labels"]
    assert {
        k: labels[k] for k in ("namespace", "modelmonitor", "model", "severity", "team", "metric")
    } == {
        "namespace": namespace,
        "modelmonitor": name,
        "model": "fraud-detector",
        "severity": "critical",
        "team": "fraud",
        "metric": "accuracy",
    }
    ann = alert["annotations"]
    assert ann["summary"] == "accuracy of model fraud-detector is below 0.78"
    assert ann["description"].startswith(
        f"accuracy of model fraud-detector ({namespace}/{name}) is 0."
    )
    assert ann["description"].endswith("the threshold is min 0.78.")
    assert (
        ann["runbook_url"] == "https://runbooks.example.org/model-monitor#modelmonitoraccuracylow"
    )
    wait_until(
        lambda: _active(am, namespace, name, "ModelMonitorDataDrift"),
        timeout=60,
        what="ModelMonitorDataDrift in Alertmanager",
    )

    wait_until(
        lambda: status().get("health") == "Critical",
        timeout=60,
        what="health Critical",
        interval=0.25,
    )
    t_status = time.monotonic() - t0
    st = status()
    names = {a["name"] for a in st["firingAlerts"]}
    assert {"ModelMonitorAccuracyLow", "ModelMonitorDataDrift"} <= names
    healthy = next(c for c in st["conditions"] if c["type"] == "Healthy")
    assert healthy["status"] == "False" and healthy["reason"] == "AlertsFiring"
    assert "ModelMonitorAccuracyLow" in healthy["message"]
    events = json.loads(
        cluster.kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            f"involvedObject.name={name}",
            "-o",
            "json",
        )
    )["items"]
    assert any(e["reason"] == "HealthCritical" for e in events)

    # 5. Recovery: healthy traffic pushes the degraded records out of the window.
    traffic.mode = "healthy"
    t1 = time.monotonic()
    wait_until(
        lambda: not _active(am, namespace, name, "ModelMonitorAccuracyLow"),
        timeout=180,
        what="ModelMonitorAccuracyLow resolved",
    )
    try:
        wait_until(
            lambda: status().get("health") == "Healthy", timeout=120, what="health Healthy again"
        )
    except Exception as e:
        alerts = [
            (a["labels"]["alertname"], a["labels"].get("severity"), a["status"]["state"])
            for a in am.alerts(namespace=namespace, modelmonitor=name)
        ]
        raise AssertionError(
            f"{e}\nstatus: {json.dumps(status(), indent=1)}\nalertmanager: {alerts}"
        ) from None
    t_recovered = time.monotonic() - t1
    result = {
        "settings": {
            "window": "40s/8 buckets",
            "evaluationInterval": "1s",
            "scrape": "1s",
            "ruleEvaluation": "1s",
            "for": "5s",
            "operatorStatusInterval": "1s",
            "alertmanagerGroupWait": "1s",
        },
        "degradedToAlertmanagerSeconds": round(t_alert, 1),
        "degradedToStatusSeconds": round(t_status, 1),
        "recoveredToHealthySeconds": round(t_recovered, 1),
    }
    print("\nalerting path timings:", json.dumps(result))
    if os.environ.get("MM_E2E_RESULTS"):
        Path(os.environ["MM_E2E_RESULTS"]).write_text(json.dumps(result, indent=2))
