"""Steps 4 and 5: the model's Deployment, the reference data and the ModelMonitor in the
cluster; then the worker the operator deployed, run from its pod spec, scraped by Prometheus,
with the PrometheusRule the operator wrote loaded into Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

from devcluster.controlplane import REPO, wait_for_default_service_account
from devcluster.podrunner import PodRunner
from devcluster.processes import wait_until
from devcluster.prometheus import Prometheus
from devcluster.tools import Cluster
from devcluster.worker import WorkerProcess

NAMESPACE = "fraud"
NAME = "fraud"
MODEL_MANIFEST = "examples/fraud-detector.yaml"
MONITOR_MANIFEST = "examples/fraud-monitor.yaml"
WORKER = f"mm-{NAME}"  # the Deployment, Service, ServiceMonitor and PrometheusRule

# The example is tuned for production (10m window, alerts after 1m). A demo has minutes, so:
# a 1-minute window in 6 buckets evaluated every 2s, alerts after 10s, scrapes every 2s.
# minSamples 500 keeps the first noisy windows (a few hundred labels) from raising alerts.
DEMO_TIMINGS = {
    "spec": {
        "window": {"size": "1m", "buckets": 6, "evaluationInterval": "2s", "minSamples": 500},
        "alerts": {"for": "10s"},
        "prometheus": {"serviceMonitor": {"interval": "2s"}},
    }
}


def get(kube: Cluster, kind: str, name: str) -> dict:
    return json.loads(kube.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json"))


def create(kube: Cluster, reference_csv: Path, say_cmd) -> None:
    """``say_cmd(display, output)`` shows each command as a person would type it."""
    out = kube.kubectl("create", "namespace", NAMESPACE)
    say_cmd(f"kubectl create namespace {NAMESPACE}", out)
    wait_for_default_service_account(kube.kubeconfig, NAMESPACE, timeout=30)
    out = kube.kubectl("apply", "-f", str(REPO / MODEL_MANIFEST))
    say_cmd(f"kubectl apply -f {MODEL_MANIFEST}", out)
    ref = reference_csv.resolve().relative_to(REPO) if reference_csv.resolve().is_relative_to(REPO) else reference_csv  # fmt: skip
    out = kube.kubectl(
        "create", "configmap", "fraud-reference", "-n", NAMESPACE,
        f"--from-file=reference.csv={reference_csv}",
    )  # fmt: skip
    say_cmd(
        f"kubectl create configmap fraud-reference -n {NAMESPACE} --from-file=reference.csv={ref}",
        out,
    )
    out = kube.kubectl("apply", "-f", str(REPO / MONITOR_MANIFEST))
    say_cmd(f"kubectl apply -f {MONITOR_MANIFEST}", out)
    patch = json.dumps(DEMO_TIMINGS, separators=(",", ":"))
    out = kube.kubectl("patch", "mm", NAME, "-n", NAMESPACE, "--type=merge", "-p", patch)
    say_cmd(f"kubectl patch mm {NAME} -n {NAMESPACE} --type=merge -p '{patch}'", out)


def wait_configured(
    kube: Cluster, timeout: float = 90, namespace: str = NAMESPACE, name: str = NAME
) -> dict:
    """Until the operator reconciled the latest spec and reports Ready."""

    def get_mm() -> dict:
        return json.loads(kube.kubectl("get", "mm", name, "-n", namespace, "-o", "json"))

    def done() -> bool:
        mm = get_mm()
        st = mm.get("status") or {}
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", [])
        )
        return ready and st.get("observedGeneration") == mm["metadata"]["generation"]

    wait_until(done, timeout=timeout, what=f"ModelMonitor {namespace}/{name} Ready", interval=0.5)
    return get_mm()


def start_worker(kube: Cluster, workdir: Path) -> WorkerProcess:
    return PodRunner(kube.kubeconfig, NAMESPACE, WORKER, workdir).start()


def wire_prometheus(
    kube: Cluster,
    prom: Prometheus,
    worker: WorkerProcess,
    namespace: str = NAMESPACE,
    service: str = WORKER,
    workdir: Path | None = None,
) -> list[dict]:
    """Scrape the worker as the Prometheus Operator would from the ServiceMonitor (job = the
    Service's name, namespace label; https with its CA and server name when it says so) and
    load the PrometheusRule's groups. Returns the rules."""

    def get_ns(kind: str, name: str) -> dict:
        return json.loads(kube.kubectl("get", kind, name, "-n", namespace, "-o", "json"))

    endpoint = get_ns("servicemonitor", service)["spec"]["endpoints"][0]
    job = {
        "job_name": f"serviceMonitor/{namespace}/{service}/0",
        "scrape_interval": endpoint.get("interval", "2s"),
        "metrics_path": endpoint.get("path", "/metrics"),
        "static_configs": [
            {
                "targets": [f"127.0.0.1:{worker.port}"],
                "labels": {
                    "namespace": namespace,
                    "job": service,
                    "service": service,
                    "endpoint": endpoint.get("port", "http"),
                    "pod": f"{service}-local",
                },
            }
        ],
    }
    tls = endpoint.get("tlsConfig")
    if endpoint.get("scheme") == "https" and tls and workdir is not None:
        ca = tls["ca"]["configMap"]
        ca_file = workdir / "scrape-ca.crt"
        ca_file.write_text(get_ns("configmap", ca["name"])["data"][ca["key"]])
        job["scheme"] = "https"
        job["tls_config"] = {"ca_file": str(ca_file), "server_name": tls["serverName"]}
    prom.scrape_configs = [job]
    groups = get_ns("prometheusrule", service)["spec"]["groups"]
    prom.set_rule_groups(groups)
    prom.wait_for(
        lambda: any(t["health"] == "up" for t in prom.targets()),
        timeout=30,
        what="Prometheus scraping the worker",
    )
    return [r for g in groups for r in g["rules"] if "alert" in r]
