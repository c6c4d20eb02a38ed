"""The ModelMonitor resource: its spec (the shared sections plus what only the operator reads:
target, reference source, Prometheus wiring, worker placement) and its status. The CRD's
schema is generated from these types (:mod:`mm_api.crd`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from .alerting import ModelAlertsSpec
from .durations import Duration
from .sections import (
    DATA_RULES,
    DRIFT_FEATURES_RULE,
    TASK_RULES,
    Cel,
    DataColumns,
    KubeLabels,
    MonitorSections,
    ReferenceFormat,
    Section,
    Task,
    check_data_fits,
    check_drift_features,
    check_drift_overrides,
    check_fits_task,
    crd,
)

GROUP = "modelmonitor.io"
VERSION = "v1alpha1"
PLURAL = "modelmonitors"
KIND = "ModelMonitor"
API_VERSION = f"{GROUP}/{VERSION}"

TargetKind = Literal["Deployment", "StatefulSet", "InferenceService"]
_ENABLED = "Turn this part on or off."
_NODE_SELECTOR = "Node labels the pod must run on."
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
#: A resource quantity (``100m``, ``256Mi``, ``2``): an int-or-string in the CRD.
Quantity = int | str


class TargetRef(Section):
    kind: TargetKind = Field(default="Deployment", description="Kind of the workload.")
    name: str = Field(min_length=1, max_length=253, description="Name of the workload.")


class ModelRef(Section):
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        description="Value of the `model` label on metrics and alerts; defaults to metadata.name.",
    )
    task: Task = Field(description="What the model predicts; decides which quality metrics apply.")
    target_ref: TargetRef = Field(
        description="The workload that serves the model, in the same namespace."
    )
    classes: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        max_length=1000,
        description="Class labels in the order of probability vectors (multiclass); optional.",
    )
    positive_class: str = Field(
        default="1",
        description="The positive class of a binary classifier, as it appears in predictions and labels.",
    )


class ConfigMapKeyRef(Section):
    name: str = Field(min_length=1, description="ConfigMap name.")
    key: str = Field(min_length=1, description="Key in the ConfigMap.")


class SecretRef(Section):
    name: str = Field(min_length=1, max_length=253, description="Secret name.")


class PvcRef(Section):
    claim_name: str = Field(min_length=1, description="PersistentVolumeClaim name.")
    path: str = Field(min_length=1, description="File path inside the volume.")


class ReferenceRef(Section):
    crd_rules = (
        Cel(
            "[has(self.configMapKeyRef), has(self.url), has(self.pvc)].filter(x, x).size() == 1",
            "set exactly one of configMapKeyRef, url or pvc",
        ),
        Cel(
            "!has(self.headersSecretRef) || has(self.url)",
            "headersSecretRef is sent with the url: set url too",
            ".headersSecretRef",
        ),
    )

    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None,
        description="A key of a ConfigMap in the monitor's namespace (up to 1 MiB; use binaryData for Parquet).",
    )
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="An http(s) URL the worker downloads at start.",
    )
    pvc: PvcRef | None = Field(
        default=None, description="A file on a PersistentVolumeClaim in the monitor's namespace."
    )
    format: ReferenceFormat = Field(
        default="auto", description="File format; auto guesses from the file name (default CSV)."
    )
    headers_secret_ref: SecretRef | None = Field(
        default=None,
        description="A Secret whose keys are HTTP header names and values their values (e.g. Authorization), sent with the url; mounted, never read by the operator.",
    )
    sample_rows: int = Field(
        default=200_000,
        ge=1000,
        description="A reference with more rows is streamed: this many rows are sampled (bottom-k, seeded) for what needs rows; histograms and counts are exact over every row.",
    )
    reload_interval: Duration = Field(
        default="60s",
        description="How often the worker checks the reference for new contents (a file's identity and time, a URL's ETag); new contents give a new profile and a fresh window.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ReferenceRef:
        if sum(x is not None for x in (self.config_map_key_ref, self.url, self.pvc)) != 1:
            raise ValueError(self.crd_rules[0].message)
        if self.headers_secret_ref is not None and self.url is None:
            raise ValueError(self.crd_rules[1].message)
        return self


class DataSpec(DataColumns):
    reference: ReferenceRef | None = Field(
        default=None,
        description="The reference dataset (usually training or validation data). Exactly one source.",
    )


class ServiceMonitorSpec(Section):
    enabled: bool = Field(default=True, description=_ENABLED)
    labels: KubeLabels = Field(default_factory=dict, description="Extra labels on the object.")
    interval: Duration = Field(default="30s", description="Scrape interval.")


class RuleSpec(Section):
    enabled: bool = Field(default=True, description=_ENABLED)
    labels: KubeLabels = Field(default_factory=dict, description="Extra labels on the object.")


class PrometheusSpec(Section):
    service_monitor: ServiceMonitorSpec = Field(
        default_factory=ServiceMonitorSpec, description="ServiceMonitor scraping the worker."
    )
    rule: RuleSpec = Field(
        default_factory=RuleSpec, description="PrometheusRule with the monitor's alerts."
    )


class Toleration(Section):
    key: str | None = Field(default=None, description="Taint key.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal."
    )
    value: str | None = Field(default=None, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect."
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated."
    )


class GpuSpec(Section):
    count: int = Field(default=1, ge=1, le=16, description="GPUs per worker pod.")
    resource_name: str = Field(
        default="nvidia.com/gpu",
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$",
        description="Extended resource name of the GPU.",
    )
    node_selector: KubeLabels = Field(default_factory=dict, description=_NODE_SELECTOR)
    tolerations: list[Toleration] | None = Field(
        default=None, description="Tolerations, as in a Pod spec."
    )


class ResourcesSpec(Section):
    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Resource requests (default cpu 100m, memory 256Mi).",
        json_schema_extra=crd(quantity_pattern=QUANTITY_PATTERN),
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Resource limits (default memory 512Mi).",
        json_schema_extra=crd(quantity_pattern=QUANTITY_PATTERN),
    )


class AuthSpec(Section):
    enabled: bool = Field(default=True, description=_ENABLED)
    kserve_logger: bool = Field(
        default=False,
        description="Accept KServe's payload logger (POST /v1/cloudevents) without a token, as it sends none; /v1/records and /v1/labels keep the token. Needs model.targetRef.kind InferenceService and worker.networkPolicy.enabled, so that only the predictor's pods (and Prometheus and the operator) reach the worker.",
    )


class IssuerRef(Section):
    name: str = Field(min_length=1, max_length=253, description="Name of the issuer.")
    kind: Literal["Issuer", "ClusterIssuer"] = Field(
        default="Issuer", description="Issuer (in the monitor's namespace) or ClusterIssuer."
    )
    group: str = Field(default="cert-manager.io", description="API group of the issuer.")


#: Durations of whole minutes or more: a certificate renewed every few seconds helps nobody.
_TLS_DURATION_RULE = Cel(
    "!has(self.duration) || !self.duration.matches('^([0-9]+(ms|s))+$')",
    "must be at least a minute, written in m, h, d or w (e.g. 90d)",
    ".duration",
)


class TlsSpec(Section):
    crd_rules = (_TLS_DURATION_RULE,)

    enabled: bool = Field(
        default=False,
        description="Serve https on the worker's port (ingestion, /metrics, /v1/status, probes) with a certificate for its Service; the operator writes the CA bundle KServe's logger mounts (docs/kserve.md).",
    )
    duration: Duration = Field(
        default="90d",
        description="Validity of the certificates the operator issues; each is replaced after two thirds of it.",
    )
    issuer_ref: IssuerRef | None = Field(
        default=None,
        description="A cert-manager Issuer or ClusterIssuer issues the certificate instead of the operator (needs the cert-manager.io/v1 API; its CA is then yours to distribute).",
    )

    @model_validator(mode="after")
    def _minutes(self) -> TlsSpec:
        if re.fullmatch(r"([0-9]+(ms|s))+", self.duration):
            raise ValueError(f"duration: {_TLS_DURATION_RULE.message}")
        return self


class NetworkPolicySpec(Section):
    enabled: bool = Field(default=False, description=_ENABLED)
    prometheus_namespace_selector: KubeLabels = Field(
        default_factory=dict, description="Namespace labels of Prometheus (allowed to scrape)."
    )
    prometheus_pod_selector: KubeLabels = Field(
        default_factory=dict, description="Pod labels of Prometheus (allowed to scrape)."
    )


class SecretKeyRef(Section):
    name: str = Field(min_length=1, description="Secret name, in the monitor's namespace.")
    key: str = Field(min_length=1, description="Key in the Secret.")


class StoreRef(Section):
    url: str = Field(
        pattern=r"^rediss?://[^\s]+$",
        description="redis://host:6379/0 of a Valkey or Redis (standalone) shared by the replicas; rediss:// for TLS. No password in the URL: use passwordSecretRef.",
    )
    password_secret_ref: SecretKeyRef | None = Field(
        default=None, description="The store's password (given to the worker as MM_STORE_PASSWORD)."
    )
    flush_interval: Duration = Field(
        default="1s",
        description="How often each replica writes its part of the window (what a kill -9 can lose).",
    )


class PersistenceSpec(Section):
    size: Quantity = Field(
        default="1Gi",
        description="Size of the PersistentVolumeClaim the worker keeps its snapshots on.",
        json_schema_extra=crd(pattern=QUANTITY_PATTERN),
    )
    storage_class_name: str | None = Field(
        default=None, description="StorageClass of the claim (default: the cluster's default)."
    )


class AutoscalingSpec(Section):
    crd_rules = (
        Cel("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
    )

    min_replicas: int = Field(default=2, ge=1, le=100, description="Fewest worker pods.")
    max_replicas: int = Field(default=10, ge=1, le=100, description="Most worker pods.")
    target_cpu_utilization_percentage: int = Field(
        default=70,
        ge=1,
        le=100,
        alias="targetCPUUtilizationPercentage",
        description="CPU utilisation the autoscaler aims at.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(self.crd_rules[0].message)
        return self


class WorkerSpec(Section):
    crd_rules = (
        Cel(
            "!has(self.replicas) || self.replicas <= 1 || has(self.store)",
            "replicas above 1 need worker.store: replicas share their window through it",
            ".replicas",
        ),
        Cel(
            "!has(self.autoscaling) || has(self.store)",
            "autoscaling needs worker.store: replicas share their window through it",
            ".autoscaling",
        ),
        Cel(
            "!has(self.persistence) || !has(self.store)",
            "persistence is for one replica without a store (with a store, the state lives there)",
            ".persistence",
        ),
    )

    image: str | None = Field(
        default=None,
        description="Defaults to the operator's MM_WORKER_IMAGE (MM_WORKER_TEXT_IMAGE when a text feature has embed: true).",
    )
    replicas: int = Field(
        default=1,
        ge=0,
        le=100,
        description="Worker pods; 0 pauses the worker. Above 1 needs a store. Ignored with autoscaling.",
    )
    store: StoreRef | None = Field(
        default=None,
        description="A shared Valkey/Redis: the window, pending labels and KServe halves of every replica.",
    )
    persistence: PersistenceSpec | None = Field(
        default=None,
        description="One replica without a store: snapshots on a PersistentVolumeClaim, so a new pod restores them.",
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None,
        description="A HorizontalPodAutoscaler on CPU owns the replica count (needs a store).",
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Container resources, as in a Pod spec."
    )
    colocate: bool = Field(default=True, description="Prefer nodes that run the model's pods.")
    node_selector: KubeLabels = Field(default_factory=dict, description=_NODE_SELECTOR)
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Tolerations, as in a Pod spec."
    )
    gpu: GpuSpec | None = Field(
        default=None,
        description="Run the worker on GPU nodes (tolerations default to the nvidia.com/gpu:NoSchedule taint). Absent means no GPU fields at all.",
    )
    snapshot_interval: Duration = Field(
        default="60s", description="How often the worker saves its state (also on shutdown)."
    )
    auth: AuthSpec = Field(
        default_factory=AuthSpec,
        description="Bearer-token authentication of ingestion, with a token in a Secret the operator creates.",
    )
    tls: TlsSpec = Field(
        default_factory=TlsSpec,
        description="https on the worker's port, with a certificate the operator issues and rotates (or cert-manager).",
    )
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec,
        description="Limit the worker's ingress to the model's pods and Prometheus.",
    )

    @model_validator(mode="after")
    def _store_rules(self) -> WorkerSpec:
        checks = (
            self.replicas <= 1 or self.store is not None,
            self.autoscaling is None or self.store is not None,
            self.persistence is None or self.store is None,
        )
        for rule, ok in zip(self.crd_rules, checks, strict=True):
            if not ok:
                raise ValueError(f"{(rule.field_path or '').lstrip('.')}: {rule.message}")
        return self


#: What learns from the reference needs one (the worker's config may get its reference elsewhere,
#: so these rules are the spec's own).
REFERENCE_RULES = (
    Cel(
        "!has(self.estimation) || !has(self.estimation.enabled) || !self.estimation.enabled || "
        "(has(self.data) && has(self.data.reference))",
        "estimation.enabled: true needs data.reference: the estimators learn from a labelled reference",
        ".estimation.enabled",
    ),
    Cel(
        "!has(self.drift) || !has(self.drift.multivariate) || "
        "(has(self.data) && has(self.data.reference))",
        "drift.multivariate needs data.reference: it is fitted on the reference",
        ".drift.multivariate",
    ),
)


#: Unauthenticated ingestion only where the NetworkPolicy limits who reaches the worker.
KSERVE_LOGGER_RULE = Cel(
    "!has(self.worker) || !has(self.worker.auth) || !has(self.worker.auth.kserveLogger) || "
    "!self.worker.auth.kserveLogger || (self.model.targetRef.kind == 'InferenceService' && "
    "has(self.worker.networkPolicy) && has(self.worker.networkPolicy.enabled) && "
    "self.worker.networkPolicy.enabled)",
    "worker.auth.kserveLogger needs model.targetRef.kind InferenceService and "
    "worker.networkPolicy.enabled: true (only the predictor's pods may then reach the worker)",
    ".worker.auth.kserveLogger",
)


class ModelMonitorSpec(MonitorSections):
    crd_rules = (
        *TASK_RULES,
        *DATA_RULES,
        *REFERENCE_RULES,
        DRIFT_FEATURES_RULE,
        KSERVE_LOGGER_RULE,
    )
    #: The CRD (and docs/api.md) lists the model first, as users write it.
    crd_field_order: ClassVar[tuple[str, ...]] = (
        "model", "data", "window", "drift", "outliers", "quality", "estimation", "labels",
        "alerts", "measures", "kserve", "prometheus", "worker",
    )  # fmt: skip

    model: ModelRef = Field(description="The model being monitored.")
    alerts: ModelAlertsSpec = Field(  # the worker's section, extended
        default_factory=ModelAlertsSpec,
        description="The PrometheusRule's alerts, serving health and routing to the owning team.",
    )
    data: DataSpec = Field(
        default_factory=DataSpec,
        description="The reference data and how its columns map to features, predictions and labels.",
    )
    prometheus: PrometheusSpec = Field(
        default_factory=PrometheusSpec,
        description="Prometheus Operator objects made for the monitor.",
    )
    worker: WorkerSpec = Field(
        default_factory=WorkerSpec, description="The monitor worker Deployment."
    )

    @model_validator(mode="after")
    def _fits_task(self) -> ModelMonitorSpec:
        check_fits_task(self.model.task, self)
        check_data_fits(self.data, self)
        if self.data.reference is None:
            if self.estimation.enabled:
                raise ValueError(REFERENCE_RULES[0].message)
            if self.drift.multivariate is not None:
                raise ValueError(REFERENCE_RULES[1].message)
        check_drift_overrides(self.data, self.drift)
        if self.data.features is not None:
            check_drift_features(
                self.drift.features,
                [f.name for f in self.data.features],
                [f.name for f in self.data.features if f.type == "text"],
            )
        w = self.worker
        if w.auth.kserve_logger and not (
            self.model.target_ref.kind == "InferenceService" and w.network_policy.enabled
        ):
            raise ValueError(KSERVE_LOGGER_RULE.message)
        return self


# -- status -------------------------------------------------------------------------------------

Health = Literal["Healthy", "Warning", "Critical", "Unknown"]
_INT64 = crd(format="int64")
_DATE_TIME = crd(format="date-time")


class Condition(Section):
    """A condition in the metav1.Condition shape."""

    type: str = Field(
        max_length=316,
        description="Ready, TargetFound, WorkerAvailable, MonitoringConfigured or Healthy.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The spec generation the condition was computed for.",
        json_schema_extra=_INT64,
    )
    last_transition_time: str = Field(
        description="When status last changed.", json_schema_extra=_DATE_TIME
    )
    reason: str = Field(
        max_length=1024, description="CamelCase reason, e.g. ReferenceNotFound or AlertsFiring."
    )
    message: str = Field(
        max_length=32768, description="What happened, naming the field or object concerned."
    )


class StatusSummary(Section):
    records: int | None = Field(
        default=None, description="Records in the current window.", json_schema_extra=_INT64
    )
    labelled: int | None = Field(
        default=None,
        description="Records with labels in the current window.",
        json_schema_extra=_INT64,
    )
    key_metric: str | None = Field(default=None, description='e.g. "accuracy 0.941"')
    quality: dict[str, float] | None = Field(
        default=None, description="Quality metrics of the current window."
    )
    estimated_quality: dict[str, float] | None = Field(
        default=None,
        description="Quality estimated without labels (CBPE, DLE) over the current window.",
    )
    drift_share: float | None = Field(
        default=None, description="Share of features drifted in the window."
    )
    drifted_features: list[str] | None = Field(
        default=None, description="Features drifted in the window."
    )
    prediction_drift: bool | None = Field(default=None, description="Whether predictions drifted.")
    multivariate_drift: bool | None = Field(
        default=None, description="Whether the features drifted together (drift.multivariate)."
    )
    outlier_ratio: float | None = Field(
        default=None, description="Share of outliers in the window."
    )


class FiringAlert(Section):
    name: str = Field(description="Alert name (ModelMonitor...).")
    severity: str | None = Field(
        default=None, description="Alert severity (default: alerts.severity)."
    )
    since: str | None = Field(
        default=None, description="When the alert started firing.", json_schema_extra=_DATE_TIME
    )
    summary: str | None = Field(default=None, description="The alert's summary annotation.")


class ModelMonitorStatus(Section):
    observed_generation: int | None = Field(
        default=None,
        description="The spec generation this status describes.",
        json_schema_extra=_INT64,
    )
    model: str | None = Field(
        default=None, description="The model's name (spec.model.name or metadata.name)."
    )
    health: Health | None = Field(
        default=None,
        description="Healthy, Warning or Critical (worst firing alert), or Unknown; see docs/operator.md.",
    )
    health_source: str | None = Field(
        default=None, description="Where health was read from: alertmanager, prometheus or worker."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra=crd(
            **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
        ),
    )
    summary: StatusSummary | None = None
    firing_alerts: list[FiringAlert] | None = None
    firing_alert_count: int | None = Field(
        default=None, description="Number of firing alerts (ALERTS column)."
    )
    worker_service: str | None = Field(default=None, description="host:port that receives records")
    children: list[str] | None = Field(
        default=None, description="Kind/name of each object applied for this monitor."
    )
    last_evaluation_time: str | None = Field(
        default=None,
        description="When health was last read successfully.",
        json_schema_extra=_DATE_TIME,
    )


class ModelMonitor(Section):
    """A ModelMonitor watches one model in production and reports its quality, drift and outliers."""

    api_version: str | None = None
    kind: str | None = None
    metadata: dict[str, Any] | None = None
    spec: ModelMonitorSpec
    status: ModelMonitorStatus | None = None
