"""What tests need around a container of ours: the pod specs exactly as the operator and the
chart render them, what a kubelet would add to them, an HTTP client for a container's port, and
the check that a container wrote nothing outside its volumes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from devcluster.controlplane import ControlPlane
from devcluster.podman import PodmanContainer
from devcluster.processes import wait_until
from devcluster.worker import WorkerProcess
from mm_operator.render import ClusterFacts, render_children
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "examples" / "reference.csv"
# Written by the container runtime itself, not by the program in the container.
RUNTIME_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv")
# Messages a Python program prints when it meets a read-only or foreign-owned filesystem.
WRITE_FAILURES = ("Read-only file system", "Errno 30", "PermissionError", "Permission denied")


def repo_and_tag(ref: str) -> tuple[str, str]:
    repo, _, tag = ref.rpartition(":")
    return repo, tag


# -- pod specs, rendered ---------------------------------------------------------------------


def fraud_monitor(name: str = "fraud", namespace: str = "ml", **spec: Any) -> dict[str, Any]:
    """examples/fraud-monitor.yaml as a ModelMonitor object, with ``spec`` merged in."""
    body = yaml.safe_load((REPO / "examples" / "fraud-monitor.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": namespace, "uid": "uid-1", "generation": 1}
    body["spec"].update(spec)
    return dict(body)


def rendered_worker(image: str, monitor: dict[str, Any]) -> tuple[dict, dict[str, dict]]:
    """The worker Deployment's pod spec as the operator renders it for ``monitor``, and the
    files of its configMap and secret volumes (the rendered ConfigMap, the reference, a token)."""
    children = render_children(parse_monitor(monitor), Settings(worker_image=image), ClusterFacts())
    by_kind = {o["kind"]: o for o in children.objects}
    pod_spec = by_kind["Deployment"]["spec"]["template"]["spec"]
    files = {
        "config": dict(by_kind["ConfigMap"]["data"]),
        "reference": {"reference.csv": REFERENCE.read_text()},
        "token": {"token": "token-of-the-test"},
    }
    return pod_spec, files


# -- what a kubelet adds -----------------------------------------------------------------------


def service_account_files(cp: ControlPlane, namespace: str, account: str) -> dict[str, str | bytes]:
    """The kube-api-access volume's files: a bound token, the cluster's CA, the namespace."""
    token = cp.kubectl("create", "token", account, "-n", namespace).strip()
    cluster = yaml.safe_load(cp.kubeconfig.read_text())["clusters"][0]["cluster"]
    return {
        "token": token,
        "ca.crt": base64.b64decode(cluster["certificate-authority-data"]),
        "namespace": namespace,
    }


def kubelet_env(cp: ControlPlane) -> dict[str, str]:
    """The kubernetes Service variables a kubelet gives every container; for a container on
    the machine's network, the API server's own loopback address."""
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(cp.api_port)}


# -- talking to it, checking it ------------------------------------------------------------------


def probe_target(container: dict[str, Any], probe: str) -> tuple[str, int]:
    """(path, containerPort) of an httpGet probe; a named port is looked up in ``ports``."""
    get = container[probe]["httpGet"]
    port = get["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
    return get["path"], int(port)


def client(url_port: int, token: str | None = None) -> WorkerProcess:
    """The worker's HTTP client (``WorkerProcess`` minus the process) for a local port."""
    c = WorkerProcess(Path("/nonexistent"), argv=[], port=url_port)
    c.token = token
    return c


def wait_http_ok(c: WorkerProcess, path: str, what: str, container: PodmanContainer) -> None:
    def ok() -> bool:
        if not container.running():
            raise AssertionError(f"{what}: the container exited\n{container.logs()[-4000:]}")
        return c.get(path)[0] == 200

    wait_until(ok, timeout=90, what=what, interval=0.25)


def writes_outside_volumes(container: PodmanContainer) -> list[tuple[str, str]]:
    """Changes in the container's own root filesystem (``podman diff``) other than the mount
    points of its volumes and the files the runtime writes. Run with a writable root this
    lists every file the program wrote where a read-only root would have refused it."""
    allowed: set[str] = {str(p) for f in RUNTIME_FILES for p in (Path(f), *Path(f).parents)}
    for mount in container.container.get("volumeMounts", []):
        path = Path(mount["mountPath"])
        candidates = [path]
        if path.is_relative_to("/var/run"):  # a link to /run in the image: podman resolves it
            candidates.append(Path("/run") / path.relative_to("/var/run"))
        for c in candidates:
            allowed.update(str(p) for p in (c, *c.parents))
    return [(kind, path) for kind, path in container.diff() if path not in allowed]


def write_failures(log: str) -> list[str]:
    return [line for line in log.splitlines() if any(m in line for m in WRITE_FAILURES)]


def metric_value(text: str, name: str) -> float:
    """The sum of the samples of metric ``name`` in a Prometheus text exposition."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    if not seen:
        raise AssertionError(f"no {name} in the metrics")
    return total
