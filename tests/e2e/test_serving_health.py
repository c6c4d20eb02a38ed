"""Serving health for real: MLServer 1.7.1 serves the demo's model with its own Prometheus
``/metrics``; kube-state-metrics (built from its module) watches the local control plane,
where the target Deployment's pods run (kwok); the real Prometheus scrapes both, as
kube-prometheus-stack and a PodMonitor would (MLServer's series labelled with the namespace
and the name of a pod of the target), and evaluates the PrometheusRule the operator wrote.
Healthy traffic -> no serving alert, and the target's pod found by the ownership join;
failing inference requests -> ``ModelMonitorServingErrorsHigh`` fires with its labels and
readable annotations, and reaches Alertmanager."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from demo import venv
from demo.data import transactions
from demo.oip import MODEL, infer
from demo.server import ModelServer
from devcluster.monitoring import KubeStateMetrics
from devcluster.processes import wait_until
from devcluster.prometheus import Alertmanager, Prometheus
from tests.support.operator import get_json

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
NAME = "fraud"
ALERT = "ModelMonitorServingErrorsHigh"
#: A payload without the model's columns: the model raises, MLServer answers 500.
BAD = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]}


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory) -> Iterator[ModelServer]:
    """The demo's model, trained in .venv-demo, served by MLServer with its metrics server."""
    python = venv.ensure()  # minutes the first time, then cached
    out = tmp_path_factory.mktemp("model")
    subprocess.run(
        [str(python), "-m", "demo.model", "--out", str(out)], cwd=REPO, check=True,
        capture_output=True, timeout=300,
    )  # fmt: skip
    server = ModelServer(out / "model.joblib", out / "mlserver", metrics=True).start()
    try:
        yield server
    finally:
        server.stop()


class Requests:
    """Inference requests in a background thread; ``failing`` is the share that fail in the
    model (a payload without the model's columns: MLServer answers 500 and counts a failure)."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self.failing = 0.0
        self.sent = {"ok": 0, "failed": 0}
        self.rng = np.random.default_rng(3)
        self.columns = transactions(20, seed=5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _bad(self) -> None:
        req = urllib.request.Request(
            f"{self.server.url}/v2/models/{MODEL}/infer",
            data=json.dumps(BAD).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 500, e.code
            self.sent["failed"] += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.rng.random() < self.failing:
                self._bad()
            else:
                infer(self.server.url, self.columns)
                self.sent["ok"] += 1
            time.sleep(0.05)

    def __enter__(self) -> Requests:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def monitor_manifest() -> dict:
    return {
        "apiVersion": "modelmonitor.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": NAME},
        "spec": {
            "model": {
                "name": "fraud-detector",
                "task": "binary-classification",
                "targetRef": {"name": "fraud-detector"},
            },
            "alerts": {
                "for": "3s",
                "labels": {"team": "fraud"},
                "servingHealth": {"rateWindow": "20s", "errorRatio": 0.05},
            },
        },
    }


def test_mlserver_errors_fire_the_serving_alert(cluster, operator, mlserver, namespace, tmp_path):
    cluster.kubectl(
        "create", "deployment", "fraud-detector", "--image=example.invalid/fraud:1",
        "--replicas=2", "-n", namespace,
    )  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(monitor_manifest()))

    def pods() -> list[str]:
        items = get_json(cluster.kubeconfig, "pods", "-n", namespace, "-l", "app=fraud-detector")
        return sorted(p["metadata"]["name"] for p in items["items"])

    wait_until(lambda: len(pods()) == 2, timeout=60, what="the target's two pods")
    wait_until(
        lambda: get_json(cluster.kubeconfig, "prometheusrule", f"mm-{NAME}", "-n", namespace),
        timeout=60,
        what="the monitor's PrometheusRule",
    )
    rule = get_json(cluster.kubeconfig, "prometheusrule", f"mm-{NAME}", "-n", namespace)
    groups = rule["spec"]["groups"]
    assert any(g["name"].endswith(".serving") for g in groups)
    model_pod = pods()[0]

    with (
        KubeStateMetrics(cluster.kubeconfig, tmp_path / "ksm", [namespace]) as ksm,
        Alertmanager(tmp_path / "am") as am,
    ):
        prom = Prometheus(
            tmp_path / "prom",
            rule_groups=groups,
            alertmanagers=[am.url],
            scrape_configs=[
                {   # as kube-prometheus-stack scrapes kube-state-metrics
                    "job_name": "kube-state-metrics",
                    "honor_labels": True,
                    "static_configs": [{"targets": [ksm.url.removeprefix("http://")]}],
                },
                {   # as a PodMonitor of the model's pods: namespace and pod of the target
                    "job_name": f"podMonitor/{namespace}/fraud-detector/0",
                    "static_configs": [
                        {
                            "targets": [mlserver.metrics_url.removeprefix("http://").removesuffix("/metrics")],
                            "labels": {"namespace": namespace, "pod": model_pod, "container": "mlserver"},
                        }
                    ],
                },
            ],
        ).start()  # fmt: skip
        try:
            _journey(prom, am, mlserver, namespace, model_pod, pods())
        finally:
            prom.stop()


def _firing(prom: Prometheus) -> list[dict]:
    return [
        a for a in prom.alerts() if a["labels"]["alertname"] == ALERT and a["state"] == "firing"
    ]


def _journey(prom, am, mlserver, namespace, model_pod, all_pods) -> None:
    # The ownership join over real kube-state-metrics series finds exactly the target's pods.
    def target_pods() -> set[str]:
        out = prom.query(f'modelmonitor:target_pod:info{{namespace="{namespace}"}}')
        return {s["metric"]["pod"] for s in out}

    prom.wait_for(lambda: target_pods() == set(all_pods), timeout=60, what="target pods joined")
    (sample,) = [s for s in prom.query(f'modelmonitor:target_pod:info{{pod="{model_pod}"}}')]
    assert (
        sample["metric"]["modelmonitor"] == NAME and sample["metric"]["model"] == "fraud-detector"
    )

    with Requests(mlserver) as requests:
        # Healthy traffic: MLServer's series arrive, the error rule stays silent.
        prom.wait_for(
            lambda: prom.query(f'model_infer_request_success_total{{pod="{model_pod}"}}'),
            timeout=60,
            what="MLServer's series scraped",
        )
        assert _firing(prom) == []
        # Failing requests: a third fail in the model.
        requests.failing = 0.35
        prom.wait_for(lambda: _firing(prom), timeout=120, what=f"{ALERT} firing in Prometheus")
        assert requests.sent["failed"] > 0
    (alert,) = _firing(prom)
    labels = alert["labels"]
    assert {k: labels[k] for k in ("namespace", "modelmonitor", "model", "severity", "team")} == {
        "namespace": namespace,
        "modelmonitor": NAME,
        "model": "fraud-detector",
        "severity": "warning",
        "team": "fraud",
    }
    ann = alert["annotations"]
    assert ann["summary"] == "Model fraud-detector fails inference requests"
    assert ann["description"].endswith(
        f"of the inference requests to model fraud-detector ({namespace}/{NAME}) failed over "
        "20s; the threshold is 5%."
    )
    assert float(alert["value"]) > 0.05
    wait_until(
        lambda: am.alerts(alertname=ALERT, namespace=namespace, modelmonitor=NAME),
        timeout=30,
        what=f"{ALERT} in Alertmanager",
    )
