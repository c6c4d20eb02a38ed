"""The operator on the real control plane, under exactly the chart's RBAC: children, owner
references, status, GPU placement, restricted Pod Security, updates, deletion, missing
targets and references, restarts."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from devcluster.processes import wait_until
from devcluster.tools import kubectl
from tests.support.operator import get_json

pytestmark = pytest.mark.cluster

REFERENCE_CSV = "amount,country,prediction,label,score\n" + "\n".join(
    f"{10 + i % 17},{'DE' if i % 3 else 'FR'},{i % 2},{(i // 2) % 2},{(i % 10) / 10}"
    for i in range(60)
)


def monitor(name: str, **spec_overrides) -> dict:
    spec = {
        "model": {"task": "binary-classification", "targetRef": {"name": "fraud-detector"}},
        "data": {
            "reference": {"configMapKeyRef": {"name": "fraud-reference", "key": "reference.csv"}}
        },
        "quality": {"thresholds": [{"metric": "accuracy", "min": 0.9}]},
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "modelmonitor.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": name},
        "spec": spec,
    }


def target_deployment(name: str = "fraud-detector") -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "model", "image": "example.invalid/model:1"}]},
            },
        },
    }


def reference_configmap() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "fraud-reference"},
        "data": {"reference.csv": REFERENCE_CSV},
    }


def apply(cluster, ns: str, *objects: dict) -> str:
    return cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(objects))


def status(cluster, ns: str, name: str) -> dict:
    return get_json(cluster.kubeconfig, "modelmonitor", name, "-n", ns).get("status") or {}


def condition(st: dict, type_: str) -> dict:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


def wait_status(cluster, ns, name, check, what, timeout=30):
    last = {}

    def ok():
        nonlocal last
        last = status(cluster, ns, name)
        return check(last)

    try:
        wait_until(ok, timeout=timeout, what=what, interval=0.2)
    except Exception as e:
        raise AssertionError(f"{e}\nlast status: {json.dumps(last, indent=1)}") from None
    return last


CHILDREN = [
    ("configmap", "mm-fraud-config"),
    ("secret", "mm-fraud-token"),
    ("deployment", "mm-fraud"),
    ("service", "mm-fraud"),
    ("servicemonitor", "mm-fraud"),
    ("prometheusrule", "mm-fraud"),
]


def test_children_owned_and_status_ready(cluster, operator, namespace):
    apply(cluster, namespace, reference_configmap(), target_deployment(), monitor("fraud"))
    st = wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "Ready").get("status") == "True",
        "Ready=True",
    )  # fmt: skip
    uid = get_json(cluster.kubeconfig, "modelmonitor", "fraud", "-n", namespace)["metadata"]["uid"]
    for kind, name in CHILDREN:
        obj = get_json(cluster.kubeconfig, kind, name, "-n", namespace)
        owners = obj["metadata"]["ownerReferences"]
        assert [(o["kind"], o["uid"], o.get("controller")) for o in owners] == [
            ("ModelMonitor", uid, True)
        ], kind
    assert st["observedGeneration"] == 1
    assert st["model"] == "fraud"
    assert condition(st, "TargetFound")["status"] == "True"
    assert condition(st, "WorkerAvailable")["status"] == "True"
    assert condition(st, "MonitoringConfigured")["reason"] == "PrometheusOperator"
    for c in st["conditions"]:
        assert set(c) >= {"type", "status", "reason", "message", "lastTransitionTime"}

    # The worker's config is the worker's schema, rendered from the spec.
    cm = get_json(cluster.kubeconfig, "configmap", "mm-fraud-config", "-n", namespace)
    from mm_api.worker_config import parse_config

    config = parse_config(yaml.safe_load(cm["data"]["config.yaml"]))
    assert config.quality.thresholds[0].metric == "accuracy"
    assert config.data.reference.path == "/etc/model-monitor/reference/reference.csv"

    # The token never shows in status or events.
    token = get_json(cluster.kubeconfig, "secret", "mm-fraud-token", "-n", namespace)["data"][
        "token"
    ]
    import base64

    plain = base64.b64decode(token).decode()
    assert plain not in json.dumps(st)
    assert plain not in cluster.kubectl("get", "events", "-n", namespace, "-o", "json")

    # kubectl get mm shows the printer columns.
    table = cluster.kubectl("get", "mm", "-n", namespace)
    header = table.splitlines()[0].split()
    assert header == ["NAME", "MODEL", "HEALTH", "QUALITY", "DRIFT", "ALERTS", "AGE"]
    assert "fraud" in table.splitlines()[1]


def test_worker_pod_spec_is_restricted_and_has_no_gpu_fields(cluster, operator, namespace):
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    apply(cluster, namespace, reference_configmap(), target_deployment(), monitor("fraud"))
    # Pods are admitted by the real PodSecurity admission (a violation fails ReplicaSet creation).
    wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "WorkerAvailable").get("status") == "True",
        "worker pods admitted and available in a restricted namespace",
    )  # fmt: skip
    dep = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)
    text = json.dumps(dep["spec"])
    assert "nvidia.com" not in text and "tolerations" not in text and "nodeSelector" not in text
    pod_spec = dep["spec"]["template"]["spec"]
    # Colocation: preferred affinity to the model's pods.
    term = pod_spec["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == {"app": "fraud-detector"}


def test_gpu_worker_lands_on_gpu_node(cluster, operator, namespace):
    apply(
        cluster, namespace, reference_configmap(), target_deployment(),
        monitor("fraud", worker={"gpu": {"count": 1, "nodeSelector": {"nvidia.com/gpu.present": "true"}}}),
    )  # fmt: skip
    wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "WorkerAvailable").get("status") == "True",
        "GPU worker available",
    )  # fmt: skip
    dep = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)
    pod_spec = dep["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod_spec[
        "tolerations"
    ]
    assert pod_spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    pods = get_json(cluster.kubeconfig, "pods", "-n", namespace, "-l", "modelmonitor.io/name=fraud")
    assert [p["spec"]["nodeName"] for p in pods["items"]] == ["kwok-gpu-0"]


def test_spec_update_rolls_config_and_delete_collects_children(cluster, operator, namespace):
    apply(cluster, namespace, reference_configmap(), target_deployment(), monitor("fraud"))
    wait_status(cluster, namespace, "fraud", lambda s: s.get("observedGeneration") == 1, "gen 1")
    before = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)
    checksum = before["spec"]["template"]["metadata"]["annotations"][
        "modelmonitor.io/config-checksum"
    ]

    apply(cluster, namespace, monitor("fraud", window={"size": "30m", "minSamples": 50}))
    wait_status(cluster, namespace, "fraud", lambda s: s.get("observedGeneration") == 2, "gen 2")
    cm = get_json(cluster.kubeconfig, "configmap", "mm-fraud-config", "-n", namespace)
    assert (
        "size: 30m" in cm["data"]["config.yaml"] and "minSamples: 50" in cm["data"]["config.yaml"]
    )
    after = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)
    assert (
        after["spec"]["template"]["metadata"]["annotations"]["modelmonitor.io/config-checksum"]
        != checksum
    )

    # Turning the ServiceMonitor off removes it.
    apply(cluster, namespace, monitor("fraud", prometheus={"serviceMonitor": {"enabled": False}}))
    wait_until(
        lambda: cluster.kubectl("get", "servicemonitor", "mm-fraud", "-n", namespace, check=False) == "",
        timeout=30, what="ServiceMonitor removed",
    )  # fmt: skip

    cluster.kubectl("delete", "modelmonitor", "fraud", "-n", namespace)
    for kind, name in CHILDREN:
        wait_until(
            lambda k=kind, n=name: cluster.kubectl("get", k, n, "-n", namespace, check=False) == "",
            timeout=60, what=f"{kind}/{name} garbage-collected",
        )  # fmt: skip


def test_worker_deployment_edited_or_deleted_is_put_back(cluster, operator, namespace):
    """Status-only events of the worker Deployment do not re-apply; a spec edit or a deletion
    does, and what the operator owns comes back."""
    apply(cluster, namespace, reference_configmap(), target_deployment(), monitor("fraud"))
    wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "WorkerAvailable").get("status") == "True", "worker available",
    )  # fmt: skip

    cluster.kubectl("scale", "deployment", "mm-fraud", "-n", namespace, "--replicas=3")
    wait_until(
        lambda: get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)["spec"][
            "replicas"
        ]
        == 1,
        timeout=30, what="worker replicas put back to 1",
    )  # fmt: skip

    uid = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)["metadata"]["uid"]
    cluster.kubectl("delete", "deployment", "mm-fraud", "-n", namespace, "--wait=true")

    def recreated() -> bool:
        out = cluster.kubectl(
            "get", "deployment", "mm-fraud", "-n", namespace, "-o", "json", check=False
        )
        return bool(out) and json.loads(out)["metadata"]["uid"] != uid

    wait_until(recreated, timeout=30, what="worker Deployment recreated")
    wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "WorkerAvailable").get("status") == "True", "worker available again",
    )  # fmt: skip


def test_missing_target_then_appears(cluster, operator, namespace):
    apply(cluster, namespace, reference_configmap(), monitor("fraud"))
    st = wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "TargetFound").get("status") == "False",
        "TargetFound=False",
    )  # fmt: skip
    assert st["health"] == "Unknown"
    assert "fraud-detector does not exist" in condition(st, "TargetFound")["message"]
    # Children are prepared anyway, so the worker is ready when the model arrives.
    assert get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)

    apply(cluster, namespace, target_deployment())
    wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "TargetFound").get("status") == "True"
        and condition(s, "Ready").get("status") == "True",
        "recovered without an operator restart",
    )  # fmt: skip
    events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                             "involvedObject.name=fraud", "-o", "json")  # fmt: skip
    reasons = [e["reason"] for e in json.loads(events)["items"]]
    assert "NotFound" in reasons and "Found" in reasons


def test_missing_reference_blocks_children_until_it_exists(cluster, operator, namespace):
    apply(cluster, namespace, target_deployment(), monitor("fraud"))
    st = wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "Ready").get("reason") == "ReferenceNotFound",
        "Ready=False ReferenceNotFound",
    )  # fmt: skip
    assert "spec.data.reference.configMapKeyRef.name" in condition(st, "Ready")["message"]
    # No half-made garbage: nothing was created.
    for kind, name in CHILDREN:
        assert cluster.kubectl("get", kind, name, "-n", namespace, check=False) == "", kind
    assert "Traceback" not in operator.log()

    apply(cluster, namespace, reference_configmap())
    wait_status(
        cluster, namespace, "fraud",
        lambda s: condition(s, "Ready").get("status") == "True",
        "Ready once the reference exists",
    )  # fmt: skip


def test_operator_restart_neither_duplicates_nor_rewrites(cluster, operator, namespace):
    apply(cluster, namespace, reference_configmap(), target_deployment(), monitor("fraud"))
    wait_status(
        cluster,
        namespace,
        "fraud",
        lambda s: condition(s, "Ready").get("status") == "True",
        "Ready",
    )

    def versions() -> dict[str, str]:
        return {
            f"{k}/{n}": get_json(cluster.kubeconfig, k, n, "-n", namespace)["metadata"][
                "resourceVersion"
            ]
            for k, n in CHILDREN
        }

    before = versions()
    operator.kill()
    operator.start()
    # Let the restarted operator resume and run its timer a few times.
    import time

    time.sleep(6)
    assert versions() == before, "resume re-applied identical children without writing"
    deployments = get_json(cluster.kubeconfig, "deployments", "-n", namespace)["items"]
    assert sorted(d["metadata"]["name"] for d in deployments) == ["fraud-detector", "mm-fraud"]


def test_operator_rbac_is_limited(cluster, operator_kubeconfig, namespace):
    allowed = [("get", "deployments"), ("patch", "modelmonitors.modelmonitor.io/status")]
    denied = [("list", "secrets"), ("create", "pods"), ("delete", "namespaces"), ("get", "nodes")]
    for verb, res in allowed + denied:
        r = subprocess.run(
            [*_kubectl(operator_kubeconfig), "auth", "can-i", verb, res, "-n", namespace],
            capture_output=True, text=True,
        )  # fmt: skip
        assert r.stdout.strip() == ("yes" if (verb, res) in allowed else "no"), (verb, res)
    with pytest.raises(subprocess.CalledProcessError) as e:
        kubectl(operator_kubeconfig, "get", "secrets", "-n", namespace)
    assert "Forbidden" in e.value.stderr


def _kubectl(kubeconfig):
    from devcluster.tools import kubectl_binary

    return [kubectl_binary(), f"--kubeconfig={kubeconfig}"]


def test_reading_a_foreign_secret_under_the_chart_role_is_403(
    cluster, operator_kubeconfig, namespace
):
    """The operator's role creates, patches and deletes the Secrets it makes (tokens,
    certificates) but reads none: not a foreign one, and not its own either."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    cluster.kubectl("create", "secret", "generic", "foreign", "-n", namespace,
                    "--from-literal=password=hunter2")  # fmt: skip
    api = client.CoreV1Api(config.new_client_from_config(str(operator_kubeconfig)))
    for call in (
        lambda: api.read_namespaced_secret("foreign", namespace),
        lambda: api.list_namespaced_secret(namespace),
        lambda: api.list_secret_for_all_namespaces(),
    ):
        with pytest.raises(ApiException) as e:
            call()
        assert e.value.status == 403
    # What it may do with Secrets, it can: create one, patch it, delete it, never read it back.
    mine = client.V1Secret(metadata=client.V1ObjectMeta(name="mine"), string_data={"k": "v"})
    api.create_namespaced_secret(namespace, mine)
    api.patch_namespaced_secret("mine", namespace, {"stringData": {"k": "w"}})
    with pytest.raises(ApiException) as e:
        api.read_namespaced_secret("mine", namespace)
    assert e.value.status == 403
    api.delete_namespaced_secret("mine", namespace)
