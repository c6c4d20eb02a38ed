"""One table of alert definitions. The operator renders it to PromQL (the PrometheusRule);
the worker evaluates the same definitions on the samples it exports, for the ``violations``
of ``/v1/status`` (the operator's health source without Prometheus). A definition that needs
what only Prometheus has (scrape state, ``time()``, ranges) is :class:`PromQL` and is left to
Prometheus; every other is a :class:`Compare` of one exported series with a threshold, read the
same way on both sides. ``tests/prometheus/test_alert_agreement.py`` feeds one window to both
(promtool and :func:`evaluate`) and requires the same firing set.

Names are ``ModelMonitor<What>``; docs/alerts.md has one anchor per name."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from . import metrics as m
from .durations import parse_duration
from .metrics import Metric
from .sections import MonitorSections

PREFIX = "ModelMonitor"

#: Display names of quality metrics inside alert names (ModelMonitorAccuracyLow, ...).
METRIC_TITLES = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc-auc": "RocAuc",
    "log-loss": "LogLoss",
    "mae": "Mae",
    "mse": "Mse",
    "rmse": "Rmse",
    "r2": "R2",
    "mape": "Mape",
}

DATA_DRIFT = f"{PREFIX}DataDrift"
FEATURE_DRIFT = f"{PREFIX}FeatureDrift"
PREDICTION_DRIFT = f"{PREFIX}PredictionDrift"
OUTLIERS_HIGH = f"{PREFIX}OutliersHigh"
INSUFFICIENT_SAMPLES = f"{PREFIX}InsufficientSamples"
WORKER_DOWN = f"{PREFIX}WorkerDown"
WORKER_ABSENT = f"{PREFIX}WorkerAbsent"
NO_RECORDS = f"{PREFIX}NoRecords"
NO_LABELS = f"{PREFIX}NoLabels"
BUDGET_BURN = f"{PREFIX}AccuracyBudgetBurn"
MEASURE_HIGH = f"{PREFIX}MeasureHigh"
MEASURE_LOW = f"{PREFIX}MeasureLow"

#: Multi-window, multi-burn-rate alerting (Google SRE workbook, ch. 5), as Sloth and Pyrra do:
#: (long window, short window, burn-rate factor, severity).
BURN_RATE_WINDOWS = (
    ("1h", "5m", 14.4, "critical"),
    ("6h", "30m", 6.0, "critical"),
    ("1d", "2h", 3.0, "warning"),
    ("3d", "6h", 1.0, "warning"),
)


def quality_alert(metric: str, bound: str) -> str:
    """``bound`` is "min" (alert when below) or "max" (alert when above)."""
    return f"{PREFIX}{METRIC_TITLES[metric]}{'Low' if bound == 'min' else 'High'}"


# -- samples and conditions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One exported series at one instant: its name as PromQL sees it (``metric.series``), its
    own labels beyond the common ``modelmonitor``/``model``, and its value."""

    series: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


Op = Literal["<", ">", ">=", "=="]
_OPS = {"<": operator.lt, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Compare:
    """``<metric>{<matchers>} <op> <threshold>``: fires once per matching series for which the
    comparison holds. ``value_of`` / ``threshold_of`` name what a firing reports as its value and
    threshold (a companion series with the same labels, or a number), when not the compared
    series and the threshold themselves."""

    metric: Metric
    op: Op
    threshold: float
    matchers: tuple[tuple[str, str], ...] = ()
    value_of: Metric | None = None
    threshold_of: Metric | float | None = None

    def promql(self, selector: str) -> str:
        """The condition over every replica's copy of the series: replicas sharing a store
        export the same merged figures, so the maximum per monitor (and per the series' own
        labels) is the monitor's figure, once."""
        matchers = "".join(f', {k}="{v}"' for k, v in self.matchers)
        by = ", ".join(("namespace", *self.metric.all_labels))
        series = f"{self.metric.series}{{{selector}{matchers}}}"
        return f"max by ({by}) ({series}) {self.op} {self.threshold:g}"

    def firing(self, samples: Mapping[str, list[Sample]]) -> Iterable[tuple[Sample, float, float]]:
        """(sample, value, threshold) of each series for which the comparison holds."""
        compare = _OPS[self.op]
        for s in samples.get(self.metric.series, ()):
            if not all(s.label(k) == v for k, v in self.matchers):
                continue
            if not compare(s.value, self.threshold):
                continue
            value = _companion(samples, self.value_of, s) if self.value_of else s.value
            if isinstance(self.threshold_of, Metric):
                threshold = _companion(samples, self.threshold_of, s)
            else:
                threshold = self.threshold if self.threshold_of is None else self.threshold_of
            yield s, value, threshold


def _companion(samples: Mapping[str, list[Sample]], metric: Metric, like: Sample) -> float:
    for s in samples.get(metric.series, ()):
        if s.labels == like.labels:
            return s.value
    return float("nan")


@dataclass(frozen=True)
class PromQL:
    """An expression only Prometheus can evaluate (target state, ``time()``, ranges);
    ``{sel}`` is the monitor's selector, ``{job}`` the worker's scrape job selector."""

    template: str

    def promql(self, selector: str, job: str) -> str:
        return self.template.format(sel=selector, job=job)


@dataclass(frozen=True)
class AlertDef:
    """One alert: its condition, severity, Prometheus annotations (Go templates) and the
    message the worker writes for it in ``/v1/status`` (a Python format string over
    ``value``, ``threshold`` and the series' labels)."""

    name: str
    severity: str
    condition: Compare | PromQL
    summary: str
    description: str
    message: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    for_: str | None = None

    @property
    def evaluated_by_worker(self) -> bool:
        return isinstance(self.condition, Compare)


@dataclass(frozen=True)
class MonitorRef:
    """Who the rules are for: the ModelMonitor's namespace and name, and the model's name."""

    namespace: str
    name: str
    model: str

    @property
    def selector(self) -> str:
        return f'namespace="{self.namespace}", modelmonitor="{self.name}"'

    @property
    def job(self) -> str:
        """The worker's scrape job (the Service's name, via its ServiceMonitor)."""
        return f'namespace="{self.namespace}", job="mm-{self.name}"'


# -- the table -----------------------------------------------------------------------------------


def alert_definitions(ref: MonitorRef, sections: MonitorSections) -> list[AlertDef]:
    """Every alert of one monitor, in the order of its PrometheusRule (objective rules apart:
    :func:`objective_rules`). Empty when ``alerts.enabled`` is false."""
    if not sections.alerts.enabled:
        return []
    return (
        _quality(ref, sections)
        + _drift(ref, sections)
        + _outliers(ref, sections)
        + _measures(ref, sections)
        + _builtin(ref, sections)
    )


def _quality(ref: MonitorRef, s: MonitorSections) -> list[AlertDef]:
    out = []
    for t in s.quality.thresholds:
        severity = t.severity or s.alerts.severity
        for bound, op, kind, word in ((t.min, "<", "min", "below"), (t.max, ">", "max", "above")):
            if bound is None:
                continue
            out.append(
                AlertDef(
                    quality_alert(t.metric, kind),
                    severity,
                    Compare(m.QUALITY, op, bound, (("metric", t.metric),)),  # type: ignore[arg-type]
                    summary=f"{t.metric} of model {ref.model} is {word} {bound:g}",
                    description=(
                        f"{t.metric} of model {ref.model} ({ref.namespace}/{ref.name}) is "
                        f'{{{{ $value | printf "%.4g" }}}} over the current window; the '
                        f"threshold is {kind} {bound:g}."
                    ),
                    message=(
                        f"{t.metric} is {{value:.4g}}, {word} the "
                        f"{'minimum' if kind == 'min' else 'maximum'} {{threshold:g}}"
                    ),
                    labels={"metric": t.metric},
                )
            )
    return out


def _drift(ref: MonitorRef, s: MonitorSections) -> list[AlertDef]:
    if not s.drift.enabled:
        return []
    share = s.drift.share_threshold
    out = [
        AlertDef(
            DATA_DRIFT,
            s.alerts.severity,
            Compare(m.DRIFT_SHARE, ">=", share),
            summary=f"Input data of model {ref.model} drifted",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the features of model {ref.model} "
                f"({ref.namespace}/{ref.name}) drifted from the reference; the "
                f"threshold is {share:.0%}."
            ),
            message="{value:.0%} of features drifted (threshold {threshold:.0%})",
        ),
        AlertDef(
            FEATURE_DRIFT,
            "info",
            Compare(
                m.FEATURE_DRIFT_DETECTED,
                "==",
                1,
                value_of=m.FEATURE_DRIFT_SCORE,
                threshold_of=m.FEATURE_DRIFT_THRESHOLD,
            ),
            summary=f"Feature {{{{ $labels.feature }}}} of model {ref.model} drifted",
            description=(
                f"Feature {{{{ $labels.feature }}}} of model {ref.model} drifted from the reference "
                f"({{{{ $labels.method }}}} test; see modelmonitor_feature_drift_score for the "
                f"statistic and docs/drift.md for its threshold)."
            ),
            message="feature {feature} drifted ({method})",
        ),
    ]
    if s.drift.prediction.enabled:
        out.append(
            AlertDef(
                PREDICTION_DRIFT,
                s.alerts.severity,
                Compare(
                    m.PREDICTION_DRIFT_DETECTED,
                    "==",
                    1,
                    value_of=m.PREDICTION_DRIFT_SCORE,
                    threshold_of=m.PREDICTION_DRIFT_THRESHOLD,
                ),
                summary=f"Predictions of model {ref.model} drifted",
                description=(
                    f"The distribution of predictions of model {ref.model} "
                    f"({ref.namespace}/{ref.name}) drifted from the reference "
                    f"({{{{ $labels.method }}}} test)."
                ),
                message="predictions drifted ({method})",
            )
        )
    return out


def _outliers(ref: MonitorRef, s: MonitorSections) -> list[AlertDef]:
    o = s.outliers
    if not o.enabled:
        return []
    return [
        AlertDef(
            OUTLIERS_HIGH,
            s.alerts.severity,
            Compare(m.OUTLIER_RATIO, ">", o.max_ratio),
            summary=f"Too many outliers reach model {ref.model}",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of recent inputs of model "
                f"{ref.model} are outliers ({o.method}); the threshold is {o.max_ratio:.2%}."
            ),
            message="{value:.2%} outliers (threshold {threshold:.2%})",
        )
    ]


def _measures(ref: MonitorRef, s: MonitorSections) -> list[AlertDef]:
    """One alert per bound of a serving measure's quantile (``measures[].thresholds``)."""
    out = []
    for measure in s.measures:
        for t in measure.thresholds:
            severity = t.severity or s.alerts.severity
            for bound, op, name, word in (
                (t.max, ">", MEASURE_HIGH, "above"),
                (t.min, "<", MEASURE_LOW, "below"),
            ):
                if bound is None:
                    continue
                what = f"{t.quantile} of {measure.name}"
                out.append(
                    AlertDef(
                        name,
                        severity,
                        Compare(
                            m.MEASURE_QUANTILE,
                            op,  # type: ignore[arg-type]
                            bound,
                            (("measure", measure.name), ("quantile", t.quantile)),
                        ),
                        summary=f"{what} of model {ref.model} is {word} {bound:g}",
                        description=(
                            f"The {what} of model {ref.model} ({ref.namespace}/{ref.name}) is "
                            f'{{{{ $value | printf "%.4g" }}}} over the current window; the '
                            f"threshold is {'max' if op == '>' else 'min'} {bound:g}."
                        ),
                        message=f"{what} is {{value:.4g}}, {word} {{threshold:g}}",
                        labels={"measure": measure.name, "quantile": t.quantile},
                    )
                )
    return out


def _builtin(ref: MonitorRef, s: MonitorSections) -> list[AlertDef]:
    a = s.alerts
    worker = f"mm-{ref.name}"
    out = [
        AlertDef(
            WORKER_DOWN,
            "critical",
            PromQL("up{{{job}}} == 0"),
            summary=f"The monitor worker of model {ref.model} is down",
            description=(
                f"Prometheus cannot scrape the monitor worker {worker} in "
                f"{ref.namespace}: no quality, drift or outlier figures are being computed."
            ),
        ),
        AlertDef(
            WORKER_ABSENT,
            "critical",
            PromQL("absent(up{{{job}}})"),
            summary=f"No monitor worker of model {ref.model} is scraped",
            description=(
                f"Prometheus has no target for the monitor worker {worker} in "
                f"{ref.namespace}: check the ServiceMonitor and the worker Deployment."
            ),
        ),
        AlertDef(
            NO_RECORDS,
            "warning",
            PromQL(
                f"time() - max by (namespace, modelmonitor, model) "
                f"({m.LAST_RECORD_TIMESTAMP.series}{{{{{{sel}}}}}}) > "
                f"{int(parse_duration(a.no_records_for))}"
            ),
            summary=f"Model {ref.model} sends no records",
            description=(
                f"The monitor of model {ref.model} has received no records for "
                f"{{{{ $value | humanizeDuration }}}}; the limit is {a.no_records_for}."
            ),
        ),
        AlertDef(
            INSUFFICIENT_SAMPLES,
            "info",
            Compare(
                m.WINDOW_SUFFICIENT,
                "==",
                0,
                value_of=m.WINDOW_RECORDS,
                threshold_of=float(s.window.min_samples),
            ),
            summary=f"Too few records in the window of model {ref.model}",
            description=(
                f"The current window of model {ref.model} holds fewer than "
                f"{s.window.min_samples} records, so its figures are withheld."
            ),
            message="{value:.0f} records in the window, fewer than {threshold:.0f}",
        ),
    ]
    if s.quality.thresholds:
        out.append(
            AlertDef(
                NO_LABELS,
                "warning",
                PromQL(
                    f"time() - max by (namespace, modelmonitor, model) "
                    f"({m.LAST_LABEL_TIMESTAMP.series}{{{{{{sel}}}}}}) > "
                    f"{int(parse_duration(a.no_labels_for))}"
                ),
                summary=f"No labels arrive for model {ref.model}",
                description=(
                    f"No ground-truth labels for model {ref.model} for "
                    f"{{{{ $value | humanizeDuration }}}} (limit {a.no_labels_for}): its "
                    "quality thresholds cannot be checked."
                ),
            )
        )
    return out


def objective_rules(
    ref: MonitorRef, sections: MonitorSections
) -> tuple[list[dict[str, object]], list[AlertDef]]:
    """Recording rules and burn-rate alerts of ``alerts.objective`` (Prometheus only)."""
    objective = sections.alerts.objective
    if objective is None or not sections.alerts.enabled:
        return [], []
    sel = ref.selector
    budget = 1 - objective.target
    windows = sorted(
        {w for long, short, _, _ in BURN_RATE_WINDOWS for w in (long, short)}, key=parse_duration
    )
    correct, labelled = m.PREDICTIONS_CORRECT.series, m.PREDICTIONS_LABELLED.series
    recording: list[dict[str, object]] = [
        {
            "record": f"modelmonitor:error_ratio:rate{w}",
            "expr": (
                f"1 - sum by (namespace, modelmonitor) (increase({correct}{{{sel}}}[{w}]))"
                f" / sum by (namespace, modelmonitor) (increase({labelled}{{{sel}}}[{w}]))"
            ),
            "labels": {"model": ref.model},
        }
        for w in windows
    ]
    alerts = []
    for long, short, factor, severity in BURN_RATE_WINDOWS:
        threshold = factor * budget
        alerts.append(
            AlertDef(
                BUDGET_BURN,
                severity,
                PromQL(
                    f"modelmonitor:error_ratio:rate{long}{{{{{{sel}}}}}} > {threshold:.6g}"
                    f" and modelmonitor:error_ratio:rate{short}{{{{{{sel}}}}}} > {threshold:.6g}"
                ),
                summary=f"Model {ref.model} burns its accuracy error budget fast",
                description=(
                    f"Error ratio over {long} is {{{{ $value | humanizePercentage }}}}, {factor:g}x "
                    f"the budget of {budget:.2%} (objective: accuracy {objective.target:g} over "
                    f"{objective.period}); at this rate the budget is spent early."
                ),
                labels={"long_window": long, "short_window": short},
                for_="2m" if severity == "critical" else "15m",
            )
        )
    return recording, alerts


# -- evaluation on the worker's samples ---------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """An alert whose condition holds on the current samples (no ``for:`` delay)."""

    alert: str
    severity: str
    value: float
    threshold: float
    message: str
    labels: dict[str, str] = field(default_factory=dict)


def index_samples(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.series, []).append(s)
    return out


def evaluate(definitions: Iterable[AlertDef], samples: Iterable[Sample]) -> list[Firing]:
    """The firing set of ``definitions`` over ``samples``, as Prometheus would compute it at
    this instant for every :class:`Compare` definition."""
    by_series = index_samples(samples)
    out = []
    for d in definitions:
        if not isinstance(d.condition, Compare):
            continue
        for s, value, threshold in d.condition.firing(by_series):
            labels = {**dict(s.labels), **d.labels}
            out.append(
                Firing(
                    d.name,
                    d.severity,
                    value,
                    threshold,
                    d.message.format(value=value, threshold=threshold, **labels),
                    labels,
                )
            )
    return out
