"""What the operator reads from the cluster about one ModelMonitor: its target, its worker,
and the prerequisites its spec names. Reads only; decisions live in :mod:`status`."""

from __future__ import annotations

from dataclasses import dataclass

from .certificates import TlsRecord
from .conditions import Reason
from .kube import Kube, NotFound
from .render import Names, tls_mode
from .settings import Settings
from .spec import Monitor

TARGET_API = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "InferenceService": "serving.kserve.io/v1beta1",
}


@dataclass(frozen=True)
class TargetState:
    found: bool
    reason: str
    message: str
    pod_labels: dict[str, str] | None = None
    #: The target's pods request NVIDIA GPUs (``nvidia.com/*`` resources).
    gpu: bool = False


@dataclass(frozen=True)
class WorkerState:
    exists: bool
    desired: int = 0
    available: int = 0
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Problem:
    """A prerequisite the spec names but the cluster lacks; ``field`` is the spec path."""

    reason: str
    field: str
    message: str


def observe_target(kube: Kube, monitor: Monitor) -> TargetState:
    ref = monitor.spec.model.target_ref
    api = TARGET_API[ref.kind]
    where = f"{ref.kind} {monitor.namespace}/{ref.name}"
    if ref.kind == "InferenceService" and not kube.has_api(api, "InferenceService"):
        return TargetState(
            False,
            Reason.KIND_NOT_INSTALLED,
            f"{where}: the KServe InferenceService API is not installed",
        )
    try:
        obj = kube.get(api, ref.kind, monitor.namespace, ref.name)
    except NotFound:
        return TargetState(
            False, Reason.NOT_FOUND, f"{where} does not exist (spec.model.targetRef)"
        )
    status = obj.get("status") or {}
    if ref.kind == "InferenceService":
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions", [])
        )
        # The labels KServe's controller puts on the predictor's pods (components/predictor.go):
        # its transformer and explainer pods are not the model's.
        labels: dict[str, str] | None = {
            "serving.kserve.io/inferenceservice": ref.name,
            "component": "predictor",
        }
        containers = _predictor_containers((obj.get("spec") or {}).get("predictor") or {})
    else:
        spec = obj.get("spec") or {}
        ready = (status.get("readyReplicas") or 0) >= 1 or spec.get("replicas") == 0
        template = spec.get("template") or {}
        labels = template.get("metadata", {}).get("labels") or None
        pod = template.get("spec") or {}
        containers = [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]
    return TargetState(
        True,
        Reason.FOUND,
        f"{where} found ({'ready' if ready else 'not ready yet'})",
        pod_labels=labels,
        gpu=any(_requests_gpu(c) for c in containers),
    )


GPU_RESOURCE_PREFIX = "nvidia.com/"  # nvidia.com/gpu, and MIG slices like nvidia.com/mig-1g.10gb


def _requests_gpu(container: dict) -> bool:
    resources = container.get("resources") or {}
    names = [*(resources.get("limits") or {}), *(resources.get("requests") or {})]
    return any(n.startswith(GPU_RESOURCE_PREFIX) for n in names)


def _predictor_containers(predictor: dict) -> list[dict]:
    """Container specs of an InferenceService's predictor: ``containers`` (custom), ``model``
    or a framework key (``sklearn``, ``pytorch``, ...), each a container spec."""
    out = list(predictor.get("containers") or [])
    out += [v for v in predictor.values() if isinstance(v, dict) and "resources" in v]
    return out


def observe_worker(kube: Kube, monitor: Monitor) -> WorkerState:
    name = Names(monitor.name).worker
    obj = kube.get_or_none("apps/v1", "Deployment", monitor.namespace, name)
    if obj is None:
        return WorkerState(
            False, reason=Reason.NOT_CREATED, message=f"Deployment {name} does not exist"
        )
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1))
    available = int(status.get("availableReplicas") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions", [])}
    failure = conditions.get(Reason.REPLICA_FAILURE)
    progressing = conditions.get(Reason.PROGRESSING)
    if failure and failure.get("status") == "True":
        reason, message = failure.get("reason", Reason.REPLICA_FAILURE), failure.get("message", "")
    elif desired == 0:
        reason, message = Reason.PAUSED, "spec.worker.replicas is 0"
    elif available >= desired:
        reason, message = Reason.AVAILABLE, f"{available}/{desired} worker pods available"
    else:
        detail = (progressing or {}).get("message")
        reason = Reason.PROGRESSING
        message = f"{available}/{desired} worker pods available" + (
            f" ({detail})" if detail else ""
        )
    return WorkerState(True, desired, available, reason, message)


def observe_tls(kube: Kube, monitor: Monitor) -> TlsRecord | None:
    """The record of the operator-issued certificates (None: none, or not issued here)."""
    if tls_mode(monitor) != "operator":
        return None
    cm = kube.get_or_none("v1", "ConfigMap", monitor.namespace, Names(monitor.name).ca)
    return TlsRecord.from_config_map(cm)


def worker_ca(
    kube: Kube, monitor: Monitor, settings: Settings, record: TlsRecord | None
) -> str | None:
    """The CAs to verify the worker's https with: the operator's own, or (cert-manager) what
    the namespace's logger CA bundle holds, which is what KServe's logger trusts too."""
    mode = tls_mode(monitor)
    if mode == "operator":
        return record.bundle if record else None
    if mode == "cert-manager":
        cm = kube.get_or_none("v1", "ConfigMap", monitor.namespace, settings.logger_ca_bundle)
        return ((cm or {}).get("data") or {}).get(settings.logger_ca_file)
    return None


def check_prerequisites(kube: Kube, monitor: Monitor) -> list[Problem]:
    """Objects the spec points at that must exist before a worker can start."""
    problems: list[Problem] = []
    issuer = monitor.spec.worker.tls.issuer_ref
    if (
        tls_mode(monitor) == "cert-manager"
        and issuer is not None
        and not kube.has_api("cert-manager.io/v1", "Certificate")
    ):
        problems.append(
            Problem(
                Reason.CERT_MANAGER_MISSING,
                "spec.worker.tls.issuerRef",
                f"{issuer.kind} {issuer.name}: the cert-manager.io/v1 API is not installed "
                "(remove issuerRef to have the operator issue the certificate)",
            )
        )
    ref = monitor.spec.data.reference
    if ref is None:
        return problems
    if ref.config_map_key_ref:
        cm_ref = ref.config_map_key_ref
        cm = kube.get_or_none("v1", "ConfigMap", monitor.namespace, cm_ref.name)
        if cm is None:
            problems.append(
                Problem(
                    Reason.REFERENCE_NOT_FOUND,
                    "spec.data.reference.configMapKeyRef.name",
                    f"ConfigMap {monitor.namespace}/{cm_ref.name} does not exist",
                )
            )
        elif cm_ref.key not in (cm.get("data") or {}) and cm_ref.key not in (
            cm.get("binaryData") or {}
        ):
            problems.append(
                Problem(
                    Reason.REFERENCE_NOT_FOUND,
                    "spec.data.reference.configMapKeyRef.key",
                    f"ConfigMap {monitor.namespace}/{cm_ref.name} has no key {cm_ref.key!r}",
                )
            )
    return problems
