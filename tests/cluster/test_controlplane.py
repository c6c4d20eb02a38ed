"""The local control plane is real: scheduling, garbage collection, validation, admission,
RBAC, and the official Prometheus Operator schemas all behave as on a real cluster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from devcluster.controlplane import service_account_kubeconfig
from devcluster.processes import wait_until

pytestmark = pytest.mark.cluster


def _apply(cluster, obj: dict, ns: str | None = None, check: bool = True):
    args = ["apply", "-f", "-"] + (["-n", ns] if ns else [])
    if check:
        return cluster.kubectl(*args, input=yaml.safe_dump(obj))
    return subprocess.run(
        [*_kubectl_cmd(cluster), *args], input=yaml.safe_dump(obj), capture_output=True, text=True
    )


def _kubectl_cmd(cluster) -> list[str]:
    from devcluster.tools import kubectl_binary

    return [kubectl_binary(), f"--kubeconfig={cluster.kubeconfig}"]


def _deployment(name: str, replicas: int) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
            },
        },
    }


def test_deployment_gets_ready_pods(cluster, namespace):
    _apply(cluster, _deployment("web", 2), namespace)

    def two_ready() -> bool:
        d = json.loads(cluster.kubectl("get", "deployment", "web", "-n", namespace, "-o", "json"))
        return d.get("status", {}).get("readyReplicas") == 2

    wait_until(two_ready, timeout=60, what="2 ready replicas")
    pods = json.loads(
        cluster.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json")
    )
    assert len(pods["items"]) == 2
    for pod in pods["items"]:
        assert pod["spec"]["nodeName"].startswith("kwok-node-"), "scheduled onto a kwok node"
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"


def test_gpu_node_is_tainted_and_only_tolerating_pods_land_there(cluster, namespace):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gpu-job"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "example.invalid/gpu:1",
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
    }
    _apply(cluster, pod, namespace)
    wait_until(
        lambda: (
            cluster.kubectl(
                "get", "pod", "gpu-job", "-n", namespace, "-o", "jsonpath={.spec.nodeName}"
            )
            == "kwok-gpu-0"
        ),
        timeout=60,
        what="the GPU pod bound to the GPU node",
    )
    # Without the toleration the same request stays Pending: the taint is real.
    pod["metadata"]["name"] = "gpu-untolerated"
    del pod["spec"]["tolerations"]
    _apply(cluster, pod, namespace)

    def unschedulable() -> bool:
        p = json.loads(
            cluster.kubectl("get", "pod", "gpu-untolerated", "-n", namespace, "-o", "json")
        )
        conds = {c["type"]: c for c in p["status"].get("conditions", [])}
        return conds.get("PodScheduled", {}).get("reason") == "Unschedulable"

    wait_until(unschedulable, timeout=60, what="untolerated GPU pod Unschedulable")


def test_garbage_collector_deletes_owned_objects(cluster, namespace):
    _apply(
        cluster, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, namespace
    )
    uid = cluster.kubectl(
        "get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    )
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ],
        },
    }
    _apply(cluster, child, namespace)
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_until(
        lambda: cluster.kubectl("get", "configmap", "child", "-n", namespace, check=False) == "",
        timeout=60,
        what="the child to be garbage-collected",
    )


def test_invalid_object_is_rejected(cluster, namespace):
    bad = _deployment("bad", 1)
    bad["spec"]["replicas"] = "two"
    r = _apply(cluster, bad, namespace, check=False)
    assert r.returncode != 0
    assert "replicas" in r.stderr


def test_restricted_namespace_rejects_privileged_pod(cluster, namespace):
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "priv"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "example.invalid/x:1",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    r = _apply(cluster, pod, namespace, check=False)
    assert r.returncode != 0
    assert "violates PodSecurity" in r.stderr and "restricted" in r.stderr


def test_servicemonitor_schema_rejects_wrong_type(cluster, namespace):
    sm = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "sm"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "endpoints": [{"port": "http"}]},
    }
    _apply(cluster, sm, namespace)  # the valid one is accepted
    sm["spec"]["endpoints"] = [{"port": 8080}]  # port is a string (a port name) in the schema
    r = _apply(cluster, sm, namespace, check=False)
    assert r.returncode != 0
    assert "spec.endpoints[0].port" in r.stderr


def test_service_account_kubeconfig_is_limited_to_its_role(cluster, namespace, tmp_path: Path):
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl(
        "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps", "-n", namespace
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=cm-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    kc = service_account_kubeconfig(
        cluster.kubeconfig, namespace, "reader", tmp_path / "sa.kubeconfig"
    )
    from devcluster.tools import kubectl

    assert "kube-root-ca.crt" in kubectl(kc, "get", "configmaps", "-n", namespace)
    with pytest.raises(subprocess.CalledProcessError) as denied:
        kubectl(kc, "get", "secrets", "-n", namespace)
    assert "Forbidden" in denied.value.stderr
    assert f"system:serviceaccount:{namespace}:reader" in denied.value.stderr


def test_nodes_heartbeat_through_leases(cluster):
    """kwok renews node Leases like kubelets, so nodes never flap NotReady (which would mark
    every pod NotReady about once a minute)."""
    import time

    def renewals() -> dict[str, str]:
        leases = json.loads(cluster.kubectl("get", "leases", "-n", "kube-node-lease", "-o", "json"))
        return {item["metadata"]["name"]: item["spec"]["renewTime"] for item in leases["items"]}

    first = renewals()
    assert {"kwok-node-0", "kwok-node-1", "kwok-gpu-0"} <= set(first)
    time.sleep(12)
    second = renewals()
    assert all(second[n] != first[n] for n in ("kwok-node-0", "kwok-node-1", "kwok-gpu-0"))
