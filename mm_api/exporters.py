"""Series other exporters publish about the model's own pods, as the serving-health rules and
the dashboard read them. Each name and label set was read in the exporter's source at the
version cited (docs/serving-health.md quotes the files); a rename upstream is made here once.

The series carry ``namespace`` and ``pod`` (and ``container``); which pods belong to the
target is decided by joining kube-state-metrics' ownership series, see
:func:`mm_api.alerts.target_pods_expr`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exporter:
    name: str
    version: str
    source: str  # where the names were read


@dataclass(frozen=True)
class Series:
    name: str
    exporter: Exporter
    labels: tuple[str, ...]
    help: str


CADVISOR = Exporter(
    "cAdvisor (kubelet /metrics/cadvisor)",
    "github.com/google/cadvisor v0.53.0, as embedded in the kubelet of Kubernetes v1.35.4",
    "metrics/prometheus.go; kubelet pkg/kubelet/server/server.go containerPrometheusLabelsFunc",
)
KSM = Exporter(
    "kube-state-metrics",
    "k8s.io/kube-state-metrics/v2 v2.18.0",
    "internal/store/pod.go, replicaset.go, deployment.go, statefulset.go",
)
DCGM = Exporter(
    "NVIDIA DCGM exporter",
    "github.com/NVIDIA/dcgm-exporter etc/default-counters.csv (commit 00d6d34)",
    "etc/default-counters.csv; internal/pkg/transformation/const.go (pod attributes)",
)
MLSERVER = Exporter(
    "MLServer",
    "mlserver 1.7.1 (PyPI), run here with mlserver-sklearn 1.7.1",
    "mlserver/handlers/dataplane.py; mlserver/rest/app.py (starlette_exporter, prefix rest_server)",
)
KSERVE = Exporter(
    "KServe model server (Python SDK)",
    "github.com/kserve/kserve v0.17.0",
    "python/kserve/kserve/metrics.py",
)

_CONTAINER = ("namespace", "pod", "container")

CPU_CFS_THROTTLED = Series(
    "container_cpu_cfs_throttled_periods_total", CADVISOR, _CONTAINER,
    "Throttled CFS enforcement periods.",
)  # fmt: skip
CPU_CFS_PERIODS = Series(
    "container_cpu_cfs_periods_total", CADVISOR, _CONTAINER, "Elapsed CFS enforcement periods."
)
CPU_USAGE = Series(
    "container_cpu_usage_seconds_total", CADVISOR, _CONTAINER, "CPU time consumed, in seconds."
)
MEMORY_WORKING_SET = Series(
    "container_memory_working_set_bytes", CADVISOR, _CONTAINER,
    "Working set: what the OOM killer judges against the limit.",
)  # fmt: skip

POD_OWNER = Series(
    "kube_pod_owner", KSM, ("namespace", "pod", "uid", "owner_kind", "owner_name", "owner_is_controller"),
    "Always 1: the pod's owner (a ReplicaSet for a Deployment's pods).",
)  # fmt: skip
REPLICASET_OWNER = Series(
    "kube_replicaset_owner", KSM, ("namespace", "replicaset", "owner_kind", "owner_name", "owner_is_controller"),
    "Always 1: the ReplicaSet's owner (its Deployment).",
)  # fmt: skip
RESOURCE_LIMITS = Series(
    "kube_pod_container_resource_limits", KSM,
    ("namespace", "pod", "uid", "container", "node", "resource", "unit"),
    "A container's limit of a resource (cpu in cores, memory in bytes).",
)  # fmt: skip
RESTARTS = Series(
    "kube_pod_container_status_restarts_total", KSM, ("namespace", "pod", "uid", "container"),
    "Container restarts.",
)  # fmt: skip
LAST_TERMINATED_REASON = Series(
    "kube_pod_container_status_last_terminated_reason", KSM,
    ("namespace", "pod", "uid", "container", "reason"),
    "1 with the reason of the container's last termination (OOMKilled, Error, ...).",
)  # fmt: skip
POD_READY = Series(
    "kube_pod_status_ready", KSM, ("namespace", "pod", "uid", "condition"),
    "1 for the pod's Ready condition status (condition true, false or unknown).",
)  # fmt: skip
DEPLOYMENT_UNAVAILABLE = Series(
    "kube_deployment_status_replicas_unavailable", KSM, ("namespace", "deployment"),
    "Replicas of a Deployment that are not available.",
)  # fmt: skip
STATEFULSET_REPLICAS = Series(
    "kube_statefulset_replicas", KSM, ("namespace", "statefulset"),
    "Desired replicas of a StatefulSet.",
)  # fmt: skip
STATEFULSET_READY = Series(
    "kube_statefulset_status_replicas_ready", KSM, ("namespace", "statefulset"),
    "Ready replicas of a StatefulSet.",
)  # fmt: skip

# DCGM exporter names its Kubernetes attributes pod/namespace/container; scraped with
# honorLabels: false (its chart's default) they arrive as exported_pod/exported_namespace.
_GPU = ("gpu", "UUID", "modelName", "Hostname", "namespace", "pod", "container")
GPU_UTIL = Series("DCGM_FI_DEV_GPU_UTIL", DCGM, _GPU, "GPU utilization (in %).")
GPU_FB_USED = Series("DCGM_FI_DEV_FB_USED", DCGM, _GPU, "Framebuffer memory used (in MiB).")
GPU_FB_FREE = Series("DCGM_FI_DEV_FB_FREE", DCGM, _GPU, "Framebuffer memory free (in MiB).")

MLSERVER_SUCCESS = Series(
    "model_infer_request_success_total", MLSERVER, ("model", "version"),
    "Inference requests answered (REST and gRPC, counted by the data plane).",
)  # fmt: skip
MLSERVER_FAILURE = Series(
    "model_infer_request_failure_total", MLSERVER, ("model", "version"),
    "Inference requests the model failed (500s; refused payloads (422) never reach it).",
)  # fmt: skip
MLSERVER_REST_DURATION = Series(
    "rest_server_request_duration_seconds", MLSERVER,
    ("app_name", "method", "path", "status_code", "le"),
    "REST request latency histogram (path is the route template, e.g. /v2/models/{model_name}/infer).",
)  # fmt: skip
MLSERVER_REST_REQUESTS = Series(
    "rest_server_requests_total", MLSERVER, ("app_name", "method", "path", "status_code"),
    "REST requests by route and status code.",
)  # fmt: skip
KSERVE_PREDICT_DURATION = Series(
    "request_predict_seconds", KSERVE, ("model_name", "le"),
    "Predict latency histogram of KServe's Python model servers.",
)  # fmt: skip

ALL: tuple[Series, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Series))
