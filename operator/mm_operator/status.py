"""Observations -> status: conditions, health, summary and the events worth emitting (pure).

Health values:
- ``Healthy``: the worker runs, the window holds enough records, and no warning or critical
  alert fires.
- ``Warning`` / ``Critical``: at least one alert of that severity fires (info alerts do not
  change health).
- ``Unknown``: nothing trustworthy to say: the spec cannot be used, the target or the worker
  is missing, the worker is paused (``spec.worker.replicas: 0``, whatever alerts may still
  be resolving), the window has too few records, or the health source cannot be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .conditions import (
    HEALTHY,
    MONITORING_CONFIGURED,
    READY,
    TARGET_FOUND,
    WORKER_AVAILABLE,
    Condition,
    Reason,
    get_condition,
    set_condition,
)
from .observe import Problem, TargetState, WorkerState

SEVERITY_RANK = {"critical": 2, "warning": 1}


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    since: str | None = None
    summary: str = ""


@dataclass(frozen=True)
class HealthReading:
    """Firing alerts and key figures from the health source (Alertmanager, Prometheus, worker)."""

    source: str
    alerts: tuple[Alert, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)
    enough_data: bool | None = None  # None: the source cannot tell
    error: str | None = None


@dataclass(frozen=True)
class Observation:
    generation: int
    model: str
    spec_error: str | None = None
    problems: tuple[Problem, ...] = ()
    apply_error: str | None = None
    target: TargetState | None = None
    worker: WorkerState | None = None
    prometheus_operator: bool = True
    monitoring_wanted: bool = True
    #: spec.alerts.route is set but the AlertmanagerConfig API is not served.
    routing_unavailable: bool = False
    health: HealthReading | None = None
    worker_service: str | None = None
    children: tuple[str, ...] = ()
    key_metric: str | None = None


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def _conditions(obs: Observation) -> list[Condition]:
    conds: list[Condition] = []
    if obs.spec_error:
        conds.append(Condition(READY, "False", Reason.INVALID_SPEC, obs.spec_error))
        return conds
    if obs.problems:
        p = obs.problems[0]
        conds.append(Condition(READY, "False", p.reason, f"{p.field}: {p.message}"))
    elif obs.apply_error:
        conds.append(Condition(READY, "False", Reason.APPLY_FAILED, obs.apply_error))

    t = obs.target
    if t is not None:
        conds.append(Condition(TARGET_FOUND, "True" if t.found else "False", t.reason, t.message))
    w = obs.worker
    if w is not None:
        ok = w.exists and w.desired > 0 and w.available >= w.desired
        conds.append(Condition(WORKER_AVAILABLE, "True" if ok else "False", w.reason, w.message))
    if not obs.monitoring_wanted:
        conds.append(
            Condition(
                MONITORING_CONFIGURED, "False", Reason.DISABLED, "ServiceMonitor and rule disabled"
            )
        )
    elif obs.prometheus_operator and obs.routing_unavailable:
        conds.append(
            Condition(
                MONITORING_CONFIGURED,
                "False",
                Reason.ALERTMANAGER_CONFIG_MISSING,
                "ServiceMonitor and PrometheusRule applied, but spec.alerts.route is set and the "
                "AlertmanagerConfig API (monitoring.coreos.com/v1alpha1) is not installed: "
                "alerts are not routed to the team",
            )
        )
    elif obs.prometheus_operator:
        conds.append(
            Condition(
                MONITORING_CONFIGURED,
                "True",
                Reason.PROMETHEUS_OPERATOR,
                "ServiceMonitor and PrometheusRule applied",
            )
        )
    else:
        conds.append(
            Condition(
                MONITORING_CONFIGURED,
                "False",
                Reason.PROMETHEUS_OPERATOR_MISSING,
                "monitoring.coreos.com CRDs are not installed: the worker Service carries "
                "prometheus.io/scrape annotations instead, and no alert rules are installed",
            )
        )
    if not obs.problems and not obs.apply_error:
        target_ok = t is not None and t.found
        worker_ok = any(c.type == WORKER_AVAILABLE and c.status == "True" for c in conds)
        if target_ok and worker_ok:
            conds.insert(0, Condition(READY, "True", Reason.RECONCILED, "worker running and wired"))
        else:
            missing = [n for n, ok in (("target", target_ok), ("worker", worker_ok)) if not ok]
            conds.insert(
                0,
                Condition(
                    READY, "False", Reason.WAITING, f"waiting for the {' and the '.join(missing)}"
                ),
            )
    conds.append(_health_condition(obs))
    return conds


def health_of(obs: Observation) -> tuple[str, str, str]:
    """(health, reason, message)."""
    if obs.spec_error or obs.problems:
        return "Unknown", Reason.NOT_CONFIGURED, "the monitor is not configured (see Ready)"
    if obs.target is not None and not obs.target.found:
        return "Unknown", Reason.TARGET_NOT_FOUND, obs.target.message
    w = obs.worker
    if w is not None and w.desired == 0:
        # Paused: nothing is measured, so no alert (one still resolving, say) speaks for now.
        return "Unknown", Reason.WORKER_PAUSED, "spec.worker.replicas is 0 (paused)"
    h = obs.health
    firing = sorted(
        (a for a in (h.alerts if h else ()) if a.severity in SEVERITY_RANK),
        key=lambda a: -SEVERITY_RANK[a.severity],
    )
    if firing:
        worst = firing[0].severity
        names = ", ".join(sorted({a.name for a in firing if a.severity == worst}))
        return worst.capitalize(), Reason.ALERTS_FIRING, f"{worst} alerts firing: {names}"
    if w is not None and (not w.exists or w.available < w.desired):
        # The worker's own cause when it could be read (a reference or an estimator it refuses).
        cause = f"; {h.error}" if h is not None and h.error and "not ready" in h.error else ""
        return "Unknown", Reason.WORKER_UNAVAILABLE, w.message + cause
    if h is None:
        return "Unknown", Reason.NOT_EVALUATED, "no health reading yet"
    if h.error:
        return "Unknown", Reason.HEALTH_SOURCE_UNAVAILABLE, f"{h.source}: {h.error}"
    if h.enough_data is False:
        return "Unknown", Reason.INSUFFICIENT_DATA, "the window holds fewer records than minSamples"
    return "Healthy", Reason.NO_ALERTS, f"no warning or critical alerts ({h.source})"


def _health_condition(obs: Observation) -> Condition:
    health, reason, message = health_of(obs)
    status = {"Healthy": "True", "Unknown": "Unknown"}.get(health, "False")
    return Condition(HEALTHY, status, reason, message)


def compute_status(
    obs: Observation, previous: dict[str, Any] | None, now: str
) -> tuple[dict[str, Any], list[Event]]:
    """The new ``.status`` and the events for what changed since ``previous``."""
    previous = previous or {}
    new_conditions = _conditions(obs)
    wanted = {c.type for c in new_conditions}
    conditions = [c for c in previous.get("conditions") or [] if c.get("type") in wanted]
    for c in new_conditions:
        conditions = set_condition(conditions, c, obs.generation, now)
    health, _, health_message = health_of(obs)
    status: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "model": obs.model,
        "health": health,
        "conditions": conditions,
    }
    h = obs.health
    alerts = list(h.alerts) if h else []
    status["firingAlerts"] = [
        {
            k: v
            for k, v in (
                ("name", a.name),
                ("severity", a.severity),
                ("since", a.since),
                ("summary", a.summary),
            )
            if v
        }
        for a in alerts
    ]
    status["firingAlertCount"] = len(alerts)
    if h is not None:
        status["healthSource"] = h.source
        summary = _rounded(dict(h.summary))
        key = obs.key_metric
        if key and key in summary.get("quality", {}):
            summary["keyMetric"] = f"{key} {summary['quality'][key]:.3f}"
        elif key and key in summary.get("estimatedQuality", {}):  # no labels yet: the estimate
            summary["keyMetric"] = f"{key} {summary['estimatedQuality'][key]:.3f} (estimated)"
        status["summary"] = summary
        if h.error is None:
            status["lastEvaluationTime"] = now
    elif "summary" in previous:
        status["summary"] = previous["summary"]
    if obs.worker_service:
        status["workerService"] = obs.worker_service
    if obs.children:
        status["children"] = list(obs.children)
    return status, _events(previous, status, health_message)


def _rounded(summary: dict[str, Any]) -> dict[str, Any]:
    """Figures to 4 significant decimals: `kubectl get mm` shows 0.8333, not 0.8333333333333334."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, float):
            out[key] = round(value, 4)
        elif isinstance(value, dict):
            out[key] = {k: round(v, 4) if isinstance(v, float) else v for k, v in value.items()}
        else:
            out[key] = value
    return out


def _events(previous: dict[str, Any], status: dict[str, Any], health_message: str) -> list[Event]:
    events: list[Event] = []
    old_health = previous.get("health")
    if old_health != status["health"]:
        bad = status["health"] in ("Warning", "Critical")
        events.append(
            Event(
                "Warning" if bad else "Normal",
                f"Health{status['health']}",
                f"health {old_health or 'unset'} -> {status['health']}: {health_message}",
            )
        )
    old_conditions = previous.get("conditions") or []
    for c in status["conditions"]:
        if c["type"] == HEALTHY:
            continue
        old = get_condition(old_conditions, c["type"])
        if old is None or old.get("status") != c["status"] or old.get("reason") != c["reason"]:
            events.append(
                Event(
                    "Normal" if c["status"] == "True" else "Warning",
                    c["reason"],
                    f"{c['type']}={c['status']}: {c['message']}",
                )
            )
    return events
