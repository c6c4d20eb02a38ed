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

from . import exporters as x
from . import metrics as m
from .alerting import ServingHealthSpec
from .durations import parse_duration
from .metrics import KEYED_LABELS, KEYED_METRICS, Metric
from .sections import (
    ESTIMATED_CLASSIFICATION_METRICS,
    ESTIMATED_REGRESSION_METRICS,
    MonitorSections,
)

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
SERVING_CPU_THROTTLED = f"{PREFIX}ServingCpuThrottled"
SERVING_CPU_NEAR_LIMIT = f"{PREFIX}ServingCpuNearLimit"
SERVING_MEMORY_NEAR_LIMIT = f"{PREFIX}ServingMemoryNearLimit"
SERVING_OOM_KILLED = f"{PREFIX}ServingOOMKilled"
SERVING_RESTARTING = f"{PREFIX}ServingRestarting"
SERVING_REPLICAS_UNAVAILABLE = f"{PREFIX}ServingReplicasUnavailable"
SERVING_GPU_SATURATED = f"{PREFIX}ServingGpuSaturated"
SERVING_GPU_MEMORY_NEAR_LIMIT = f"{PREFIX}ServingGpuMemoryNearLimit"
SERVING_LATENCY_HIGH = f"{PREFIX}ServingLatencyHigh"
SERVING_ERRORS_HIGH = f"{PREFIX}ServingErrorsHigh"
ESTIMATED_OUTSIDE_BAND = f"{PREFIX}EstimatedQualityOutsideBand"
MULTIVARIATE_DRIFT = f"{PREFIX}MultivariateDrift"
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


def estimated_quality_alert(metric: str, bound: str) -> str:
    """The alert of a quality threshold applied to the estimate (ModelMonitorEstimatedAccuracyLow)."""
    return f"{PREFIX}Estimated{METRIC_TITLES[metric]}{'Low' if bound == 'min' else 'High'}"


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
        labels, and per KServe endpoint and segment) is the monitor's figure, once."""
        matchers = "".join(f', {k}="{v}"' for k, v in self.matchers)
        # A keyed window's series (KServe canary, segments) is a figure of its own; the main
        # window's lack these labels, so its result keeps exactly the labels it always had.
        keyed = KEYED_LABELS if self.metric in KEYED_METRICS else ()
        by = ", ".join(("namespace", *self.metric.all_labels, *keyed))
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

    @classmethod
    def literal(cls, expr: str) -> PromQL:
        """An expression written out in full (no ``{sel}``/``{job}`` placeholders)."""
        return cls(expr.replace("{", "{{").replace("}", "}}"))

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
    #: The dashboard panel that shows its series (:data:`mm_api.panels.PANEL_IDS`).
    panel: str = "firing_alerts"

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
        + _estimated_quality(ref, sections)
        + _drift(ref, sections)
        + _multivariate_drift(ref, sections)
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
                    panel="quality",
                )
            )
    return out


def _estimated_quality(ref: MonitorRef, s: MonitorSections) -> list[AlertDef]:
    """The quality thresholds applied to the label-free estimates, and NannyML's own alert (the
    estimate outside the reference band, severity info). The estimates' series exist only while
    the worker estimates, so these stay silent where estimation is off."""
    if s.estimation.enabled is False:
        return []
    estimable = (*ESTIMATED_CLASSIFICATION_METRICS, *ESTIMATED_REGRESSION_METRICS)
    out = []
    for t in s.quality.thresholds:
        if t.metric not in estimable:
            continue
        severity = t.severity or s.alerts.severity
        for bound, op, kind, word in ((t.min, "<", "min", "below"), (t.max, ">", "max", "above")):
            if bound is None:
                continue
            out.append(
                AlertDef(
                    estimated_quality_alert(t.metric, kind),
                    severity,
                    Compare(m.ESTIMATED_QUALITY, op, bound, (("metric", t.metric),)),  # type: ignore[arg-type]
                    panel="estimated_quality",
                    summary=f"Estimated {t.metric} of model {ref.model} is {word} {bound:g}",
                    description=(
                        f"{t.metric} of model {ref.model} ({ref.namespace}/{ref.name}), estimated "
                        f'without labels, is {{{{ $value | printf "%.4g" }}}} over the current '
                        f"window; the threshold is {kind} {bound:g}."
                    ),
                    message=(
                        f"estimated {t.metric} is {{value:.4g}}, {word} the "
                        f"{'minimum' if kind == 'min' else 'maximum'} {{threshold:g}}"
                    ),
                    labels={"metric": t.metric},
                )
            )
    out.append(
        AlertDef(
            ESTIMATED_OUTSIDE_BAND,
            "info",
            Compare(m.ESTIMATED_QUALITY_OUTSIDE_BAND, "==", 1, value_of=m.ESTIMATED_QUALITY),
            panel="estimated_quality_band",
            summary=f"Estimated {{{{ $labels.metric }}}} of model {ref.model} left its reference band",
            description=(
                f"{{{{ $labels.metric }}}} of model {ref.model} ({ref.namespace}/{ref.name}), "
                "estimated without labels, lies outside the band of the reference's own chunks "
                "(mean +- 3 std; see modelmonitor_estimated_quality_lower_threshold and "
                "_upper_threshold)."
            ),
            message="estimated {metric} is {value:.4g}, outside the reference band",
        )
    )
    return out


def _multivariate_drift(ref: MonitorRef, s: MonitorSections) -> list[AlertDef]:
    mv = s.drift.multivariate
    if not s.drift.enabled or mv is None:
        return []
    return [
        AlertDef(
            MULTIVARIATE_DRIFT,
            s.alerts.severity,
            Compare(
                m.MULTIVARIATE_DRIFT_DETECTED,
                "==",
                1,
                value_of=m.MULTIVARIATE_DRIFT,
                threshold_of=m.MULTIVARIATE_DRIFT_UPPER_THRESHOLD,
            ),
            panel="multivariate_drift",
            summary=f"The features of model {ref.model} drifted together",
            description=(
                f"The inputs of model {ref.model} ({ref.namespace}/{ref.name}) no longer move "
                f"together as in the reference ({{{{ $labels.method }}}}; see "
                "modelmonitor_multivariate_drift and its thresholds), a change per-feature "
                "drift tests can miss."
            ),
            message="features drifted together ({method} {value:.4g}, threshold {threshold:.4g})",
        )
    ]


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
            panel="drift_share",
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
            panel="feature_drift_detected",
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
                panel="prediction_drift",
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
            panel="outlier_ratio",
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
                        panel="measure_quantiles",
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
            panel="worker_info",
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
            panel="worker_info",
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
            panel="record_rate",
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
            panel="window_size",
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
                panel="last_arrivals",
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
                panel="labelled_predictions",
            )
        )
    return recording, alerts


# -- serving health of the model's own pods (Prometheus only) -------------------------------------

#: Recording rule: 1 per pod of the target, with the monitor's ``modelmonitor`` and ``model``
#: labels. Every serving alert and dashboard panel joins on it.
TARGET_PODS = "modelmonitor:target_pod:info"
#: Containers of pods, not the pod's own cgroup ("") nor the pause container ("POD").
_CONTAINERS = 'container!="", container!="POD"'


@dataclass(frozen=True)
class ServingTarget:
    """The workload serving the model (``spec.model.targetRef``) and whether its pods request
    NVIDIA GPUs (as the operator observed its pod template)."""

    kind: str  # Deployment | StatefulSet | InferenceService
    name: str
    gpu: bool = False

    def deployment_matcher(self) -> str:
        """The ``deployment`` label value(s) of the Deployments that run the target's pods:
        itself, or KServe's predictor (``<isvc>-predictor`` in raw mode, Knative's
        ``<isvc>-predictor-<revision>-deployment`` in serverless mode)."""
        if self.kind == "InferenceService":
            return f'=~"{self.name}-predictor|{self.name}-predictor-[0-9]+-deployment"'
        return f'="{self.name}"'


def target_pods_expr(namespace: str, target: ServingTarget) -> str:
    """The target's pods as ``{namespace, pod}`` series of value 1, from kube-state-metrics'
    ownership series: pod -> ReplicaSet -> Deployment (or pod -> StatefulSet). Chosen over a
    pod-name regex (which a Deployment named ``<name>-v2`` can satisfy) and over
    ``kube_pod_labels`` (empty unless kube-state-metrics is started with a label allowlist)."""
    ns = f'namespace="{namespace}"'
    if target.kind == "StatefulSet":
        return (
            f"max by (namespace, pod) ({x.POD_OWNER.name}"
            f'{{{ns}, owner_kind="StatefulSet", owner_name="{target.name}"}})'
        )
    owner = target.deployment_matcher()
    return (
        f'max by (namespace, pod) ({x.POD_OWNER.name}{{{ns}, owner_kind="ReplicaSet"}}'
        " * on (namespace, owner_name) group_left () max by (namespace, owner_name) "
        f'(label_replace({x.REPLICASET_OWNER.name}{{{ns}, owner_kind="Deployment", '
        f'owner_name{owner}}}, "owner_name", "$1", "replicaset", "(.+)")))'
    )


def dcgm_by_pod(series: x.Series) -> str:
    """A DCGM series with ``pod``/``namespace`` of the GPU's user, whether Prometheus kept the
    exporter's own labels (honorLabels: true) or renamed them ``exported_*`` (the default)."""
    inner = f'label_replace({series.name}, "pod", "$1", "exported_pod", "(.+)")'
    return f'label_replace({inner}, "namespace", "$1", "exported_namespace", "(.+)")'


def serving_rules(
    ref: MonitorRef, target: ServingTarget, sections: MonitorSections, spec: ServingHealthSpec
) -> tuple[list[dict[str, object]], list[AlertDef]]:
    """The recording rule of the target's pods and the serving-health alerts (Prometheus only:
    they read other exporters' series, which the worker never sees). Empty when alerts or
    ``alerts.servingHealth`` are disabled."""
    if not sections.alerts.enabled or not spec.enabled:
        return [], []
    ns = f'namespace="{ref.namespace}"'
    join = (
        " * on (namespace, pod) group_left (modelmonitor, model) "
        f'{TARGET_PODS}{{{ns}, modelmonitor="{ref.name}"}}'
    )
    window, sev, for_ = spec.rate_window, spec.severity, spec.for_
    by_container = "namespace, pod, container"
    by_monitor = "namespace, modelmonitor, model"
    model = ref.model
    recording: list[dict[str, object]] = [
        {
            "record": TARGET_PODS,
            "expr": target_pods_expr(ref.namespace, target),
            "labels": {"modelmonitor": ref.name, "model": model},
        }
    ]
    container = "Container {{ $labels.container }} of pod {{ $labels.pod }}"

    def limit(resource: str) -> str:
        return (
            f" / on ({by_container}) max by ({by_container}) "
            f'({x.RESOURCE_LIMITS.name}{{{ns}, resource="{resource}"}})'
        )

    def rate(name: str, extra: str = "") -> str:
        matchers = f"{ns}, {extra}" if extra else ns
        return f"rate({name}{{{matchers}}}[{window}])"

    alerts = [
        AlertDef(
            SERVING_CPU_THROTTLED,
            sev,
            PromQL.literal(
                f"sum by ({by_container}) ({rate(x.CPU_CFS_THROTTLED.name, _CONTAINERS)})"
                f" / sum by ({by_container}) ({rate(x.CPU_CFS_PERIODS.name, _CONTAINERS)})"
                f"{join} > {spec.cpu_throttling_ratio:g}"
            ),
            summary=f"Model {model} is CPU-throttled",
            description=(
                f"{container} of model {model} was throttled in "
                f"{{{{ $value | humanizePercentage }}}} of its CPU periods over {window}; the "
                f"threshold is {spec.cpu_throttling_ratio:.0%}. Raise its CPU limit or scale out."
            ),
            for_=for_,
            panel="serving_cpu_throttling",
        ),
        AlertDef(
            SERVING_CPU_NEAR_LIMIT,
            sev,
            PromQL.literal(
                f"sum by ({by_container}) ({rate(x.CPU_USAGE.name, _CONTAINERS)})"
                f"{limit('cpu')}{join} > {spec.cpu_limit_ratio:g}"
            ),
            summary=f"Model {model} uses its CPU limit",
            description=(
                f"{container} of model {model} uses {{{{ $value | humanizePercentage }}}} of "
                f"its CPU limit over {window}; the threshold is {spec.cpu_limit_ratio:.0%}."
            ),
            for_=for_,
            panel="serving_cpu_limit",
        ),
        AlertDef(
            SERVING_MEMORY_NEAR_LIMIT,
            sev,
            PromQL.literal(
                f"max by ({by_container}) ({x.MEMORY_WORKING_SET.name}{{{ns}, {_CONTAINERS}}})"
                f"{limit('memory')}{join} > {spec.memory_limit_ratio:g}"
            ),
            summary=f"Model {model} is near its memory limit",
            description=(
                f"{container} of model {model} has a working set of "
                f"{{{{ $value | humanizePercentage }}}} of its memory limit; the threshold is "
                f"{spec.memory_limit_ratio:.0%}. At the limit the kernel OOM-kills it."
            ),
            for_=for_,
            panel="serving_memory_limit",
        ),
        AlertDef(
            SERVING_OOM_KILLED,
            sev,
            PromQL.literal(
                f"(max by ({by_container}) ({x.LAST_TERMINATED_REASON.name}"
                f'{{{ns}, reason="OOMKilled"}}) and on ({by_container}) max by ({by_container}) '
                f"(increase({x.RESTARTS.name}{{{ns}}}[{spec.restarts_window}])) > 0){join}"
            ),
            summary=f"Model {model} was OOM-killed",
            description=(
                f"{container} of model {model} was killed for running out of memory "
                f"(OOMKilled) and restarted within the last {spec.restarts_window}."
            ),
            # One OOM kill is the event: no waiting, it shows while the restart is recent.
            for_="0s",
            panel="serving_restarts",
        ),
        AlertDef(
            SERVING_RESTARTING,
            sev,
            PromQL.literal(
                f"max by ({by_container}) (increase({x.RESTARTS.name}{{{ns}}}"
                f"[{spec.restarts_window}])){join} >= {spec.restarts}"
            ),
            summary=f"Model {model} keeps restarting",
            description=(
                f'{container} of model {model} restarted {{{{ $value | printf "%.0f" }}}} '
                f"times in {spec.restarts_window}; the threshold is {spec.restarts}."
            ),
            for_=for_,
            panel="serving_restarts",
        ),
        AlertDef(
            SERVING_REPLICAS_UNAVAILABLE,
            sev,
            PromQL.literal(_unavailable_expr(ref.namespace, target)),
            summary=f"Replicas of model {model} are unavailable",
            description=(
                f'{{{{ $value | printf "%.0f" }}}} replica(s) of {target.kind} {target.name} '
                f"serving model {model} ({ref.namespace}) are unavailable."
            ),
            for_=for_,
            panel="serving_replicas_unavailable",
        ),
    ]
    if (target.gpu and spec.gpu != "disabled") or spec.gpu == "enabled":
        alerts += [
            AlertDef(
                SERVING_GPU_SATURATED,
                sev,
                PromQL.literal(
                    f"max by (namespace, pod, gpu) ({dcgm_by_pod(x.GPU_UTIL)}){join}"
                    f" > {spec.gpu_utilization_ratio * 100:g}"
                ),
                summary=f"A GPU of model {model} is saturated",
                description=(
                    f"GPU {{{{ $labels.gpu }}}} of pod {{{{ $labels.pod }}}} (model {model}) is "
                    f'{{{{ $value | printf "%.0f" }}}}% busy; the threshold is '
                    f"{spec.gpu_utilization_ratio:.0%}."
                ),
                for_=for_,
                panel="serving_gpu_utilization",
            ),
            AlertDef(
                SERVING_GPU_MEMORY_NEAR_LIMIT,
                sev,
                PromQL.literal(
                    f"max by (namespace, pod, gpu) ({dcgm_by_pod(x.GPU_FB_USED)})"
                    f" / (max by (namespace, pod, gpu) ({dcgm_by_pod(x.GPU_FB_USED)})"
                    f" + max by (namespace, pod, gpu) ({dcgm_by_pod(x.GPU_FB_FREE)})){join}"
                    f" > {spec.gpu_memory_ratio:g}"
                ),
                summary=f"GPU memory of model {model} is nearly full",
                description=(
                    f"GPU {{{{ $labels.gpu }}}} of pod {{{{ $labels.pod }}}} (model {model}) has "
                    f"{{{{ $value | humanizePercentage }}}} of its framebuffer in use; the "
                    f"threshold is {spec.gpu_memory_ratio:.0%}."
                ),
                for_=for_,
                panel="serving_gpu_memory",
            ),
        ]
    latency = parse_duration(spec.latency_threshold)
    rest_buckets = f"{x.MLSERVER_REST_DURATION.name}_bucket"
    kserve_buckets = f"{x.KSERVE_PREDICT_DURATION.name}_bucket"
    infer = 'path=~".*/infer"'  # MLServer's route templates: /v2/models/{model_name}/infer
    failures = f"sum by ({by_monitor}) ({rate(x.MLSERVER_FAILURE.name)}{join})"
    successes = f"sum by ({by_monitor}) ({rate(x.MLSERVER_SUCCESS.name)}{join})"
    alerts += [
        AlertDef(
            SERVING_LATENCY_HIGH,
            sev,
            PromQL.literal(
                f"histogram_quantile({spec.latency_quantile:g}, sum by ({by_monitor}, le) (("
                f"{rate(rest_buckets, infer)} or {rate(kserve_buckets)}){join}))"
                f" > {latency:g}"
            ),
            summary=f"Model {model} answers slowly",
            description=(
                f"The {spec.latency_quantile:.0%} quantile of inference latency of model {model} "
                f"({ref.namespace}/{ref.name}) is {{{{ $value | humanizeDuration }}}} over "
                f"{window}; the threshold is {spec.latency_threshold}."
            ),
            for_=for_,
            panel="serving_latency",
        ),
        AlertDef(
            SERVING_ERRORS_HIGH,
            sev,
            PromQL.literal(
                f"{failures} / ({failures} + ({successes} or {failures} * 0))"
                f" > {spec.error_ratio:g}"
            ),
            summary=f"Model {model} fails inference requests",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the inference requests to model "
                f"{model} ({ref.namespace}/{ref.name}) failed over {window}; the threshold is "
                f"{spec.error_ratio:.0%}."
            ),
            for_=for_,
            panel="serving_error_ratio",
        ),
    ]
    return recording, alerts


def _unavailable_expr(namespace: str, target: ServingTarget) -> str:
    ns = f'namespace="{namespace}"'
    if target.kind == "StatefulSet":
        sel = f'{{{ns}, statefulset="{target.name}"}}'
        return (
            f"max by (namespace, statefulset) ({x.STATEFULSET_REPLICAS.name}{sel})"
            f" - max by (namespace, statefulset) ({x.STATEFULSET_READY.name}{sel}) > 0"
        )
    return (
        f"max by (namespace, deployment) ({x.DEPLOYMENT_UNAVAILABLE.name}"
        f"{{{ns}, deployment{target.deployment_matcher()}}}) > 0"
    )


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
