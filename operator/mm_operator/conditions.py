"""Conditions in the metav1.Condition shape. One helper sets a condition: it keeps
lastTransitionTime unless the status changes and always stamps observedGeneration."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

READY = "Ready"
TARGET_FOUND = "TargetFound"
WORKER_AVAILABLE = "WorkerAvailable"
MONITORING_CONFIGURED = "MonitoringConfigured"
HEALTHY = "Healthy"
CONDITION_ORDER = (READY, TARGET_FOUND, WORKER_AVAILABLE, MONITORING_CONFIGURED, HEALTHY)


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    existing: list[dict[str, Any]], new: Condition, generation: int, now: str
) -> list[dict[str, Any]]:
    """Return ``existing`` with ``new`` merged in (a new list; the input is not changed)."""
    out = [dict(c) for c in existing if c.get("type") != new.type]
    previous = next((c for c in existing if c.get("type") == new.type), None)
    transition = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == new.status and previous.get("lastTransitionTime")
        else now
    )
    out.append(
        {
            "type": new.type,
            "status": new.status,
            "reason": new.reason,
            "message": new.message,
            "observedGeneration": generation,
            "lastTransitionTime": transition,
        }
    )
    order = {t: i for i, t in enumerate(CONDITION_ORDER)}
    return sorted(out, key=lambda c: order.get(c["type"], len(order)))


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


class Reason:
    """Every condition reason the operator writes (CamelCase, as Kubernetes conventions ask).
    Decisions compare against these names, never against literals."""

    # Ready
    RECONCILED = "Reconciled"
    WAITING = "Waiting"
    INVALID_SPEC = "InvalidSpec"
    APPLY_FAILED = "ApplyFailed"
    REFERENCE_NOT_FOUND = "ReferenceNotFound"
    CERT_MANAGER_MISSING = "CertManagerMissing"
    # TargetFound
    FOUND = "Found"
    NOT_FOUND = "NotFound"
    KIND_NOT_INSTALLED = "KindNotInstalled"
    # WorkerAvailable
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    NOT_CREATED = "NotCreated"
    REPLICA_FAILURE = "ReplicaFailure"
    # MonitoringConfigured
    PROMETHEUS_OPERATOR = "PrometheusOperator"
    PROMETHEUS_OPERATOR_MISSING = "PrometheusOperatorMissing"
    ALERTMANAGER_CONFIG_MISSING = "AlertmanagerConfigMissing"
    DISABLED = "Disabled"
    # Healthy
    NO_ALERTS = "NoAlerts"
    ALERTS_FIRING = "AlertsFiring"
    NOT_CONFIGURED = "NotConfigured"
    TARGET_NOT_FOUND = "TargetNotFound"
    WORKER_PAUSED = "WorkerPaused"
    WORKER_UNAVAILABLE = "WorkerUnavailable"
    NOT_EVALUATED = "NotEvaluated"
    HEALTH_SOURCE_UNAVAILABLE = "HealthSourceUnavailable"
    INSUFFICIENT_DATA = "InsufficientData"

    #: Ready reasons after which a refresh reconciles again (the last attempt did not finish).
    UNFINISHED = (None, APPLY_FAILED, REFERENCE_NOT_FOUND, CERT_MANAGER_MISSING, INVALID_SPEC)
