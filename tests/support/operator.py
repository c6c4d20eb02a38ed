"""Running the operator as a real process, under a ServiceAccount bound to exactly the RBAC
rules the chart grants (helm/model-monitor/files/operator-rbac-rules.yaml)."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import yaml

from devcluster.controlplane import REPO, kubectl
from devcluster.processes import Process, free_port, wait_until

CRD = REPO / "crds" / "modelmonitor.io_modelmonitors.yaml"
RBAC_RULES = REPO / "helm" / "model-monitor" / "files" / "operator-rbac-rules.yaml"
OPERATOR_NAMESPACE = "model-monitor-system"
OPERATOR_SA = "model-monitor-operator"


def install_crd(kubeconfig: Path) -> None:
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    wait_until(
        lambda: kubectl(
            kubeconfig, "get", "crd", "modelmonitors.modelmonitor.io",
            "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}",
        ) == "True",
        timeout=60,
        what="the ModelMonitor CRD Established",
    )  # fmt: skip


def grant_operator_rbac(kubeconfig: Path) -> None:
    """Namespace, ServiceAccount, ClusterRole (exactly the chart's rules) and binding."""
    rules = yaml.safe_load(RBAC_RULES.read_text())
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "model-monitor-operator-test"},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "model-monitor-operator-test"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "model-monitor-operator-test",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE}
            ],
        },
    ]
    kubectl(kubeconfig, "apply", "-f", "-", input=yaml.safe_dump_all(objects))


class OperatorProcess:
    """``python -m mm_operator`` with the given kubeconfig and MM_* settings."""

    def __init__(self, kubeconfig: Path, workdir: Path, **settings: str) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.settings = {
            "MM_BIND_ADDRESS": "127.0.0.1",
            "MM_METRICS_PORT": str(self.metrics_port),
            "MM_HEALTH_PORT": str(self.health_port),
            "MM_STATUS_INTERVAL": "2",
            "MM_WORKER_IMAGE": "example.invalid/model-monitor:test",
            **settings,
        }
        self.process: Process | None = None
        self.starts = 0

    def start(self) -> OperatorProcess:
        env = {
            **self.settings,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "operator")]),
        }
        self.starts += 1
        self.process = Process(
            f"operator-{self.starts}",
            [sys.executable, "-m", "mm_operator"],
            self.workdir / f"operator-{self.starts}.log",
            env=env,
        ).start()
        wait_until(
            lambda: (
                urllib.request.urlopen(
                    f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
                ).status
                == 200
            ),
            timeout=60,
            what="operator /healthz",
            process=self.process,
            interval=0.2,
        )
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def reconfigure(self, **settings: str | None) -> None:
        """Restart with changed MM_* settings (None removes one)."""
        self.stop()
        for key, value in settings.items():
            if value is None:
                self.settings.pop(key, None)
            else:
                self.settings[key] = value
        self.start()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.process and self.process.popen:
            self.process.popen.kill()
            self.process.popen.wait(timeout=10)

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace") if self.process else ""

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return r.read().decode()

    def metric_value(self, name: str, labels: str = "") -> float:
        """Sum of the samples of ``name`` whose label set contains ``labels`` (e.g. 'method="GET"')."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith((name + "{", name + " ")) and labels in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


def get_json(kubeconfig: Path, *args: str) -> dict:
    return json.loads(kubectl(kubeconfig, "get", *args, "-o", "json"))
