"""Step 2: ``helm install`` the chart, then run the operator as a local process.

The chart's operator pod is scheduled on a kwok node and reported Ready, but no image can run
here. So the demo starts ``model-monitor-operator`` itself, from the command and environment in
the chart's Deployment, authenticated as the chart-created ServiceAccount (a bound token): it
has exactly the RBAC the chart grants, like the pod would."""

from __future__ import annotations

import json
from pathlib import Path

from devcluster.controlplane import service_account_kubeconfig
from devcluster.operator import OperatorProcess
from devcluster.tools import Cluster

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
    kube: Cluster, values: list[str], extra: tuple[str, ...] = ()
) -> tuple[list[str], str]:
    """Install the release; returns the command as a person would type it, and its output.
    ``extra``: more helm options (``--set-json ...``)."""
    args = ["install", RELEASE, CHART, "--namespace", NAMESPACE, "--create-namespace"]
    for v in values:
        args += ["--set", v]
    args += [*extra, "--wait", "--timeout", "120s"]
    return ["helm", *args], kube.helm(*args)


def operator_process(kube: Cluster, workdir: Path) -> tuple[OperatorProcess, str]:
    """The chart's operator Deployment as a local process (not started yet), under its
    ServiceAccount's bound token; and that ServiceAccount's name."""
    dep = json.loads(kube.kubectl("get", "deployment", RELEASE, "-n", NAMESPACE, "-o", "json"))
    service_account = dep["spec"]["template"]["spec"]["serviceAccountName"]
    kubeconfig = service_account_kubeconfig(
        kube.kubeconfig, NAMESPACE, service_account, workdir / "operator-kubeconfig"
    )
    return OperatorProcess.from_deployment(dep, kubeconfig, workdir), service_account
