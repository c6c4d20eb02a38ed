"""Desired child objects of a ModelMonitor: pure functions of the parsed spec, the operator's
settings and a few observations. No I/O here; :mod:`mm_operator.reconcile` sends the result."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from mm_api.worker_config import (
    CertificateFiles,
    EmbedderSpec,
    Identity,
    IngestionSpec,
    ModelInfo,
    ReferenceSource,
    SnapshotSpec,
    StoreSpec,
    TlsConfig,
    WorkerConfig,
    WorkerData,
    worker_config_yaml,
)

from .certificates import CA_KEY, SLOTS, TlsRecord, cert_key, dns_names, key_key
from .routing import API_VERSION as ALERTMANAGER_CONFIG_API
from .routing import KIND as ALERTMANAGER_CONFIG
from .routing import render_alertmanager_config
from .rules import render_rule_groups
from .settings import Settings
from .spec import Monitor

WORKER_PORT = 8080
CONFIG_DIR = "/etc/model-monitor"
CONFIG_FILE = f"{CONFIG_DIR}/config.yaml"
REFERENCE_DIR = "/etc/model-monitor/reference"
#: The reference URL's headers (``data.reference.headersSecretRef``), one file per header.
REFERENCE_HEADERS_DIR = "/var/run/model-monitor/reference-headers"
TOKEN_DIR = "/var/run/model-monitor/token"
TOKEN_KEY = "token"
TLS_DIR = "/var/run/model-monitor/tls"
#: Labels the CA ConfigMap of a monitor whose target is an InferenceService: its CAs go into
#: the namespace's logger CA bundle (:func:`render_logger_ca_bundle`).
LOGGER_CA_LABEL = "modelmonitor.io/logger-ca"
STATE_DIR = "/var/lib/model-monitor"
RUN_AS = 65532  # the image's non-root user (see Dockerfile)
CHECKSUM_ANNOTATION = "modelmonitor.io/config-checksum"
#: On the worker Deployment: the rotate-token value its token Secret was made for (the
#: operator cannot read Secrets, so this is how it knows whether a rotation is due).
TOKEN_ROTATION_ANNOTATION = "modelmonitor.io/token-rotation"
NAME_LABEL = "modelmonitor.io/name"
DEFAULT_GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
DEFAULT_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
#: Workers that embed texts (embed: true) load a sentence model: ~300 MB with the CPU runtime,
#: ~1 GB with torch for CUDA (docs/text-and-embeddings.md).
DEFAULT_EMBED_RESOURCES = {
    "cpu": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    "cuda": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
}


@dataclass(frozen=True)
class ClusterFacts:
    """What the operator saw in the cluster that shapes the children."""

    target_pod_labels: dict[str, str] | None = None
    prometheus_operator: bool = True
    #: The target's pod template requests NVIDIA GPUs (serving-health GPU rules).
    target_gpu: bool = False
    #: The AlertmanagerConfig API (monitoring.coreos.com/v1alpha1) is served.
    alertmanager_config: bool = False
    #: The CA ConfigMap's record of the operator-issued certificates (``worker.tls`` without
    #: an issuerRef), as reconcile left it after issuing what was due.
    tls: TlsRecord | None = None
    cert_manager: bool = False


@dataclass(frozen=True)
class Names:
    """Predictable names of every child of a ModelMonitor called ``monitor``."""

    monitor: str

    @property
    def worker(self) -> str:  # Deployment and Service
        return f"mm-{self.monitor}"

    @property
    def config(self) -> str:
        return f"mm-{self.monitor}-config"

    @property
    def token(self) -> str:
        return f"mm-{self.monitor}-token"

    @property
    def monitoring(self) -> str:  # ServiceMonitor, PrometheusRule and AlertmanagerConfig
        return f"mm-{self.monitor}"

    @property
    def state(self) -> str:  # PersistentVolumeClaim of the snapshots
        return f"mm-{self.monitor}-state"

    @property
    def tls(self) -> str:  # the serving certificate's Secret (and cert-manager Certificate)
        return f"mm-{self.monitor}-tls"

    @property
    def ca(self) -> str:  # the CA ConfigMap: public CAs and the issuance record
        return f"mm-{self.monitor}-ca"


@dataclass
class Children:
    """The desired objects, and the kinds that must not exist (to be deleted if present)."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    absent: list[tuple[str, str, str]] = field(default_factory=list)  # (apiVersion, kind, name)


def object_labels(monitor: Monitor, settings: Settings) -> dict[str, str]:
    """Kubernetes labels of every child object."""
    return {
        **settings.default_labels,
        "app.kubernetes.io/name": "monitor-worker",
        "app.kubernetes.io/instance": monitor.name,
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/part-of": "model-monitor",
        "app.kubernetes.io/managed-by": "model-monitor-operator",
        NAME_LABEL: monitor.name,
    }


def selector_labels(monitor: Monitor) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "monitor-worker",
        "app.kubernetes.io/instance": monitor.name,
        NAME_LABEL: monitor.name,
    }


def tls_mode(monitor: Monitor) -> str | None:
    """``operator`` (certificates issued here), ``cert-manager`` (an issuerRef), or None."""
    tls = monitor.spec.worker.tls
    if not tls.enabled:
        return None
    return "cert-manager" if tls.issuer_ref is not None else "operator"


def service_names(monitor: Monitor) -> tuple[str, ...]:
    """The DNS names the worker's certificate is for."""
    return dns_names(Names(monitor.name).worker, monitor.namespace)


def scheme(monitor: Monitor) -> str:
    return "https" if monitor.spec.worker.tls.enabled else "http"


def _port_name(monitor: Monitor) -> str:
    return scheme(monitor)


def _meta(monitor: Monitor, settings: Settings, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": monitor.namespace,
        "labels": object_labels(monitor, settings),
        "ownerReferences": [monitor.owner_reference()],
        **extra,
    }


# -- the worker's configuration ----------------------------------------------------------------


def render_worker_config(monitor: Monitor) -> WorkerConfig:
    """The worker's config, built with the worker's own types (validated as it is built)."""
    spec = monitor.spec
    ref = spec.data.reference
    source: ReferenceSource | None = None
    if ref is not None:
        common: dict[str, Any] = {
            "format": ref.format,
            "sample_rows": ref.sample_rows,
            "reload_interval": ref.reload_interval,
        }
        if ref.url:
            source = ReferenceSource(
                url=ref.url,
                headers_dir=REFERENCE_HEADERS_DIR if ref.headers_secret_ref else None,
                cache_dir=f"{STATE_DIR}/reference",
                **common,
            )
        elif ref.config_map_key_ref:
            source = ReferenceSource(path=f"{REFERENCE_DIR}/{ref.config_map_key_ref.key}", **common)
        elif ref.pvc:
            source = ReferenceSource(path=f"{REFERENCE_DIR}/{ref.pvc.path.lstrip('/')}", **common)
    return WorkerConfig(
        monitor=Identity(name=monitor.name, namespace=monitor.namespace),
        model=ModelInfo(
            name=monitor.model_name,
            task=spec.model.task,
            classes=spec.model.classes,
            positive_class=spec.model.positive_class,
        ),
        data=WorkerData(
            features=spec.data.features,
            prediction_column=spec.data.prediction_column,
            label_column=spec.data.label_column,
            score_column=spec.data.score_column,
            score_columns=spec.data.score_columns,
            reference=source,
        ),
        window=spec.window,
        drift=spec.drift,
        outliers=spec.outliers,
        quality=spec.quality,
        estimation=spec.estimation,
        labels=spec.labels,
        ingestion=IngestionSpec(
            auth_token_file=f"{TOKEN_DIR}/{TOKEN_KEY}" if spec.worker.auth.enabled else None,
            kserve_logger_without_token=spec.worker.auth.enabled and spec.worker.auth.kserve_logger,
        ),
        snapshot=SnapshotSpec(directory=STATE_DIR, interval=spec.worker.snapshot_interval),
        store=(
            StoreSpec(url=spec.worker.store.url, flush_interval=spec.worker.store.flush_interval)
            if spec.worker.store is not None
            else None
        ),
        alerts=spec.alerts.worker_section(),
        measures=spec.measures,
        kserve=spec.kserve,
        # The worker embeds texts (embed: true) on the GPU it was given, else on CPU.
        embedder=EmbedderSpec(device="cuda" if spec.worker.gpu is not None else "cpu"),
        tls=_worker_tls(monitor),
    )


def _worker_tls(monitor: Monitor) -> TlsConfig | None:
    mode = tls_mode(monitor)
    if mode is None:
        return None
    if mode == "cert-manager":  # cert-manager's Secret: tls.crt, tls.key (and ca.crt)
        pairs = [("tls.crt", "tls.key")]
    else:
        pairs = [(cert_key(slot), key_key(slot)) for slot in SLOTS]
    return TlsConfig(
        certificates=[
            CertificateFiles(cert_file=f"{TLS_DIR}/{crt}", key_file=f"{TLS_DIR}/{key}")
            for crt, key in pairs
        ]
    )


def embeds_texts(monitor: Monitor) -> bool:
    """Whether the worker runs the sentence model (a text feature with ``embed: true``)."""
    return any(f.embed for f in monitor.spec.data.features or ())


def render_config_map(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(monitor, settings, Names(monitor.name).config),
        "data": {"config.yaml": worker_config_yaml(render_worker_config(monitor))},
    }


def checksum(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


# -- the worker Deployment -------------------------------------------------------------------------


def _volumes(monitor: Monitor) -> tuple[list[dict], list[dict]]:
    names = Names(monitor.name)
    volumes: list[dict] = [
        {"name": "config", "configMap": {"name": names.config}},
        (
            {"name": "state", "persistentVolumeClaim": {"claimName": names.state}}
            if monitor.spec.worker.persistence is not None
            else {"name": "state", "emptyDir": {}}
        ),
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    mounts: list[dict] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "state", "mountPath": STATE_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    ref = monitor.spec.data.reference
    if ref is not None and ref.config_map_key_ref:
        cm = ref.config_map_key_ref
        volumes.append(
            {
                "name": "reference",
                "configMap": {"name": cm.name, "items": [{"key": cm.key, "path": cm.key}]},
            }
        )
        mounts.append({"name": "reference", "mountPath": REFERENCE_DIR, "readOnly": True})
    elif ref is not None and ref.pvc:
        volumes.append(
            {
                "name": "reference",
                "persistentVolumeClaim": {"claimName": ref.pvc.claim_name, "readOnly": True},
            }
        )
        mounts.append({"name": "reference", "mountPath": REFERENCE_DIR, "readOnly": True})
    elif ref is not None and ref.headers_secret_ref:
        secret = {"secretName": ref.headers_secret_ref.name}
        volumes.append({"name": "reference-headers", "secret": secret})
        mounts.append(
            {"name": "reference-headers", "mountPath": REFERENCE_HEADERS_DIR, "readOnly": True}
        )
    if monitor.spec.worker.auth.enabled:
        volumes.append({"name": "token", "secret": {"secretName": names.token}})
        mounts.append({"name": "token", "mountPath": TOKEN_DIR, "readOnly": True})
    if monitor.spec.worker.tls.enabled:
        volumes.append({"name": "tls", "secret": {"secretName": names.tls}})
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
    return volumes, mounts


def _resources(monitor: Monitor) -> dict[str, Any]:
    r = monitor.spec.worker.resources
    gpu = monitor.spec.worker.gpu
    defaults: dict[str, Any] = DEFAULT_RESOURCES
    if embeds_texts(monitor):
        defaults = DEFAULT_EMBED_RESOURCES["cuda" if gpu is not None else "cpu"]
    resources: dict[str, Any] = {
        "requests": dict(r.requests) or dict(defaults["requests"]),
        "limits": dict(r.limits) or dict(defaults["limits"]),
    }
    if gpu is not None:
        resources["limits"][gpu.resource_name] = str(gpu.count)
    return resources


def _scheduling(monitor: Monitor, facts: ClusterFacts) -> dict[str, Any]:
    w = monitor.spec.worker
    pod: dict[str, Any] = {}
    node_selector = dict(w.node_selector)
    tolerations = [t.model_dump(by_alias=True, exclude_none=True) for t in w.tolerations]
    if w.gpu is not None:
        node_selector.update(w.gpu.node_selector)
        if w.gpu.tolerations is None:
            tolerations.append(dict(DEFAULT_GPU_TOLERATION))
        else:
            tolerations += [
                t.model_dump(by_alias=True, exclude_none=True) for t in w.gpu.tolerations
            ]
    if node_selector:
        pod["nodeSelector"] = node_selector
    if _scaled(monitor):
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(monitor)},
            }
        ]
    if tolerations:
        pod["tolerations"] = tolerations
    if w.colocate and facts.target_pod_labels:
        pod["affinity"] = {
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": dict(facts.target_pod_labels)},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        }
    return pod


def _store_env(monitor: Monitor) -> list[dict[str, Any]]:
    store = monitor.spec.worker.store
    if store is None or store.password_secret_ref is None:
        return []
    ref = store.password_secret_ref
    return [
        {
            "name": "MM_STORE_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
        }
    ]


def _replicas_and_strategy(monitor: Monitor) -> dict[str, Any]:
    w = monitor.spec.worker
    out: dict[str, Any] = {}
    if w.autoscaling is None:
        out["replicas"] = w.replicas  # with autoscaling the HPA owns the count: not applied
    if w.store is None:
        # One pod owns the window state and its snapshots: never two at once.
        out["strategy"] = {"type": "Recreate"}
    else:
        # Replicas share the store: a new pod is ready before an old one leaves.
        out["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }
    return out


def _scaled(monitor: Monitor) -> bool:
    w = monitor.spec.worker
    return w.autoscaling is not None or w.replicas > 1


def worker_image(monitor: Monitor, settings: Settings) -> str:
    """The worker image when the spec names none: the text variant (with the sentence model
    and its runtimes) for a monitor that embeds texts, else the default."""
    return settings.worker_text_image_ref if embeds_texts(monitor) else settings.worker_image


def render_deployment(
    monitor: Monitor,
    settings: Settings,
    facts: ClusterFacts,
    config_map: dict[str, Any],
    token_rotation: str = "",
) -> dict[str, Any]:
    names = Names(monitor.name)
    volumes, mounts = _volumes(monitor)
    port = _port_name(monitor)
    probe_scheme = {"scheme": "HTTPS"} if monitor.spec.worker.tls.enabled else {}
    container = {
        "name": "worker",
        "image": monitor.spec.worker.image or worker_image(monitor, settings),
        "imagePullPolicy": settings.worker_image_pull_policy,
        "command": ["monitor-worker"],
        "args": ["--config", CONFIG_FILE, "--host", "0.0.0.0", "--port", str(WORKER_PORT)],
        "env": [
            {"name": "MM_LOG_FORMAT", "value": "json"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            *_store_env(monitor),
            # The sentence model is read from its package; nothing is fetched or cached.
            *([{"name": "HF_HOME", "value": "/tmp/huggingface"}] if embeds_texts(monitor) else []),
        ],
        "ports": [{"name": port, "containerPort": WORKER_PORT, "protocol": "TCP"}],
        # The kubelet does not verify the certificate of an HTTPS probe.
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": port, **probe_scheme},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port, **probe_scheme},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": port, **probe_scheme},
            "periodSeconds": 2,
            "failureThreshold": 90,
        },
        "resources": _resources(monitor),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    if monitor.spec.worker.store is not None:
        # Out of the Service's endpoints before SIGTERM, so no record reaches a worker that
        # is flushing its last part.
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": 5}}}
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
        **_scheduling(monitor, facts),
    }
    meta = _meta(monitor, settings, names.worker)
    if monitor.spec.worker.auth.enabled:
        meta["annotations"] = {TOKEN_ROTATION_ANNOTATION: token_rotation}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            **_replicas_and_strategy(monitor),
            "selector": {"matchLabels": selector_labels(monitor)},
            "template": {
                "metadata": {
                    "labels": object_labels(monitor, settings),
                    "annotations": {CHECKSUM_ANNOTATION: checksum(config_map["data"])},
                },
                "spec": pod_spec,
            },
        },
    }


def render_service(monitor: Monitor, settings: Settings, facts: ClusterFacts) -> dict[str, Any]:
    meta = _meta(monitor, settings, Names(monitor.name).worker)
    port = _port_name(monitor)
    if not facts.prometheus_operator:
        # Without the Prometheus Operator, annotation-based discovery is the common fallback.
        meta["annotations"] = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(WORKER_PORT),
            "prometheus.io/path": "/metrics",
            "prometheus.io/scheme": scheme(monitor),
        }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(monitor),
            "ports": [{"name": port, "port": WORKER_PORT, "targetPort": port, "protocol": "TCP"}],
        },
    }


def render_service_monitor(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    sm = monitor.spec.prometheus.service_monitor
    meta = _meta(monitor, settings, Names(monitor.name).monitoring)
    meta["labels"] = {**meta["labels"], **sm.labels}
    endpoint: dict[str, Any] = {
        "port": _port_name(monitor),
        "path": "/metrics",
        "interval": sm.interval,
    }
    mode = tls_mode(monitor)
    if mode is not None:
        names = Names(monitor.name)
        ca = (
            {"configMap": {"name": names.ca, "key": CA_KEY}}
            if mode == "operator"
            else {"secret": {"name": names.tls, "key": "ca.crt"}}
        )
        # Prometheus scrapes the pod's address: the name to verify is the Service's.
        endpoint.update(
            scheme="https", tlsConfig={"ca": ca, "serverName": service_names(monitor)[0]}
        )
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector_labels(monitor)},
            "namespaceSelector": {"matchNames": [monitor.namespace]},
            "endpoints": [endpoint],
        },
    }


def render_prometheus_rule(
    monitor: Monitor, settings: Settings, facts: ClusterFacts | None = None
) -> dict[str, Any]:
    rule = monitor.spec.prometheus.rule
    meta = _meta(monitor, settings, Names(monitor.name).monitoring)
    meta["labels"] = {**meta["labels"], **rule.labels}
    gpu = facts.target_gpu if facts is not None else False
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": {"groups": render_rule_groups(monitor, settings, target_gpu=gpu)},
    }


def render_network_policy(
    monitor: Monitor, settings: Settings, facts: ClusterFacts
) -> dict[str, Any]:
    """Ingress to the worker's port from the model's pods (an InferenceService's predictor
    pods), Prometheus and the operator itself (its ``/v1/status`` reads). With no peer known,
    no ingress at all: an empty ``from`` would admit everyone."""
    np = monitor.spec.worker.network_policy
    sources: list[dict[str, Any]] = []
    if facts.target_pod_labels:
        sources.append({"podSelector": {"matchLabels": dict(facts.target_pod_labels)}})
    prometheus_peer: dict[str, Any] = {}
    if np.prometheus_namespace_selector:
        prometheus_peer["namespaceSelector"] = {
            "matchLabels": dict(np.prometheus_namespace_selector)
        }
    if np.prometheus_pod_selector:
        prometheus_peer["podSelector"] = {"matchLabels": dict(np.prometheus_pod_selector)}
    if prometheus_peer:
        sources.append(prometheus_peer)
    if settings.operator_namespace and settings.operator_pod_labels:
        sources.append(
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": settings.operator_namespace}
                },
                "podSelector": {"matchLabels": dict(settings.operator_pod_labels)},
            }
        )
    # Probes come from the kubelet on the node and are not subject to policy.
    ingress = [{"from": sources, "ports": [{"port": WORKER_PORT, "protocol": "TCP"}]}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(monitor, settings, Names(monitor.name).worker),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(monitor)},
            "policyTypes": ["Ingress"],
            "ingress": ingress if sources else [],
        },
    }


def render_state_claim(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    """The PersistentVolumeClaim a single worker keeps its snapshots on (owned by the
    monitor, so it outlives pods and goes with the monitor)."""
    p = monitor.spec.worker.persistence
    assert p is not None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(p.size)}},
    }
    if p.storage_class_name:
        spec["storageClassName"] = p.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(monitor, settings, Names(monitor.name).state),
        "spec": spec,
    }


def render_disruption_budget(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    """At most one worker pod evicted at a time (drains, node upgrades)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(monitor, settings, Names(monitor.name).worker),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(monitor)}},
    }


def render_autoscaler(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    a = monitor.spec.worker.autoscaling
    assert a is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(monitor, settings, Names(monitor.name).worker),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": Names(monitor.name).worker,
            },
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": a.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def render_token_secret(
    monitor: Monitor, settings: Settings, token: str, rotation: str
) -> dict[str, Any]:
    """The worker's ingestion token (random, made by the caller), for ``rotation`` (the
    ModelMonitor's rotate-token annotation when it was made)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(
            monitor,
            settings,
            Names(monitor.name).token,
            annotations={TOKEN_ROTATION_ANNOTATION: rotation},
        ),
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def render_ca_config_map(monitor: Monitor, settings: Settings, record: TlsRecord) -> dict[str, Any]:
    """The CA ConfigMap: the CAs of the operator-issued certificates (``ca.crt``, the bundle
    clients trust; one key per slot) and, in annotations, when the next issuance is due.
    Public data only: the operator can read it back, unlike the Secret."""
    meta = _meta(monitor, settings, Names(monitor.name).ca, annotations=record.annotations())
    if monitor.spec.model.target_ref.kind == "InferenceService":
        meta["labels"] = {**meta["labels"], LOGGER_CA_LABEL: "true"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": record.data()}


def render_tls_secret(monitor: Monitor, settings: Settings, data: dict[str, str]) -> dict[str, Any]:
    """The serving certificate's Secret as first created (later slots are merge patches)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(monitor, settings, Names(monitor.name).tls),
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def render_certificate(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    """A cert-manager Certificate for the worker's Service (``worker.tls.issuerRef``)."""
    tls = monitor.spec.worker.tls
    assert tls.issuer_ref is not None
    names = Names(monitor.name)
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": _meta(monitor, settings, names.tls),
        "spec": {
            "secretName": names.tls,
            "dnsNames": list(service_names(monitor)),
            "duration": tls.duration,
            "usages": ["server auth", "digital signature"],
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "issuerRef": tls.issuer_ref.model_dump(by_alias=True),
            "secretTemplate": {"labels": object_labels(monitor, settings)},
        },
    }


def render_logger_ca_bundle(
    namespace: str, settings: Settings, cas: list[tuple[dict[str, Any], str]]
) -> dict[str, Any]:
    """The ConfigMap KServe's logger mounts at /etc/tls/logger (KServe's ``logger.caBundle``
    names it, the same in every namespace; ``logger.caCertFile`` the key): the CAs of every
    monitor in ``namespace`` whose target is an InferenceService. ``cas``: (owner reference,
    CA PEM) per monitor; each owns the bundle, so it goes with the last of them."""
    owners = [{**owner, "controller": False} for owner, _ in cas]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": settings.logger_ca_bundle,
            "namespace": namespace,
            "labels": {
                **settings.default_labels,
                "app.kubernetes.io/part-of": "model-monitor",
                "app.kubernetes.io/managed-by": "model-monitor-operator",
                "app.kubernetes.io/component": "logger-ca-bundle",
            },
            "ownerReferences": owners,
        },
        "data": {settings.logger_ca_file: "".join(pem for _, pem in cas)},
    }


def render_children(
    monitor: Monitor, settings: Settings, facts: ClusterFacts, token_rotation: str = ""
) -> Children:
    """Every object the ModelMonitor should own, in the order they are applied (the token
    and certificate Secrets apart: :func:`render_token_secret`, :mod:`certificates`, made
    only when absent or due)."""
    names = Names(monitor.name)
    spec = monitor.spec
    children = Children()
    config_map = render_config_map(monitor, settings)
    w = spec.worker
    optional = [
        ("v1", "PersistentVolumeClaim", names.state, w.persistence is not None, render_state_claim),
        ("policy/v1", "PodDisruptionBudget", names.worker, _scaled(monitor), render_disruption_budget),
        ("autoscaling/v2", "HorizontalPodAutoscaler", names.worker, w.autoscaling is not None, render_autoscaler),
    ]  # fmt: skip
    for api_version, kind, name, wanted, render in optional:
        if wanted:
            children.objects.append(render(monitor, settings))
        else:
            children.absent.append((api_version, kind, name))
    mode = tls_mode(monitor)
    if mode == "operator" and facts.tls is not None:
        children.objects.append(render_ca_config_map(monitor, settings, facts.tls))
    if mode == "cert-manager":
        children.objects.append(render_certificate(monitor, settings))
    children.objects += [
        config_map,
        render_deployment(monitor, settings, facts, config_map, token_rotation),
        render_service(monitor, settings, facts),
    ]
    if facts.prometheus_operator:
        if spec.prometheus.service_monitor.enabled:
            children.objects.append(render_service_monitor(monitor, settings))
        else:
            children.absent.append(("monitoring.coreos.com/v1", "ServiceMonitor", names.monitoring))
        if spec.prometheus.rule.enabled:
            children.objects.append(render_prometheus_rule(monitor, settings, facts))
        else:
            children.absent.append(("monitoring.coreos.com/v1", "PrometheusRule", names.monitoring))
    if facts.alertmanager_config:
        if spec.alerts.route is not None:
            meta = _meta(monitor, settings, names.monitoring)
            children.objects.append(render_alertmanager_config(monitor, meta))
        else:
            children.absent.append((ALERTMANAGER_CONFIG_API, ALERTMANAGER_CONFIG, names.monitoring))
    if spec.worker.network_policy.enabled:
        children.objects.append(render_network_policy(monitor, settings, facts))
    else:
        children.absent.append(("networking.k8s.io/v1", "NetworkPolicy", names.worker))
    if not spec.worker.auth.enabled:
        children.absent.append(("v1", "Secret", names.token))
    if mode != "operator":
        children.absent.append(("v1", "ConfigMap", names.ca))
    if mode is None:
        # After the CA ConfigMap: the Secret is deleted when that record existed (the
        # operator cannot read the Secret to know). cert-manager's Secret stays cert-manager's.
        children.absent.append(("v1", "Secret", names.tls))
    if mode != "cert-manager" and facts.cert_manager:
        children.absent.append(("cert-manager.io/v1", "Certificate", names.tls))
    return children
