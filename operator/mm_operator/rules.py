"""Prometheus alerting and recording rules for one ModelMonitor (pure).

Every alert is named ``ModelMonitor<What>``, carries ``severity``, ``namespace``,
``modelmonitor`` and ``model`` labels plus the spec's own labels, and annotations whose
description states the current value and the threshold. The worker's metric names are
documented in docs/metrics.md; the alerts in docs/alerts.md (one anchor per alert)."""

from __future__ import annotations

from typing import Any

from monitor_worker import alerts as names
from monitor_worker.config import parse_duration

from .settings import Settings
from .spec import Monitor

# Multi-window, multi-burn-rate alerting (Google SRE workbook, ch. 5), as Sloth and Pyrra do:
# (long window, short window, burn-rate factor, severity).
BURN_RATE_WINDOWS = (
    ("1h", "5m", 14.4, "critical"),
    ("6h", "30m", 6.0, "critical"),
    ("1d", "2h", 3.0, "warning"),
    ("3d", "6h", 1.0, "warning"),
)


def selector(monitor: Monitor) -> str:
    return f'namespace="{monitor.namespace}", modelmonitor="{monitor.name}"'


def worker_job(monitor: Monitor) -> str:
    """The ``job`` label Prometheus gives the worker (the Service's name via ServiceMonitor)."""
    return f"mm-{monitor.name}"


def runbook_url(monitor: Monitor, settings: Settings, alert: str) -> str:
    base = monitor.spec.alerts.runbook_url or settings.docs_url
    return f"{base}#{alert.lower()}"


def _alert(
    monitor: Monitor,
    settings: Settings,
    name: str,
    expr: str,
    *,
    severity: str,
    summary: str,
    description: str,
    extra_labels: dict[str, str] | None = None,
    for_: str | None = None,
) -> dict[str, Any]:
    alerts = monitor.spec.alerts
    labels = {
        **alerts.labels,
        "severity": severity,
        "namespace": monitor.namespace,
        "modelmonitor": monitor.name,
        "model": monitor.model_name,
        **(extra_labels or {}),
    }
    annotations = {
        "summary": summary,
        "description": description,
        "runbook_url": runbook_url(monitor, settings, name),
    }
    if alerts.dashboard_url:
        annotations["dashboard_url"] = alerts.dashboard_url
    return {
        "alert": name,
        "expr": expr,
        "for": for_ or alerts.for_,
        "labels": labels,
        "annotations": annotations,
    }


def quality_alerts(monitor: Monitor, settings: Settings) -> list[dict[str, Any]]:
    sel = selector(monitor)
    model = monitor.model_name
    rules = []
    for t in monitor.spec.quality.thresholds:
        severity = t.severity or monitor.spec.alerts.severity
        series = f'modelmonitor_quality{{{sel}, metric="{t.metric}"}}'
        for bound, op, kind in ((t.min, "<", "min"), (t.max, ">", "max")):
            if bound is None:
                continue
            rules.append(
                _alert(
                    monitor,
                    settings,
                    names.quality_alert(t.metric, kind),
                    f"{series} {op} {bound:g}",
                    severity=severity,
                    summary=f"{t.metric} of model {model} is {'below' if op == '<' else 'above'} {bound:g}",
                    description=(
                        f"{t.metric} of model {model} ({monitor.namespace}/{monitor.name}) is "
                        f'{{{{ $value | printf "%.4g" }}}} over the current window; the '
                        f"threshold is {'min' if op == '<' else 'max'} {bound:g}."
                    ),
                    extra_labels={"metric": t.metric},
                )
            )
    return rules


def drift_alerts(monitor: Monitor, settings: Settings) -> list[dict[str, Any]]:
    spec = monitor.spec
    if not spec.drift.enabled:
        return []
    sel = selector(monitor)
    model = monitor.model_name
    share = spec.drift.share_threshold
    rules = [
        _alert(
            monitor,
            settings,
            names.DATA_DRIFT,
            f"modelmonitor_drift_share{{{sel}}} >= {share:g}",
            severity=spec.alerts.severity,
            summary=f"Input data of model {model} drifted",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the features of model {model} "
                f"({monitor.namespace}/{monitor.name}) drifted from the reference; the "
                f"threshold is {share:.0%}."
            ),
        ),
        _alert(
            monitor,
            settings,
            names.FEATURE_DRIFT,
            f"modelmonitor_feature_drift_detected{{{sel}}} == 1",
            severity="info",
            summary=f"Feature {{{{ $labels.feature }}}} of model {model} drifted",
            description=(
                f"Feature {{{{ $labels.feature }}}} of model {model} drifted from the reference "
                f"({{{{ $labels.method }}}} test; see modelmonitor_feature_drift_score for the "
                f"statistic and docs/drift.md for its threshold)."
            ),
        ),
    ]
    if spec.drift.prediction.enabled:
        rules.append(
            _alert(
                monitor,
                settings,
                names.PREDICTION_DRIFT,
                f"modelmonitor_prediction_drift_detected{{{sel}}} == 1",
                severity=spec.alerts.severity,
                summary=f"Predictions of model {model} drifted",
                description=(
                    f"The distribution of predictions of model {model} "
                    f"({monitor.namespace}/{monitor.name}) drifted from the reference "
                    f"({{{{ $labels.method }}}} test)."
                ),
            )
        )
    return rules


def outlier_alerts(monitor: Monitor, settings: Settings) -> list[dict[str, Any]]:
    o = monitor.spec.outliers
    if not o.enabled:
        return []
    sel = selector(monitor)
    return [
        _alert(
            monitor,
            settings,
            names.OUTLIERS_HIGH,
            f"modelmonitor_outlier_ratio{{{sel}}} > {o.max_ratio:g}",
            severity=monitor.spec.alerts.severity,
            summary=f"Too many outliers reach model {monitor.model_name}",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of recent inputs of model "
                f"{monitor.model_name} are outliers ({o.method}); the threshold is "
                f"{o.max_ratio:.2%}."
            ),
        )
    ]


def builtin_alerts(monitor: Monitor, settings: Settings) -> list[dict[str, Any]]:
    sel = selector(monitor)
    job = f'namespace="{monitor.namespace}", job="{worker_job(monitor)}"'
    alerts = monitor.spec.alerts
    model = monitor.model_name
    rules = [
        _alert(
            monitor,
            settings,
            names.WORKER_DOWN,
            f"up{{{job}}} == 0",
            severity="critical",
            summary=f"The monitor worker of model {model} is down",
            description=(
                f"Prometheus cannot scrape the monitor worker {worker_job(monitor)} in "
                f"{monitor.namespace}: no quality, drift or outlier figures are being computed."
            ),
        ),
        _alert(
            monitor,
            settings,
            names.WORKER_ABSENT,
            f"absent(up{{{job}}})",
            severity="critical",
            summary=f"No monitor worker of model {model} is scraped",
            description=(
                f"Prometheus has no target for the monitor worker {worker_job(monitor)} in "
                f"{monitor.namespace}: check the ServiceMonitor and the worker Deployment."
            ),
        ),
        _alert(
            monitor,
            settings,
            names.NO_RECORDS,
            f"time() - modelmonitor_last_record_timestamp_seconds{{{sel}}} > "
            f"{_seconds(alerts.no_records_for)}",
            severity="warning",
            summary=f"Model {model} sends no records",
            description=(
                f"The monitor of model {model} has received no records for "
                f"{{{{ $value | humanizeDuration }}}}; the limit is {alerts.no_records_for}."
            ),
        ),
        _alert(
            monitor,
            settings,
            names.INSUFFICIENT_SAMPLES,
            f"modelmonitor_window_sufficient{{{sel}}} == 0",
            severity="info",
            summary=f"Too few records in the window of model {model}",
            description=(
                f"The current window of model {model} holds fewer than "
                f"{monitor.spec.window.min_samples} records, so its figures are withheld."
            ),
        ),
    ]
    if monitor.spec.quality.thresholds:
        rules.append(
            _alert(
                monitor,
                settings,
                names.NO_LABELS,
                f"time() - modelmonitor_last_label_timestamp_seconds{{{sel}}} > "
                f"{_seconds(alerts.no_labels_for)}",
                severity="warning",
                summary=f"No labels arrive for model {model}",
                description=(
                    f"No ground-truth labels for model {model} for "
                    f"{{{{ $value | humanizeDuration }}}} (limit {alerts.no_labels_for}): its "
                    "quality thresholds cannot be checked."
                ),
            )
        )
    return rules


def objective_groups(monitor: Monitor, settings: Settings) -> list[dict[str, Any]]:
    objective = monitor.spec.alerts.objective
    if objective is None:
        return []
    sel = selector(monitor)
    budget = 1 - objective.target
    windows = sorted(
        {w for long, short, _, _ in BURN_RATE_WINDOWS for w in (long, short)}, key=_seconds
    )
    recording = [
        {
            "record": f"modelmonitor:error_ratio:rate{w}",
            "expr": (
                f"1 - sum by (namespace, modelmonitor) (increase(modelmonitor_predictions_correct_total{{{sel}}}[{w}]))"
                f" / sum by (namespace, modelmonitor) (increase(modelmonitor_predictions_labelled_total{{{sel}}}[{w}]))"
            ),
            "labels": {"model": monitor.model_name},
        }
        for w in windows
    ]
    alerts = []
    for long, short, factor, severity in BURN_RATE_WINDOWS:
        threshold = factor * budget
        alerts.append(
            _alert(
                monitor,
                settings,
                names.BUDGET_BURN,
                f"modelmonitor:error_ratio:rate{long}{{{sel}}} > {threshold:.6g}"
                f" and modelmonitor:error_ratio:rate{short}{{{sel}}} > {threshold:.6g}",
                severity=severity,
                summary=f"Model {monitor.model_name} burns its accuracy error budget fast",
                description=(
                    f"Error ratio over {long} is {{{{ $value | humanizePercentage }}}}, {factor:g}x "
                    f"the budget of {budget:.2%} (objective: accuracy {objective.target:g} over "
                    f"{objective.period}); at this rate the budget is spent early."
                ),
                extra_labels={"long_window": long, "short_window": short},
                for_="2m" if severity == "critical" else "15m",
            )
        )
    return [
        {
            "name": f"modelmonitor.{monitor.namespace}.{monitor.name}.slo",
            "rules": recording + alerts,
        }
    ]


def render_rule_groups(monitor: Monitor, settings: Settings) -> list[dict[str, Any]]:
    """All rule groups of a monitor, as the PrometheusRule's ``spec.groups``."""
    if not monitor.spec.alerts.enabled:
        return []
    rules = (
        quality_alerts(monitor, settings)
        + drift_alerts(monitor, settings)
        + outlier_alerts(monitor, settings)
        + builtin_alerts(monitor, settings)
    )
    return [
        {"name": f"modelmonitor.{monitor.namespace}.{monitor.name}", "rules": rules},
        *objective_groups(monitor, settings),
    ]


def _seconds(duration: str) -> int:
    return int(parse_duration(duration))
