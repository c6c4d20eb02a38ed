"""The PrometheusRule's groups for one ModelMonitor (pure): the shared alert table of
:mod:`mm_api.alerts`, rendered to PromQL, and the serving-health group on the target's pods.

Every alert is named ``ModelMonitor<What>``, carries ``severity``, ``namespace``,
``modelmonitor`` and ``model`` labels plus the spec's own labels, and annotations whose
description states the current value and the threshold. docs/alerts.md has one anchor per
alert; docs/metrics.md names the series."""

from __future__ import annotations

from typing import Any

from mm_api.alerts import (
    WORKER_ABSENT,
    WORKER_DOWN,
    AlertDef,
    Compare,
    ServingTarget,
    alert_definitions,
    objective_rules,
    serving_rules,
)
from mm_api.panels import dashboard_link

from .settings import Settings
from .spec import Monitor


def runbook_url(monitor: Monitor, settings: Settings, alert: str) -> str:
    base = monitor.spec.alerts.runbook_url or settings.docs_url
    return f"{base}#{alert.lower()}"


def render_rule(monitor: Monitor, settings: Settings, d: AlertDef) -> dict[str, Any]:
    alerts = monitor.spec.alerts
    ref = monitor.ref
    if isinstance(d.condition, Compare):
        expr = d.condition.promql(ref.selector)
    else:
        expr = d.condition.promql(ref.selector, ref.job)
    annotations = {
        "summary": d.summary,
        "description": d.description,
        "runbook_url": runbook_url(monitor, settings, d.name),
    }
    if alerts.dashboard_url:
        # The panel that shows this alert's series, with the dashboard set to this monitor.
        annotations["dashboard_url"] = dashboard_link(
            alerts.dashboard_url, ref.namespace, ref.name, d.panel
        )
    return {
        "alert": d.name,
        "expr": expr,
        "for": d.for_ or alerts.for_,
        "labels": {
            **alerts.labels,
            "severity": d.severity,
            "namespace": ref.namespace,
            "modelmonitor": ref.name,
            "model": ref.model,
            **d.labels,
        },
        "annotations": annotations,
    }


#: Alerts on the worker being scraped: a paused worker (``spec.worker.replicas: 0``) is absent
#: on purpose, so they are not rendered for it.
WORKER_PRESENCE = (WORKER_DOWN, WORKER_ABSENT)


def serving_target(monitor: Monitor, target_gpu: bool = False) -> ServingTarget:
    ref = monitor.spec.model.target_ref
    return ServingTarget(ref.kind, ref.name, target_gpu)


def render_rule_groups(
    monitor: Monitor, settings: Settings, *, target_gpu: bool = False
) -> list[dict[str, Any]]:
    """All rule groups of a monitor, as the PrometheusRule's ``spec.groups``. ``target_gpu``:
    the target's pods request NVIDIA GPUs (GPU rules when ``servingHealth.gpu`` is auto)."""
    definitions = alert_definitions(monitor.ref, monitor.spec)
    if monitor.spec.worker.replicas == 0:
        definitions = [d for d in definitions if d.name not in WORKER_PRESENCE]
    if not definitions:
        return []
    groups = [
        {
            "name": f"modelmonitor.{monitor.namespace}.{monitor.name}",
            "rules": [render_rule(monitor, settings, d) for d in definitions],
        }
    ]
    recording, burn = objective_rules(monitor.ref, monitor.spec)
    if recording:
        groups.append(
            {
                "name": f"modelmonitor.{monitor.namespace}.{monitor.name}.slo",
                "rules": recording + [render_rule(monitor, settings, d) for d in burn],
            }
        )
    recording, serving = serving_rules(
        monitor.ref,
        serving_target(monitor, target_gpu),
        monitor.spec,
        monitor.spec.alerts.serving_health,
    )
    if serving:
        # Recording rule first: rules of a group run in order, so the alerts read this
        # evaluation's pod set.
        groups.append(
            {
                "name": f"modelmonitor.{monitor.namespace}.{monitor.name}.serving",
                "rules": recording + [render_rule(monitor, settings, d) for d in serving],
            }
        )
    return groups
