"""Real pods on a real node (containerd and a kubelet, :mod:`devcluster.node`) registered beside
the kwok nodes: ``helm install`` of the chart puts the operator pod there (the namespace
enforcing the restricted Pod Security Standard), and it must be Running and Ready by the
kubelet's own probes; the operator in it creates the worker Deployment of a ModelMonitor, whose
pod must run there too. Then journey 5 for real: Prometheus scrapes the worker pod with the
operator's PrometheusRule, healthy traffic keeps the monitor Healthy, degraded traffic fires
ModelMonitorAccuracyLow into Alertmanager and the operator (reading Alertmanager from its pod)
turns the status Critical."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from devcluster.controlplane import ControlPlane, wait_for_default_service_account
from devcluster.node import RealNode, placement
from devcluster.processes import wait_until
from devcluster.prometheus import Alertmanager, Prometheus
from tests.e2e.test_alerting_path import REFERENCE, Traffic, monitor_manifest
from tests.support.containers import client, repo_and_tag
from tests.support.helm import CHART, helm
from tests.support.operator import get_json

pytestmark = pytest.mark.container

RELEASE = "model-monitor"
OPERATOR_NAMESPACE = "model-monitor-system"


@dataclass
class Stack:
    am: Alertmanager
    prom: Prometheus


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("node-stack")
    am = Alertmanager(work / "am").start()
    prom = Prometheus(work / "prom", alertmanagers=[am.url]).start()
    try:
        yield Stack(am, prom)
    finally:
        prom.stop()
        am.stop()


def restricted_namespace(cp: ControlPlane, name: str) -> str:
    cp.kubectl("create", "namespace", name)
    cp.kubectl(
        "label", "namespace", name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )  # fmt: skip
    wait_for_default_service_account(cp.kubeconfig, name)
    return name


@pytest.fixture(scope="module")
def release(own_cluster: ControlPlane, node: RealNode, images, stack: Stack) -> Iterator[dict]:
    """The chart installed with our image, its operator placed on the real node and pointed
    at Prometheus and Alertmanager through the node's relays."""
    restricted_namespace(own_cluster, OPERATOR_NAMESPACE)
    repo, tag = repo_and_tag(images.project.ref)
    place = placement()
    args = [
        "install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE,
        "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
        "--set-json", f"nodeSelector={json.dumps(place['nodeSelector'])}",
        "--set-json", f"tolerations={json.dumps(place['tolerations'])}",
        "--set", f"operator.prometheusURL=http://{node.reach_machine(stack.prom.port)}",
        "--set", f"operator.alertmanagerURL=http://{node.reach_machine(stack.am.port)}",
        "--set", "operator.statusInterval=1s",
        "--wait", "--timeout", "180s",
    ]  # fmt: skip
    r = helm(*args, kubeconfig=own_cluster.kubeconfig, check=False)
    if r.returncode != 0:
        pods = own_cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False)
        raise AssertionError(f"helm install: {r.stderr}\n{pods}\n{node_logs(node)}")
    try:
        yield {"repo": repo, "tag": tag}
    finally:
        helm("uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait",
             kubeconfig=own_cluster.kubeconfig, check=False)  # fmt: skip


def node_logs(node: RealNode) -> str:
    tail = {p.name: p.log_tail(15) for p in node.processes}
    return "\n".join(f"--- {name}\n{text}" for name, text in tail.items())


def pods_of(cp: ControlPlane, namespace: str, selector: str) -> list[dict]:
    out = cp.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
    return list(json.loads(out)["items"])


def running_and_ready(pod: dict) -> bool:
    status = pod.get("status", {})
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
    )
    return status.get("phase") == "Running" and ready


def test_chart_operator_pod_runs_and_is_ready_on_the_real_node(own_cluster, node, release):
    (pod,) = pods_of(own_cluster, OPERATOR_NAMESPACE, f"app.kubernetes.io/instance={RELEASE}")
    name = pod["metadata"]["name"]
    assert pod["spec"]["nodeName"] == node.name
    assert running_and_ready(pod), json.dumps(pod["status"], indent=1)
    (cs,) = pod["status"]["containerStatuses"]
    # Run by containerd from the image imported into it, not simulated.
    assert cs["containerID"].startswith("containerd://"), cs
    assert cs["image"].endswith(f"{release['repo']}:{release['tag']}"), cs
    assert cs["ready"] and cs["restartCount"] == 0 and "running" in cs["state"], cs
    log = node.pod_log(OPERATOR_NAMESPACE, name)
    assert "Initial authentication has finished" in log, log[-3000:]
    assert "kube-probe" in log, "the kubelet's probes never reached the operator"
    # Its liveness endpoint, reached from the machine through a relay to the pod's address.
    container = pod["spec"]["containers"][0]
    health = next(p["containerPort"] for p in container["ports"] if p["name"] == "health")
    port = node.forward(pod["status"]["podIP"], health)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        assert r.status == 200


def test_worker_pod_on_the_real_node_drives_the_alert_path(own_cluster, node, release, stack):
    cp = own_cluster
    namespace = restricted_namespace(cp, "fraud-real")
    name = "fraud"
    cp.kubectl("create", "configmap", "fraud-reference", f"--from-file=reference.csv={REFERENCE}",
               "-n", namespace)  # fmt: skip
    # The model itself stays on a kwok node: only our pods need to run.
    cp.kubectl("create", "deployment", "fraud-detector", "--image=example.invalid/fraud:1",
               "-n", namespace)  # fmt: skip
    manifest = monitor_manifest(name)
    manifest["spec"]["worker"] = placement()
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    selector = f"modelmonitor.io/name={name}"

    def worker_pod() -> dict | None:
        pods = [p for p in pods_of(cp, namespace, selector) if running_and_ready(p)]
        return pods[0] if pods else None

    try:
        wait_until(lambda: worker_pod() is not None, timeout=180, what="the worker pod Ready")
    except Exception as e:
        pods = cp.kubectl("get", "pods", "-n", namespace, "-o", "wide")
        events = cp.kubectl("get", "events", "-n", namespace)
        raise AssertionError(f"{e}\n{pods}\n{events}\n{node_logs(node)}") from None
    pod = worker_pod()
    assert pod is not None and pod["spec"]["nodeName"] == node.name
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")

    # The worker from the machine, through a relay to the pod's address.
    port = node.forward(pod["status"]["podIP"], 8080)
    secret = get_json(cp.kubeconfig, "secret", f"mm-{name}-token", "-n", namespace)
    worker = client(port, token=base64.b64decode(secret["data"]["token"]).decode())
    assert worker.get("/readyz")[0] == 200

    # Prometheus scrapes it as the ServiceMonitor says, with the operator's rules.
    sm = get_json(cp.kubeconfig, "servicemonitor", f"mm-{name}", "-n", namespace)
    rule = get_json(cp.kubeconfig, "prometheusrule", f"mm-{name}", "-n", namespace)
    endpoint = sm["spec"]["endpoints"][0]
    stack.prom.scrape_configs = [
        {
            "job_name": f"serviceMonitor/{namespace}/mm-{name}/0",
            "scrape_interval": endpoint["interval"],
            "metrics_path": endpoint["path"],
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{port}"],
                    "labels": {"namespace": namespace, "job": f"mm-{name}",
                               "service": f"mm-{name}", "pod": pod["metadata"]["name"]},
                }
            ],
        }
    ]  # fmt: skip
    stack.prom.set_rule_groups(rule["spec"]["groups"])

    def status() -> dict:
        return get_json(cp.kubeconfig, "modelmonitor", name, "-n", namespace).get("status") or {}

    traffic = Traffic(worker).start()
    try:
        wait_until(lambda: status().get("health") == "Healthy", timeout=120,
                   what="health Healthy (read by the operator pod from Alertmanager)")  # fmt: skip
        assert status()["healthSource"] == "alertmanager"
        up = stack.prom.query(f'up{{namespace="{namespace}"}}')
        assert [s["value"][1] for s in up] == ["1"], up

        traffic.mode = "degraded"
        wait_until(
            lambda: [a for a in stack.am.alerts(alertname="ModelMonitorAccuracyLow",
                                                namespace=namespace, modelmonitor=name)
                     if a["status"]["state"] == "active"],
            timeout=150, what="ModelMonitorAccuracyLow in Alertmanager", interval=0.5,
        )  # fmt: skip
        wait_until(lambda: status().get("health") == "Critical", timeout=90,
                   what="health Critical")  # fmt: skip
        firing = {a["name"] for a in status()["firingAlerts"]}
        assert "ModelMonitorAccuracyLow" in firing
    finally:
        traffic.stop()
    assert traffic.errors == [], traffic.errors[:3]
    # Nothing restarted along the way.
    pod = get_json(cp.kubeconfig, "pod", pod["metadata"]["name"], "-n", namespace)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    cp.kubectl("delete", "namespace", namespace, "--wait=false")


class Sender:
    """Traffic as a Service would route it, in a background thread: each batch to the next
    worker pod that is Ready and not terminating (refreshed from the API server every 0.3 s),
    through a relay from the machine to the pod's address; every answer's code is kept."""

    def __init__(self, cp: ControlPlane, node: RealNode, namespace: str, selector: str,
                 token: str) -> None:  # fmt: skip
        self.cp, self.node, self.namespace, self.selector = cp, node, namespace, selector
        self.token = token
        self.ports: dict[str, int] = {}
        self.codes: dict[int, int] = {}
        self.accepted = 0
        self.pods_seen: set[str] = set()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _serving(self) -> list[int]:
        out = []
        for pod in pods_of(self.cp, self.namespace, self.selector):
            if pod["metadata"].get("deletionTimestamp") or not running_and_ready(pod):
                continue
            ip = pod["status"]["podIP"]
            if ip not in self.ports:
                self.ports[ip] = self.node.forward(ip, 8080)
            self.pods_seen.add(pod["metadata"]["name"])
            out.append(self.ports[ip])
        return out

    def _run(self) -> None:
        traffic = Traffic(None, seed=3)
        serving: list[int] = []
        refreshed = 0.0
        k = 0
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 0.3:
                try:
                    serving = self._serving() or serving
                except Exception as e:  # the API server busy: keep the last list
                    self.errors.append(f"listing pods: {e}")
                refreshed = time.monotonic()
            if not serving:
                time.sleep(0.1)
                continue
            port = serving[k % len(serving)]
            k += 1
            body = traffic.batch(100)
            try:
                code, _ = client(port, token=self.token).post("/v1/records", body)
            except Exception as e:
                self.errors.append(f"port {port}: {e}")
                continue
            self.codes[code] = self.codes.get(code, 0) + 1
            if code == 200:
                self.accepted += 100
            time.sleep(0.02)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_replicas_sharing_a_store_roll_on_the_real_node_without_a_5xx_or_a_lost_record(
    own_cluster, node, release, redis_server
):
    """Issue 18's rolling restart on real pods: two worker pods sharing a real redis-server
    (the machine's, reached from the node), a config change rolls them one by one
    (RollingUpdate, maxUnavailable 0, preStop) under steady traffic routed to Ready pods; no
    answer is a 5xx and the merged window holds every record acknowledged."""
    cp = own_cluster
    namespace = restricted_namespace(cp, "fraud-replicas")
    name = "fraud"
    cp.kubectl("create", "configmap", "fraud-reference", f"--from-file=reference.csv={REFERENCE}",
               "-n", namespace)  # fmt: skip
    cp.kubectl("create", "deployment", "fraud-detector", "--image=example.invalid/fraud:1",
               "-n", namespace)  # fmt: skip
    cp.kubectl("create", "secret", "generic", "store-auth",
               f"--from-literal=password={redis_server.password}", "-n", namespace)  # fmt: skip
    manifest = monitor_manifest(name)
    spec = manifest["spec"]
    spec["window"] = {"size": "30m", "buckets": 6, "evaluationInterval": "1s", "minSamples": 10}
    spec["worker"] = {
        **placement(),
        "replicas": 2,
        "store": {
            "url": f"redis://{node.reach_machine(redis_server.port)}/0",
            "passwordSecretRef": {"name": "store-auth", "key": "password"},
            "flushInterval": "250ms",
        },
    }
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    selector = f"modelmonitor.io/name={name}"

    def ready_pods() -> list[dict]:
        return [
            p for p in pods_of(cp, namespace, selector)
            if running_and_ready(p) and not p["metadata"].get("deletionTimestamp")
        ]  # fmt: skip

    try:
        wait_until(lambda: len(ready_pods()) == 2, timeout=240, what="two worker pods Ready")
    except Exception as e:
        pods = cp.kubectl("get", "pods", "-n", namespace, "-o", "wide")
        events = cp.kubectl("get", "events", "-n", namespace)
        raise AssertionError(f"{e}\n{pods}\n{events}\n{node_logs(node)}") from None
    first = {p["metadata"]["name"] for p in ready_pods()}
    secret = get_json(cp.kubeconfig, "secret", f"mm-{name}-token", "-n", namespace)
    token = base64.b64decode(secret["data"]["token"]).decode()
    sender = Sender(cp, node, namespace, selector, token).start()
    try:
        wait_until(lambda: sender.accepted >= 3000, timeout=120, what="traffic flowing")
        # A config change: a new checksum, so the Deployment rolls its pods.
        spec["window"]["evaluationInterval"] = "2s"
        cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))

        def rolled() -> bool:
            pods = pods_of(cp, namespace, selector)
            names = {p["metadata"]["name"] for p in pods}
            return len(pods) == 2 and not names & first and all(map(running_and_ready, pods))

        wait_until(rolled, timeout=300, what="both worker pods replaced and Ready", interval=1)
        wait_until(lambda: sender.accepted >= 3000 + 2000, timeout=120, what="traffic after")
    finally:
        sender.stop()
    assert set(sender.codes) == {200}, sender.codes
    assert len(sender.pods_seen) >= 4, sender.pods_seen  # old and new pods both served
    # Every record acknowledged by any pod, old or new, is in the merged window.
    pod = ready_pods()[0]
    worker = client(node.forward(pod["status"]["podIP"], 8080), token=token)
    wait_until(
        lambda: worker.status()["window"].get("records") == sender.accepted,
        timeout=60,
        what=f"{sender.accepted} records in the merged window",
    )
    cp.kubectl("delete", "namespace", namespace, "--wait=false")
