"""What the operator reads from the cluster, interpreted: target found or not, worker
availability, missing prerequisites; and when a refresh must reconcile again."""

from __future__ import annotations

from typing import Any

import pytest

from mm_operator.conditions import Reason
from mm_operator.kube import NotFound
from mm_operator.observe import check_prerequisites, observe_target, observe_worker
from mm_operator.reconcile import needs_reconcile
from mm_operator.spec import parse_monitor


class Objects:
    """The few reads observe makes, answered from a dict of objects as the API server would
    (the real client is tested in test_kube_retries.py and the cluster suites)."""

    def __init__(self, objects: dict[tuple[str, str, str], dict], apis: set[str] = frozenset()):
        self.objects, self.apis = objects, apis

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.objects[(kind, namespace, name)]
        except KeyError:
            raise NotFound(f"{kind} {namespace}/{name}") from None

    def get_or_none(self, *args: str) -> dict | None:
        try:
            return self.get(*args)
        except NotFound:
            return None

    def has_api(self, group_version: str, kind: str) -> bool:
        return f"{group_version}/{kind}" in self.apis


def monitor(kind="Deployment", reference=None):
    spec: dict[str, Any] = {
        "model": {"task": "regression", "targetRef": {"kind": kind, "name": "model"}}
    }
    if reference:
        spec["data"] = {"reference": reference}
    return parse_monitor({"metadata": {"name": "m", "namespace": "ns"}, "spec": spec})


def test_a_deployment_target_gives_its_pod_labels():
    dep = {"spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "model"}}}},
           "status": {"readyReplicas": 1}}  # fmt: skip
    t = observe_target(Objects({("Deployment", "ns", "model"): dep}), monitor())  # type: ignore[arg-type]
    assert (t.found, t.reason, t.pod_labels) == (True, Reason.FOUND, {"app": "model"})
    assert "ready" in t.message and "not ready" not in t.message
    missing = observe_target(Objects({}), monitor())  # type: ignore[arg-type]
    assert (missing.found, missing.reason) == (False, Reason.NOT_FOUND)
    assert "spec.model.targetRef" in missing.message


def test_an_inference_service_needs_kserve_installed():
    t = observe_target(Objects({}), monitor("InferenceService"))  # type: ignore[arg-type]
    assert (t.found, t.reason) == (False, Reason.KIND_NOT_INSTALLED)
    isvc = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    kube = Objects(
        {("InferenceService", "ns", "model"): isvc}, {"serving.kserve.io/v1beta1/InferenceService"}
    )
    t = observe_target(kube, monitor("InferenceService"))  # type: ignore[arg-type]
    # Only the predictor's pods (KServe's components/predictor.go labels): not the
    # transformer's or explainer's, which carry the same inferenceservice label.
    assert t.found and t.pod_labels == {
        "serving.kserve.io/inferenceservice": "model",
        "component": "predictor",
    }


@pytest.mark.parametrize(
    ("spec", "status", "reason", "available"),
    [
        ({"replicas": 1}, {"availableReplicas": 1}, Reason.AVAILABLE, True),
        ({"replicas": 1}, {}, Reason.PROGRESSING, False),
        ({"replicas": 0}, {}, Reason.PAUSED, False),
        ({"replicas": 1}, {"conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}]}, "FailedCreate", False),
    ],
)  # fmt: skip
def test_worker_availability(spec, status, reason, available):
    kube = Objects({("Deployment", "ns", "mm-m"): {"spec": spec, "status": status}})
    w = observe_worker(kube, monitor())  # type: ignore[arg-type]
    assert w.reason == reason
    assert (w.desired > 0 and w.available >= w.desired) is available
    assert observe_worker(Objects({}), monitor()).reason == Reason.NOT_CREATED  # type: ignore[arg-type]


def test_missing_reference_config_map_or_key_names_the_field():
    ref = {"configMapKeyRef": {"name": "ref", "key": "ref.csv"}}
    (p,) = check_prerequisites(Objects({}), monitor(reference=ref))  # type: ignore[arg-type]
    assert (p.reason, p.field) == (
        Reason.REFERENCE_NOT_FOUND,
        "spec.data.reference.configMapKeyRef.name",
    )
    kube = Objects({("ConfigMap", "ns", "ref"): {"data": {"other.csv": "x"}}})
    (p,) = check_prerequisites(kube, monitor(reference=ref))  # type: ignore[arg-type]
    assert p.field == "spec.data.reference.configMapKeyRef.key"
    kube = Objects({("ConfigMap", "ns", "ref"): {"binaryData": {"ref.csv": "eA=="}}})
    assert check_prerequisites(kube, monitor(reference=ref)) == []  # type: ignore[arg-type]


def _status(generation, ready_reason, target="True"):
    return {
        "observedGeneration": generation,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": ready_reason},
            {"type": "TargetFound", "status": target, "reason": "x"},
        ],
    }


def test_a_refresh_reconciles_only_when_the_last_reconcile_did_not_finish():
    assert not needs_reconcile(_status(3, Reason.RECONCILED), 3)
    assert not needs_reconcile(_status(3, Reason.WAITING), 3)
    assert needs_reconcile(_status(2, Reason.RECONCILED), 3)  # spec changed since
    for reason in (Reason.APPLY_FAILED, Reason.REFERENCE_NOT_FOUND, Reason.INVALID_SPEC):
        assert needs_reconcile(_status(3, reason), 3)
    assert needs_reconcile(_status(3, Reason.RECONCILED, target="False"), 3)
    assert needs_reconcile({}, 1)  # never reconciled


@pytest.mark.parametrize(
    ("kind", "obj", "gpu"),
    [
        ("Deployment", {"spec": {"template": {"spec": {"containers": [
            {"name": "m", "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "2"}}}]}}}}, True),
        ("StatefulSet", {"spec": {"template": {"spec": {"containers": [
            {"name": "m", "resources": {"requests": {"nvidia.com/mig-1g.10gb": "1"}}}]}}}}, True),
        ("Deployment", {"spec": {"template": {"spec": {"containers": [
            {"name": "m", "resources": {"limits": {"cpu": "2", "amd.com/gpu": "1"}}}]}}}}, False),
        ("Deployment", {"spec": {"template": {"spec": {"containers": [{"name": "m"}]}}}}, False),
        ("InferenceService", {"spec": {"predictor": {"model": {
            "modelFormat": {"name": "sklearn"}, "resources": {"limits": {"nvidia.com/gpu": "1"}}}}}}, True),
        ("InferenceService", {"spec": {"predictor": {"containers": [
            {"name": "kserve-container", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]}}}, True),
        ("InferenceService", {"spec": {"predictor": {"sklearn": {"storageUri": "gs://m"}}}}, False),
    ],
)  # fmt: skip
def test_gpu_requests_of_the_target_are_seen(kind, obj, gpu):
    """DCGM rules follow what the target's pods request (nvidia.com/*), by kind."""
    kube = Objects(
        {(kind, "ns", "model"): obj}, apis={"serving.kserve.io/v1beta1/InferenceService"}
    )
    assert observe_target(kube, monitor(kind)).gpu is gpu


def test_an_issuer_needs_cert_manager_installed():
    spec = {"model": {"task": "regression", "targetRef": {"name": "model"}},
            "worker": {"tls": {"enabled": True, "issuerRef": {"name": "ca"}}}}  # fmt: skip
    m = parse_monitor({"metadata": {"name": "m", "namespace": "ns"}, "spec": spec})
    (problem,) = check_prerequisites(Objects({}), m)  # type: ignore[arg-type]
    assert (problem.reason, problem.field) == (
        Reason.CERT_MANAGER_MISSING,
        "spec.worker.tls.issuerRef",
    )
    assert "cert-manager.io/v1" in problem.message
    installed = Objects({}, {"cert-manager.io/v1/Certificate"})
    assert check_prerequisites(installed, m) == []  # type: ignore[arg-type]
