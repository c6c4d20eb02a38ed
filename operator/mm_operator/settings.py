"""Operator settings, read once from the environment at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, ValidationError, field_validator

from mm_api.durations import parse_duration
from mm_api.sections import format_validation_error


class Settings(BaseModel):
    """Every knob, with its environment variable in the field's description."""

    namespaces: list[str] = Field(
        default_factory=list,
        description="MM_NAMESPACES: comma-separated namespaces to watch; empty watches all.",
    )
    worker_image: str = Field(
        default="ghcr.io/model-monitor/model-monitor:0.1.0",
        description="MM_WORKER_IMAGE: image of the worker when the spec sets none.",
    )
    worker_image_pull_policy: str = Field(
        default="IfNotPresent", description="MM_WORKER_IMAGE_PULL_POLICY"
    )
    worker_text_image: str | None = Field(
        default=None,
        description="MM_WORKER_TEXT_IMAGE: image of workers that embed texts (embed: true) when "
        "the spec sets none; default: the worker image's tag with -text appended.",
    )
    default_labels: dict[str, str] = Field(
        default_factory=dict,
        description="MM_DEFAULT_LABELS: k=v,k2=v2 added to every child object.",
    )
    prometheus_url: str | None = Field(
        default=None, description="MM_PROMETHEUS_URL: read firing alerts and figures from here."
    )
    alertmanager_url: str | None = Field(
        default=None, description="MM_ALERTMANAGER_URL: read firing alerts from here."
    )
    worker_url_template: str = Field(
        default="{scheme}://{service}.{namespace}.svc:{port}",
        description="MM_WORKER_URL_TEMPLATE: how the operator reaches a worker's /v1/status ({scheme} is https for workers with worker.tls).",
    )
    operator_namespace: str | None = Field(
        default=None,
        description="MM_OPERATOR_NAMESPACE: the operator pod's namespace; with MM_OPERATOR_POD_LABELS, worker NetworkPolicies admit it.",
    )
    operator_pod_labels: dict[str, str] = Field(
        default_factory=dict,
        description="MM_OPERATOR_POD_LABELS: k=v,k2=v2 labels of the operator pod (the chart sets both).",
    )
    logger_ca_bundle: str = Field(
        default="model-monitor-logger-ca",
        min_length=1,
        description="MM_LOGGER_CA_BUNDLE: name of the ConfigMap, in each namespace, holding the CAs KServe's logger trusts (KServe's logger.caBundle).",
    )
    logger_ca_file: str = Field(
        default="service-ca.crt",
        min_length=1,
        description="MM_LOGGER_CA_FILE: its key (KServe's logger.caCertFile; service-ca.crt is the agent's default).",
    )
    status_interval: float = Field(
        default=15.0, gt=0, description="MM_STATUS_INTERVAL: seconds between status refreshes."
    )
    metrics_port: int = Field(default=8080, description="MM_METRICS_PORT: operator /metrics.")
    health_port: int = Field(default=8081, description="MM_HEALTH_PORT: kopf liveness /healthz.")
    bind_address: str = Field(
        default="0.0.0.0", description="MM_BIND_ADDRESS: address of /metrics and /healthz."
    )
    docs_url: str = Field(
        default="https://github.com/model-monitor/model-monitor/blob/main/docs/alerts.md",
        description="MM_DOCS_URL: base of per-alert runbook anchors.",
    )

    @field_validator("worker_image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @property
    def worker_text_image_ref(self) -> str:
        """The text variant of the worker image (``make image-text`` builds it: Dockerfile
        target ``text``)."""
        if self.worker_text_image:
            return self.worker_text_image
        image = self.worker_image
        if "@" in image:  # pinned by digest: no tag to derive from
            return image
        name, sep, tag = image.rpartition(":")
        if not sep or "/" in tag:  # no tag (the colon was a registry port)
            return f"{image}:latest-text"
        return f"{name}:{tag}-text"


ENV = {
    "namespaces": "MM_NAMESPACES",
    "worker_image": "MM_WORKER_IMAGE",
    "worker_image_pull_policy": "MM_WORKER_IMAGE_PULL_POLICY",
    "worker_text_image": "MM_WORKER_TEXT_IMAGE",
    "default_labels": "MM_DEFAULT_LABELS",
    "prometheus_url": "MM_PROMETHEUS_URL",
    "alertmanager_url": "MM_ALERTMANAGER_URL",
    "worker_url_template": "MM_WORKER_URL_TEMPLATE",
    "operator_namespace": "MM_OPERATOR_NAMESPACE",
    "operator_pod_labels": "MM_OPERATOR_POD_LABELS",
    "logger_ca_bundle": "MM_LOGGER_CA_BUNDLE",
    "logger_ca_file": "MM_LOGGER_CA_FILE",
    "status_interval": "MM_STATUS_INTERVAL",
    "metrics_port": "MM_METRICS_PORT",
    "health_port": "MM_HEALTH_PORT",
    "bind_address": "MM_BIND_ADDRESS",
    "docs_url": "MM_DOCS_URL",
}


def _parse_labels(text: str, var: str) -> dict[str, str]:
    labels = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"{var}: {part!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """Settings from ``environ``; a bad value raises ValueError naming the variable."""
    raw: dict[str, object] = {}
    for field, var in ENV.items():
        value = environ.get(var)
        if value is None or value == "":
            continue
        if field == "namespaces":
            raw[field] = [n.strip() for n in value.split(",") if n.strip()]
        elif field in ("default_labels", "operator_pod_labels"):
            raw[field] = _parse_labels(value, var)
        elif field == "status_interval":
            raw[field] = parse_duration(value) if value[-1].isalpha() else float(value)
        else:
            raw[field] = value
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        message = format_validation_error(e)
        for field, var in ENV.items():
            message = message.replace(f"{field}:", f"{var}:")
        raise ValueError(message) from None
