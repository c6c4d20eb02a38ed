"""The operator's prerequisites on the test cluster: the CRD, and a ServiceAccount bound to
exactly the RBAC rules the chart grants (helm/model-monitor/files/operator-rbac-rules.yaml),
under which tests run the operator (devcluster.operator.OperatorProcess)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from devcluster.operator import OperatorProcess
from devcluster.processes import wait_until
from devcluster.tools import REPO, kubectl

__all__ = ["OperatorProcess", "get_json", "grant_operator_rbac", "install_crd"]

CRD = REPO / "crds" / "modelmonitor.io_modelmonitors.yaml"
RBAC_RULES = REPO / "helm" / "model-monitor" / "files" / "operator-rbac-rules.yaml"
OPERATOR_NAMESPACE = "model-monitor-system"
OPERATOR_SA = "model-monitor-operator"
OPERATOR_POD_LABELS = "app.kubernetes.io/name=model-monitor,app.kubernetes.io/component=operator"


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


def get_json(kubeconfig: Path, *args: str) -> dict:
    return json.loads(kubectl(kubeconfig, "get", *args, "-o", "json"))
