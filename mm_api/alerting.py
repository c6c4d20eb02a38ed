"""The parts of ``spec.alerts`` that only the operator and Prometheus act on: the serving
health of the model's own pods (rules on the series kube-prometheus-stack, DCGM exporter and
the model server already export) and the routing of the monitor's alerts to the team that
owns the model (an AlertmanagerConfig).

The worker's config carries the plain :class:`~mm_api.sections.AlertsSpec`; the ModelMonitor
spec carries :class:`ModelAlertsSpec`, the same section with these two fields added, so a
change of routing never restarts the worker (its config, and so its pod template, stay the
same)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .durations import Duration
from .sections import AlertsSpec, Cel, KubeLabels, Section, Severity, crd

#: Alert names a retrain hook may name (and the default set: the data has moved).
ALERT_NAME_PATTERN = r"^ModelMonitor[A-Za-z0-9]+$"
DEFAULT_RETRAIN_ALERTS = ("ModelMonitorDataDrift", "ModelMonitorPredictionDrift")
RETRAIN_RECEIVER = "retrain"
_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SEND_RESOLVED = "Also notify when the alert resolves."


# -- serving health ---------------------------------------------------------------------------


class ServingHealthSpec(Section):
    """Rules on the target's own pods: CPU throttling and usage against limits, memory near
    the limit, OOM kills, restarts, unavailable replicas, GPU (NVIDIA DCGM exporter) and the
    model server's latency and errors. See docs/serving-health.md for every series."""

    enabled: bool = Field(default=True, description="Turn this part on or off.")
    severity: Severity = Field(default="warning", description="Severity of every serving alert.")
    for_: Duration | None = Field(
        default=None,
        alias="for",
        description="How long a condition must hold (default: alerts.for).",
    )
    rate_window: Duration = Field(
        default="5m",
        description="Range of the rate() of counters (at least 4 scrape intervals of the exporters).",
    )
    cpu_throttling_ratio: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Alert when this share of a container's CFS periods was throttled.",
    )
    cpu_limit_ratio: float = Field(
        default=0.9, gt=0, le=1, description="Alert when CPU usage reaches this share of the limit."
    )
    memory_limit_ratio: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Alert when the working set reaches this share of the memory limit.",
    )
    restarts: int = Field(
        default=3, ge=1, description="Alert when a container restarts this often in restartsWindow."
    )
    restarts_window: Duration = Field(default="1h", description="Window of the restart count.")
    gpu: Literal["auto", "enabled", "disabled"] = Field(
        default="auto",
        description="GPU rules (DCGM exporter): auto renders them when the target's pods request nvidia.com GPUs.",
    )
    gpu_utilization_ratio: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Alert when a GPU is this busy (DCGM_FI_DEV_GPU_UTIL).",
    )
    gpu_memory_ratio: float = Field(
        default=0.9, gt=0, le=1, description="Alert when this share of a GPU's framebuffer is used."
    )
    latency_quantile: float = Field(
        default=0.95, gt=0, lt=1, description="Quantile of the model server's request latency."
    )
    latency_threshold: Duration = Field(
        default="1s", description="Alert when that quantile of request latency exceeds it."
    )
    error_ratio: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Alert when this share of inference requests fails (model server errors).",
    )


# -- routing to the owning team -----------------------------------------------------------------


class SecretKeyRef(Section):
    """A key of a Secret in the monitor's namespace. The operator never reads it: the
    Prometheus Operator does, when it turns the AlertmanagerConfig into Alertmanager's config."""

    name: str = Field(min_length=1, max_length=253, description="Secret name.")
    key: str = Field(min_length=1, max_length=253, description="Key in the Secret.")


class WebhookReceiver(Section):
    url_secret: SecretKeyRef = Field(
        alias="urlSecret", description="Secret key holding the URL alerts are POSTed to."
    )
    send_resolved: bool = Field(default=True, description=_SEND_RESOLVED)
    max_alerts: int = Field(
        default=0, ge=0, description="Most alerts in one message (0: all of them)."
    )


class SlackReceiver(Section):
    api_url_secret: SecretKeyRef = Field(
        alias="apiURLSecret", description="Secret key holding the Slack incoming-webhook URL."
    )
    channel: str | None = Field(default=None, description="Channel, e.g. #fraud-alerts.")
    send_resolved: bool = Field(default=True, description=_SEND_RESOLVED)


class EmailReceiver(Section):
    to: str = Field(min_length=3, description="Recipient address(es), comma-separated.")
    from_: str | None = Field(
        default=None, alias="from", description="Sender (default: Alertmanager's global smtp_from)."
    )
    smarthost: str | None = Field(
        default=None,
        pattern=r"^[^:\s]+:[0-9]+$",
        description="SMTP host:port (default: the global smtp_smarthost).",
    )
    auth_username: str | None = Field(default=None, description="SMTP user name.")
    auth_password_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the SMTP password."
    )
    send_resolved: bool = Field(default=False, description=_SEND_RESOLVED)


class PagerDutyReceiver(Section):
    routing_key_secret: SecretKeyRef = Field(
        description="Secret key holding the PagerDuty Events API v2 integration (routing) key."
    )
    send_resolved: bool = Field(default=True, description=_SEND_RESOLVED)


class Receiver(Section):
    crd_rules = (
        Cel(
            "has(self.webhook) || has(self.slack) || has(self.email) || has(self.pagerduty)",
            "set at least one of webhook, slack, email or pagerduty",
        ),
    )

    name: str = Field(
        min_length=1, max_length=63, pattern=_NAME_PATTERN, description="Receiver name."
    )
    webhook: WebhookReceiver | None = Field(default=None, description="A generic webhook.")
    slack: SlackReceiver | None = Field(default=None, description="A Slack channel.")
    email: EmailReceiver | None = Field(default=None, description="E-mail.")
    pagerduty: PagerDutyReceiver | None = Field(default=None, description="PagerDuty.")

    @model_validator(mode="after")
    def _one_integration(self) -> Receiver:
        if not any((self.webhook, self.slack, self.email, self.pagerduty)):
            raise ValueError(self.crd_rules[0].message)
        return self


class RetrainHook(Section):
    """A webhook (e.g. a pipeline trigger) that gets Alertmanager's JSON body when one of
    ``alerts`` fires for this monitor; the team's receiver still gets those alerts too."""

    url_secret: SecretKeyRef = Field(
        alias="urlSecret", description="Secret key holding the URL of the retraining trigger."
    )
    alerts: list[Annotated[str, Field(pattern=ALERT_NAME_PATTERN)]] = Field(
        default_factory=lambda: list(DEFAULT_RETRAIN_ALERTS),
        min_length=1,
        max_length=50,
        description="Alert names that trigger it (ModelMonitor...).",
    )
    repeat_interval: Duration = Field(
        default="24h", description="How often a still-firing alert triggers it again."
    )


class AlertRouteSpec(Section):
    """Where this monitor's alerts go: an AlertmanagerConfig owned by the monitor that
    matches its alerts (namespace and modelmonitor labels) and sends them to ``receiver``."""

    crd_rules = (
        Cel(
            "!has(self.receiver) || self.receivers.exists(r, r.name == self.receiver)",
            "receiver must name one of receivers",
            ".receiver",
        ),
        Cel(
            f"self.receivers.all(r, r.name != '{RETRAIN_RECEIVER}')",
            f"the receiver name {RETRAIN_RECEIVER!r} is reserved for the retrain hook",
            ".receivers",
        ),
    )

    labels: KubeLabels = Field(
        default_factory=dict,
        description="Labels on the AlertmanagerConfig (what the Alertmanager's alertmanagerConfigSelector selects).",
    )
    receivers: list[Receiver] = Field(
        min_length=1,
        max_length=10,
        description="The team's receivers; credentials by reference to Secrets.",
        json_schema_extra=crd(
            **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
        ),
    )
    receiver: str | None = Field(
        default=None, description="The receiver of the monitor's alerts (default: the first)."
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname", "modelmonitor"],
        max_length=20,
        description="Labels alerts are grouped by into one notification.",
    )
    group_wait: Duration = Field(
        default="30s", description="Wait before the first notification of a group."
    )
    group_interval: Duration = Field(
        default="5m", description="Wait before notifying about new alerts of a group."
    )
    repeat_interval: Duration = Field(
        default="4h", description="Wait before repeating a notification that was already sent."
    )
    retrain: RetrainHook | None = Field(
        default=None, description="A retraining trigger for chosen alerts."
    )

    @model_validator(mode="after")
    def _receivers(self) -> AlertRouteSpec:
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names):
            raise ValueError("receivers: names must be unique")
        if self.receiver is not None and self.receiver not in names:
            raise ValueError(f"receiver: {self.receiver!r} is not one of receivers")
        if RETRAIN_RECEIVER in names:
            raise ValueError(self.crd_rules[1].message)
        return self

    @property
    def default_receiver(self) -> str:
        return self.receiver or self.receivers[0].name


class ModelAlertsSpec(AlertsSpec):
    """``spec.alerts``: the section the worker reads too, plus serving health and routing."""

    serving_health: ServingHealthSpec = Field(
        default_factory=ServingHealthSpec,
        description="Alerts on the model's own pods and model server (see docs/serving-health.md).",
    )
    route: AlertRouteSpec | None = Field(
        default=None,
        description="Route this monitor's alerts to the owning team (an AlertmanagerConfig).",
    )

    def worker_section(self) -> AlertsSpec:
        """The plain section the worker's config carries (no serving health, no routing)."""
        return AlertsSpec.model_validate(
            self.model_dump(by_alias=True, include=set(AlertsSpec.model_fields))
        )
