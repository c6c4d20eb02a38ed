"""Replicas, a shared store, persistence and autoscaling on the real control plane, under
the chart's RBAC: refused without a store (field named), and the rendered PodDisruptionBudget,
HorizontalPodAutoscaler, PersistentVolumeClaim and RollingUpdate strategy accepted."""

from __future__ import annotations

import subprocess
import time

import pytest

from devcluster.processes import wait_until
from tests.cluster.test_operator import (
    apply,
    condition,
    monitor,
    reference_configmap,
    target_deployment,
    wait_status,
)
from tests.support.operator import get_json

pytestmark = pytest.mark.cluster
STORE = {
    "url": "redis://valkey.ml.svc:6379/0",
    "passwordSecretRef": {"name": "valkey", "key": "pw"},
}


def test_replicas_or_autoscaling_without_a_store_are_refused_naming_the_field(
    cluster, operator_kubeconfig, namespace
):
    for worker, field in (
        ({"replicas": 3}, "spec.worker.replicas"),
        ({"autoscaling": {}}, "spec.worker.autoscaling"),
    ):
        with pytest.raises(subprocess.CalledProcessError) as e:
            apply(cluster, namespace, monitor("bad", worker=worker))
        assert field in e.value.stderr and "worker.store: replicas share" in e.value.stderr, (
            e.value.stderr
        )


def test_replicas_with_a_store_get_a_budget_a_rolling_update_and_are_put_back(
    cluster, operator, namespace
):
    apply(cluster, namespace, reference_configmap(), target_deployment(),
          monitor("fraud", worker={"replicas": 3, "store": STORE}))  # fmt: skip
    wait_until(
        lambda: get_json(cluster.kubeconfig, "pdb", "mm-fraud", "-n", namespace)["spec"]["maxUnavailable"] == 1,
        timeout=30, what="PodDisruptionBudget",
    )  # fmt: skip
    dep = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "WorkerAvailable").get("status") == "True", "3 workers available",
    )  # fmt: skip
    cluster.kubectl("scale", "deployment", "mm-fraud", "-n", namespace, "--replicas=1")
    wait_until(
        lambda: get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)["spec"]["replicas"] == 3,
        timeout=30, what="kubectl scale put back to 3",
    )  # fmt: skip
    # back to one replica without a store: the budget goes, Recreate comes back
    apply(cluster, namespace, monitor("fraud"))
    wait_until(
        lambda: cluster.kubectl("get", "pdb", "mm-fraud", "-n", namespace, check=False) == "",
        timeout=30, what="PodDisruptionBudget deleted",
    )  # fmt: skip
    assert (
        get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)["spec"]["strategy"][
            "type"
        ]
        == "Recreate"
    )


def test_autoscaling_owns_the_replica_count(cluster, operator, namespace):
    auto = {"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}
    apply(cluster, namespace, reference_configmap(), target_deployment(),
          monitor("fraud", worker={"store": STORE, "autoscaling": auto}))  # fmt: skip
    wait_until(
        lambda: get_json(cluster.kubeconfig, "hpa", "mm-fraud", "-n", namespace)["spec"]["maxReplicas"] == 5,
        timeout=30, what="HorizontalPodAutoscaler",
    )  # fmt: skip
    # What the autoscaler (here: kubectl) sets is not undone by the operator.
    cluster.kubectl("scale", "deployment", "mm-fraud", "-n", namespace, "--replicas=4")
    wait_status(
        cluster,
        namespace,
        "fraud",
        lambda s: condition(s, "Ready").get("status") == "True",
        "ready",
    )
    time.sleep(5)  # two status intervals: time to put it back, if it wrongly did
    assert (
        get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)["spec"]["replicas"]
        == 4
    )


def test_persistence_gets_a_claim_owned_by_the_monitor(cluster, operator, namespace):
    apply(cluster, namespace, reference_configmap(), target_deployment(),
          monitor("fraud", worker={"persistence": {"size": "1Gi"}}))  # fmt: skip
    wait_until(
        lambda: bool(cluster.kubectl("get", "pvc", "mm-fraud-state", "-n", namespace, check=False)),
        timeout=30, what="PersistentVolumeClaim",
    )  # fmt: skip
    pvc = get_json(cluster.kubeconfig, "pvc", "mm-fraud-state", "-n", namespace)
    assert pvc["metadata"]["ownerReferences"][0]["kind"] == "ModelMonitor"
    volumes = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)["spec"][
        "template"
    ]["spec"]["volumes"]
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "mm-fraud-state"}} in volumes
