"""Step 2: ``helm install`` the chart, then run the operator as a local process.

The chart's operator pod is scheduled on a kwok node and reported Ready, but no image can run
here. So the demo starts ``model-monitor-operator`` itself, from the command and environment in
the chart's Deployment, authenticated as the chart-created ServiceAccount (a bound token): it
has exactly the RBAC the chart grants, like the pod would."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path

from devcluster.controlplane import service_account_kubeconfig
from devcluster.processes import Process, free_port, wait_until

from .tools import Kube

RELEASE = "model-monitor"
NAMESPACE = "model-monitor-system"
CHART = "./helm/model-monitor"


def helm_values(prometheus_url: str, alertmanager_url: str) -> list[str]:
    return [
        f"operator.prometheusURL={prometheus_url}",
        f"operator.alertmanagerURL={alertmanager_url}",
        # Status every 2s instead of 15s so that `kubectl get mm` follows the demo closely.
        "operator.statusInterval=2s",
    ]


def helm_install(
    kube: Kube, values: list[str], extra: tuple[str, ...] = ()
) -> tuple[list[str], str]:
    """Install the release; returns the command as a person would type it, and its output.
    ``extra``: more helm options (``--set-json ...``)."""
    args = ["install", RELEASE, CHART, "--namespace", NAMESPACE, "--create-namespace"]
    for v in values:
        args += ["--set", v]
    args += [*extra, "--wait", "--timeout", "120s"]
    return ["helm", *args], kube.helm(*args)


class OperatorProcess:
    """The operator Deployment's container, run locally under its ServiceAccount."""

    def __init__(self, kube: Kube, workdir: Path) -> None:
        self.kube = kube
        self.workdir = workdir
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.process: Process | None = None
        self.service_account = ""

    def start(self) -> OperatorProcess:
        dep = json.loads(
            self.kube.kubectl("get", "deployment", RELEASE, "-n", NAMESPACE, "-o", "json")
        )
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        self.service_account = pod["serviceAccountName"]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        # What a pod gets from the network, a process gets on loopback with free ports.
        env |= {
            "MM_BIND_ADDRESS": "127.0.0.1",
            "MM_HEALTH_PORT": str(self.health_port),
            "MM_METRICS_PORT": str(self.metrics_port),
        }
        env["KUBECONFIG"] = str(
            service_account_kubeconfig(
                self.kube.kubeconfig, NAMESPACE, self.service_account,
                self.workdir / "operator-kubeconfig",
            )
        )  # fmt: skip
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
        exe = shutil.which(container["command"][0], path=path)
        if exe is None:
            raise FileNotFoundError(f"{container['command'][0]} is not installed in .venv")
        argv = [exe, *container["command"][1:], *container.get("args", [])]
        self.process = Process("operator", argv, self.workdir / "operator.log", env=env).start()
        wait_until(
            lambda: urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ).status == 200,
            timeout=60, what="operator /healthz", process=self.process, interval=0.2,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
