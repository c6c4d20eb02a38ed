"""The cluster side of monitoring that the Prometheus Operator and kube-prometheus-stack
provide on a real cluster, built here from their Go modules (``build-monitoring.sh``):

- :func:`generate_alertmanager_config`: alertmanager.yaml as the Prometheus Operator generates
  it from the AlertmanagerConfig objects of some namespaces (its own ``pkg/alertmanager``
  conversion, reading the objects and their Secrets from the API server);
- :class:`KubeStateMetrics`: kube-state-metrics watching the local control plane, so rules
  join real ``kube_pod_owner`` / ``kube_replicaset_owner`` series of real objects."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

import yaml

from .processes import Process, free_port, wait_until
from .tools import REPO

BUILD_SCRIPT = REPO / "devcluster" / "build-monitoring.sh"
#: Debian 12's prometheus-alertmanager, which the tests run (the conversion drops what an
#: older Alertmanager does not understand, as the operator does for its spec.version).
ALERTMANAGER_VERSION = "0.25.0"


def _binaries() -> dict[str, Path]:
    override = os.environ.get("MM_MONITORING_BIN")
    if override:
        return {name: Path(override) / name for name in ("amconfig", "kube-state-metrics")}
    out = subprocess.run(
        [str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.split()
    return {Path(p).name: Path(p) for p in out}


def generate_alertmanager_config(
    kubeconfig: Path,
    namespaces: list[str],
    base: dict,
    workdir: Path,
    *,
    selector: str = "",
) -> dict:
    """The alertmanager.yaml the Prometheus Operator would write for an Alertmanager whose
    ``alertmanagerConfigSelector`` is ``selector`` and whose namespace selector picks
    ``namespaces``, on top of ``base`` (its own config Secret). Raises with the tool's
    message when the objects cannot be converted."""
    workdir.mkdir(parents=True, exist_ok=True)
    base_file, out_file = workdir / "base.yaml", workdir / "alertmanager.yaml"
    base_file.write_text(yaml.safe_dump(base))
    r = subprocess.run(
        [
            str(_binaries()["amconfig"]),
            f"-kubeconfig={kubeconfig}",
            f"-namespaces={','.join(namespaces)}",
            f"-selector={selector}",
            f"-base={base_file}",
            f"-alertmanager-version={ALERTMANAGER_VERSION}",
            f"-out={out_file}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if r.returncode != 0:
        raise RuntimeError(f"amconfig failed: {r.stderr.strip()}")
    if r.stderr.strip():
        (workdir / "amconfig.stderr").write_text(r.stderr)
    return yaml.safe_load(out_file.read_text())


class KubeStateMetrics:
    """kube-state-metrics on a free loopback port, reading the API server of ``kubeconfig``."""

    RESOURCES = ("pods", "replicasets", "deployments", "statefulsets")

    def __init__(self, kubeconfig: Path, workdir: Path, namespaces: list[str]) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.namespaces = namespaces
        self.port = free_port()
        self.telemetry_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    def start(self) -> KubeStateMetrics:
        self.process = Process(
            "kube-state-metrics",
            [
                str(_binaries()["kube-state-metrics"]),
                f"--kubeconfig={self.kubeconfig}",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--telemetry-host=127.0.0.1",
                f"--telemetry-port={self.telemetry_port}",
                f"--resources={','.join(self.RESOURCES)}",
                f"--namespaces={','.join(self.namespaces)}",
            ],
            self.workdir / "kube-state-metrics.log",
        ).start()
        try:
            wait_until(
                lambda: urllib.request.urlopen(f"{self.url}/healthz", timeout=2).status == 200,
                timeout=60,
                what="kube-state-metrics /healthz",
                process=self.process,
            )
        except BaseException:
            self.stop()  # a context manager's __exit__ does not run when __enter__ raises
            raise
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def __enter__(self) -> KubeStateMetrics:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
