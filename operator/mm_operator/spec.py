"""The ModelMonitor spec, parsed once into a typed object.

The sections the worker evaluates (window, drift, outliers, quality, labels, features) are the
worker's own types from :mod:`monitor_worker.config`; this module adds what only the operator
reads (target, reference source, alerts, Prometheus wiring, worker placement). The CRD's
schema mirrors these types field by field (``tests/unit/test_schema_sync.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from monitor_worker.config import (
    DataColumns,
    Duration,
    Labels,
    MonitorSections,
    ReferenceFormat,
    Section,
    Severity,
    Task,
    check_metrics_fit_task,
    format_validation_error,
)

GROUP = "modelmonitor.io"
VERSION = "v1alpha1"
PLURAL = "modelmonitors"
KIND = "ModelMonitor"
API_VERSION = f"{GROUP}/{VERSION}"

TargetKind = Literal["Deployment", "StatefulSet", "InferenceService"]


class TargetRef(Section):
    kind: TargetKind = "Deployment"
    name: str = Field(min_length=1, max_length=253)


class ModelRef(Section):
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
    )
    task: Task
    target_ref: TargetRef
    classes: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, max_length=1000)
    positive_class: str = "1"


class ConfigMapKeyRef(Section):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class PvcRef(Section):
    claim_name: str = Field(min_length=1)
    path: str = Field(min_length=1)


class ReferenceRef(Section):
    config_map_key_ref: ConfigMapKeyRef | None = None
    url: str | None = Field(default=None, pattern=r"^https?://")
    pvc: PvcRef | None = None
    format: ReferenceFormat = "auto"

    @model_validator(mode="after")
    def _exactly_one(self) -> ReferenceRef:
        if sum(x is not None for x in (self.config_map_key_ref, self.url, self.pvc)) != 1:
            raise ValueError("set exactly one of configMapKeyRef, url or pvc")
        return self


class DataSpec(DataColumns):
    reference: ReferenceRef | None = None


class ObjectiveSpec(Section):
    metric: Literal["accuracy"]
    target: float = Field(gt=0, lt=1)
    period: Duration = "30d"


class AlertsSpec(Section):
    enabled: bool = True
    for_: Duration = Field(default="5m", alias="for")
    severity: Severity = "warning"
    labels: Labels = Field(default_factory=dict)
    runbook_url: str | None = Field(default=None, alias="runbookURL", pattern=r"^https?://")
    dashboard_url: str | None = Field(default=None, alias="dashboardURL", pattern=r"^https?://")
    no_records_for: Duration = "15m"
    no_labels_for: Duration = "2h"
    objective: ObjectiveSpec | None = None


class ServiceMonitorSpec(Section):
    enabled: bool = True
    labels: Labels = Field(default_factory=dict)
    interval: Duration = "30s"


class RuleSpec(Section):
    enabled: bool = True
    labels: Labels = Field(default_factory=dict)


class PrometheusSpec(Section):
    service_monitor: ServiceMonitorSpec = Field(default_factory=ServiceMonitorSpec)
    rule: RuleSpec = Field(default_factory=RuleSpec)


class Toleration(Section):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class GpuSpec(Section):
    count: int = Field(default=1, ge=1, le=16)
    resource_name: str = Field(
        default="nvidia.com/gpu",
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$",
    )
    node_selector: Labels = Field(default_factory=dict)
    tolerations: list[Toleration] | None = None


Quantity = int | str


class ResourcesSpec(Section):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class AuthSpec(Section):
    enabled: bool = True


class NetworkPolicySpec(Section):
    enabled: bool = False
    prometheus_namespace_selector: Labels = Field(default_factory=dict)
    prometheus_pod_selector: Labels = Field(default_factory=dict)


class WorkerSpec(Section):
    image: str | None = None
    replicas: int = Field(default=1, ge=0, le=1)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    colocate: bool = True
    node_selector: Labels = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    gpu: GpuSpec | None = None
    snapshot_interval: Duration = "60s"
    auth: AuthSpec = Field(default_factory=AuthSpec)
    network_policy: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)


class ModelMonitorSpec(MonitorSections):
    model: ModelRef
    data: DataSpec = Field(default_factory=DataSpec)
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    worker: WorkerSpec = Field(default_factory=WorkerSpec)

    @model_validator(mode="after")
    def _fits_task(self) -> ModelMonitorSpec:
        check_metrics_fit_task(self.model.task, self.quality)
        if self.alerts.objective is not None and self.model.task == "regression":
            raise ValueError("alerts.objective: accuracy objectives apply to classifiers")
        return self


class SpecError(ValueError):
    """The spec passed the CRD's schema but cannot be used; the message names the field."""


@dataclass(frozen=True)
class Monitor:
    """A parsed ModelMonitor: identity plus typed spec. Everything downstream reads this."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: ModelMonitorSpec

    @property
    def model_name(self) -> str:
        return self.spec.model.name or self.name

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def parse_monitor(body: dict[str, Any]) -> Monitor:
    """Parse a ModelMonitor object (as the API server returns it) into a :class:`Monitor`."""
    meta = body.get("metadata", {})
    try:
        spec = ModelMonitorSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        raise SpecError(format_validation_error(e, prefix="spec")) from None
    return Monitor(
        name=meta["name"],
        namespace=meta.get("namespace", "default"),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0)),
        spec=spec,
    )
