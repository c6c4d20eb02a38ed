"""The spec sections both sides read: the ModelMonitor spec embeds them and the worker's
config file carries the very same classes (``tests/unit/test_crd.py`` checks the identity).

Conventions: camelCase keys like Kubernetes, unknown keys refused, instances frozen. A rule the
API server must enforce is declared beside the field it checks, as CEL in ``crd_rules`` (for
the object) or ``crd(...)`` extras (for a field); :mod:`mm_api.crd` writes both into the CRD, and
the Python validator next to it enforces the same rule for configs that never pass through the
API server (the worker's file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from .durations import Duration, parse_duration

Task = Literal["binary-classification", "multiclass-classification", "regression"]
FeatureType = Literal["numerical", "categorical"]
DriftMethod = Literal["auto", "ks", "chi-square", "z-test", "wasserstein", "jensen-shannon", "psi"]
OutlierMethod = Literal["isolation-forest", "one-class-svm"]
QualityMetric = Literal[
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc-auc",
    "log-loss",
    "mae",
    "mse",
    "rmse",
    "r2",
    "mape",
]
Severity = Literal["critical", "warning", "info"]
Averaging = Literal["macro", "weighted", "micro"]
ReferenceFormat = Literal["auto", "csv", "jsonl", "parquet"]
#: Kubernetes-style labels (on objects and alerts); ground truth is called "labels" only in
#: the public API (``spec.labels``, ``/v1/labels``).
KubeLabels = dict[str, str]

#: Metrics whose value is a ratio in [0, 1]; thresholds on them must be in [0, 1] too.
RATIO_METRICS = ("accuracy", "precision", "recall", "f1", "roc-auc")
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc-auc", "log-loss")
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "mape")


@dataclass(frozen=True)
class Cel:
    """A CEL validation rule of the CRD (``x-kubernetes-validations``)."""

    rule: str
    message: str
    field_path: str | None = None


def crd(**extra: Any) -> dict[str, Any]:
    """Schema keys a field carries into the CRD only (``Field(json_schema_extra=crd(...))``),
    e.g. ``x-kubernetes-list-type``."""
    return {"crd": extra}


def cel_list(items: list[str]) -> str:
    return "[" + ", ".join(f"'{i}'" for i in items) + "]"


class Section(BaseModel):
    """Base of every section: camelCase keys like Kubernetes, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )
    #: CEL rules the CRD enforces on this object (the Python validators enforce the same).
    crd_rules: ClassVar[tuple[Cel, ...]] = ()


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One clause per problem, each naming the field path in the file's own (camelCase) keys,
    under ``prefix`` (e.g. ``spec``)."""
    clauses = []
    for e in err.errors():
        loc = ".".join([prefix] * bool(prefix) + [str(p) for p in e["loc"]])
        msg = e["msg"].removeprefix("Value error, ")
        clauses.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(clauses)


_ENABLED = "Turn this part on or off."
_DRIFT_METHOD = "Test or distance; auto chooses like Evidently (see docs/drift.md)."
_DRIFT_THRESHOLD = (
    "p-value tests flag drift below it (default 0.05); distances at or above it (default 0.1)."
)
_SEVERITY = "Alert severity (default: alerts.severity)."


# -- the model's data ---------------------------------------------------------------------------


class FeatureSpec(Section):
    name: str = Field(min_length=1, max_length=253, description="Column name.")
    type: FeatureType = Field(
        description="numerical (floats) or categorical (strings, integers, booleans)."
    )


class DataColumns(Section):
    """How the reference dataset's columns map to features, predictions and labels."""

    features: list[FeatureSpec] | None = Field(
        default=None,
        max_length=2000,
        description="Declared features; inferred from the reference (all other columns) when absent.",
        json_schema_extra=crd(
            **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
        ),
    )
    prediction_column: str = Field(
        default="prediction",
        description="Reference column holding the model's predictions (for prediction drift).",
    )
    label_column: str = Field(
        default="label", description="Reference column holding the ground truth."
    )
    score_column: str = Field(
        default="score",
        description="Reference column holding the positive class's probability (binary; for score drift).",
    )


# -- windows and statistics ---------------------------------------------------------------------


class WindowSpec(Section):
    crd_rules = (
        Cel(
            "!has(self.size) || !has(self.evaluationInterval) || "
            "!self.size.matches('^([0-9]+(ms|s|m|h))+$') || "
            "!self.evaluationInterval.matches('^([0-9]+(ms|s|m|h))+$') || "
            "duration(self.size) >= duration(self.evaluationInterval)",
            "window.size must be at least window.evaluationInterval",
        ),
    )

    size: Duration = Field(default="1h", description="Length of the window.")
    buckets: int = Field(
        default=12,
        ge=1,
        le=1440,
        description="Time buckets the window is made of; it slides one bucket at a time.",
    )
    evaluation_interval: Duration = Field(
        default="30s", description="How often the window is evaluated."
    )
    min_samples: int = Field(
        default=200,
        ge=1,
        description="Below this many records (labelled records, for quality) a figure is withheld.",
    )

    @model_validator(mode="after")
    def _fits(self) -> WindowSpec:
        if parse_duration(self.size) < parse_duration(self.evaluation_interval):
            raise ValueError(self.crd_rules[0].message)
        return self


DriftThreshold = Annotated[float, Field(gt=0, description=_DRIFT_THRESHOLD)]


class FeatureDriftOverride(Section):
    name: str = Field(min_length=1, max_length=253, description="Column name.")
    method: DriftMethod | None = Field(default=None, description=_DRIFT_METHOD)
    threshold: float | None = Field(default=None, gt=0, description=_DRIFT_THRESHOLD)
    enabled: bool = Field(default=True, description=_ENABLED)


class PredictionDriftSpec(Section):
    enabled: bool = Field(default=True, description=_ENABLED)
    method: DriftMethod = Field(default="auto", description=_DRIFT_METHOD)
    threshold: float | None = Field(default=None, gt=0, description=_DRIFT_THRESHOLD)


class DriftSpec(Section):
    enabled: bool = Field(default=True, description=_ENABLED)
    method: DriftMethod = Field(default="auto", description=_DRIFT_METHOD)
    threshold: float | None = Field(default=None, gt=0, description=_DRIFT_THRESHOLD)
    share_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Dataset drift when at least this share of features drifted.",
    )
    features: list[FeatureDriftOverride] = Field(
        default_factory=list,
        max_length=2000,
        description="Per-feature overrides of method and threshold, or enabled=false to skip a feature.",
        json_schema_extra=crd(
            **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
        ),
    )
    prediction: PredictionDriftSpec = Field(
        default_factory=PredictionDriftSpec,
        description="Drift of the model's predictions (and binary scores) against the reference.",
    )


class OutlierSpec(Section):
    enabled: bool = Field(default=True, description=_ENABLED)
    method: OutlierMethod = Field(
        default="isolation-forest", description="Detector fitted on the reference."
    )
    contamination: float = Field(
        default=0.01,
        gt=0,
        le=0.5,
        description="Expected outlier share in the reference; sets the detector's cut-off.",
    )
    max_ratio: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Alert when the window's outlier ratio exceeds it.",
    )
    sample_size: int = Field(
        default=2000,
        ge=10,
        le=100000,
        description="Rows scored per evaluation (a uniform sample of the window).",
    )


class QualityThreshold(Section):
    crd_rules = (
        Cel("has(self.min) || has(self.max)", "set min, max or both"),
        Cel(
            f"!(self.metric in {cel_list(list(RATIO_METRICS))}) || "
            "((!has(self.min) || (self.min >= 0.0 && self.min <= 1.0)) && "
            "(!has(self.max) || (self.max >= 0.0 && self.max <= 1.0)))",
            "accuracy, precision, recall, f1 and roc-auc are ratios; min and max must be in [0, 1]",
        ),
        Cel("!has(self.min) || !has(self.max) || self.min <= self.max", "min must not exceed max"),
    )

    metric: QualityMetric = Field(description="Quality metric.")
    min: float | None = Field(default=None, description="Alert when the metric is below.")
    max: float | None = Field(default=None, description="Alert when the metric is above.")
    severity: Severity | None = Field(default=None, description=_SEVERITY)

    @model_validator(mode="after")
    def _bounds(self) -> QualityThreshold:
        if self.min is None and self.max is None:
            raise ValueError(self.crd_rules[0].message)
        if self.metric in RATIO_METRICS:
            for bound in (self.min, self.max):
                if bound is not None and not 0 <= bound <= 1:
                    raise ValueError(f"{self.metric} is a ratio: min and max must be in [0, 1]")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(self.crd_rules[2].message)
        return self


class QualitySpec(Section):
    thresholds: list[QualityThreshold] = Field(
        default_factory=list,
        max_length=20,
        description="Bounds on quality metrics; each becomes an alert.",
    )
    average: Averaging = Field(
        default="macro", description="How multiclass precision, recall and F1 average over classes."
    )


class LateLabelsSpec(Section):
    """The bounded store of predictions waiting for their late labels."""

    ttl: Duration = Field(default="24h", description="How long a prediction waits for its label.")
    max_pending: int = Field(
        default=100000,
        ge=0,
        le=10_000_000,
        description="Most predictions waiting for labels at once (older ones are dropped and counted).",
    )


# -- alerts ---------------------------------------------------------------------------------------


class ObjectiveSpec(Section):
    metric: Literal["accuracy"] = Field(description="Quality metric.")
    target: float = Field(
        gt=0, lt=1, description="Objective, e.g. 0.95 = at most 5% wrong predictions."
    )
    period: Duration = Field(default="30d", description="Period of the objective.")


class AlertsSpec(Section):
    enabled: bool = Field(default=True, description=_ENABLED)
    for_: Duration = Field(
        default="5m",
        alias="for",
        description="How long a condition must hold before its alert fires.",
    )
    severity: Severity = Field(default="warning", description="Alert severity.")
    labels: KubeLabels = Field(
        default_factory=dict, description="Extra labels on every alert (e.g. team)."
    )
    runbook_url: str | None = Field(
        default=None,
        alias="runbookURL",
        pattern=r"^https?://",
        description="Base of runbook links; each alert appends #<alertname>.",
    )
    dashboard_url: str | None = Field(
        default=None,
        alias="dashboardURL",
        pattern=r"^https?://",
        description="Dashboard link added to every alert's annotations.",
    )
    no_records_for: Duration = Field(
        default="15m", description="Alert when no records arrived for this long."
    )
    no_labels_for: Duration = Field(
        default="2h",
        description="Alert when quality thresholds exist and no labels arrived for this long.",
    )
    objective: ObjectiveSpec | None = Field(
        default=None,
        description="A quality objective alerted on with multi-window, multi-burn-rate rules.",
    )


# -- KServe's payload logger -----------------------------------------------------------------------

#: A request header name as KServe's logger puts it in ``ce-metadata`` (``logger.metadataHeaders``).
HEADER_NAME = r"^[A-Za-z0-9][A-Za-z0-9-]*$"
#: An annotation key as KServe's logger puts it in ``ce-annotations`` (``logger.metadataAnnotations``).
ANNOTATION_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


class SegmentSpec(Section):
    """Segments: figures kept apart per value of allow-listed request headers or
    InferenceService annotations that KServe's logger forwards."""

    headers: list[Annotated[str, Field(pattern=HEADER_NAME, max_length=128)]] = Field(
        default_factory=list,
        max_length=5,
        description="Request headers (the InferenceService's logger.metadataHeaders) whose values segment the figures; matched case-insensitively.",
    )
    annotations: list[Annotated[str, Field(pattern=ANNOTATION_KEY, max_length=253)]] = Field(
        default_factory=list,
        max_length=5,
        description="InferenceService annotations (logger.metadataAnnotations) whose values segment the figures.",
    )
    max_values: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Distinct values kept per header or annotation, and distinct segments (combinations); an event bringing one more is refused (422), not given series of its own.",
    )


class KServeSpec(Section):
    """How events of KServe's payload logger are told apart: always by ``ce-endpoint``
    (default or canary), and by the segments allow-listed here."""

    segments: SegmentSpec = Field(
        default_factory=SegmentSpec,
        description="Segments from the allow-listed ce-metadata headers and ce-annotations.",
    )


class MonitorSections(Section):
    """The sections the worker evaluates; the ModelMonitor spec embeds the same ones."""

    window: WindowSpec = Field(
        default_factory=WindowSpec, description="The sliding window the figures are computed over."
    )
    drift: DriftSpec = Field(
        default_factory=DriftSpec, description="Data and prediction drift tests."
    )
    outliers: OutlierSpec = Field(
        default_factory=OutlierSpec, description="Outlier detection fitted on the reference."
    )
    quality: QualitySpec = Field(
        default_factory=QualitySpec, description="Quality thresholds, checked when labels arrive."
    )
    labels: LateLabelsSpec = Field(
        default_factory=LateLabelsSpec,
        description="The bounded store of predictions waiting for their late labels (joined by id).",
    )
    alerts: AlertsSpec = Field(
        default_factory=AlertsSpec, description="The PrometheusRule's alerts."
    )
    kserve: KServeSpec = Field(
        default_factory=KServeSpec,
        description="Events of KServe's payload logger: canary and default kept apart, optional segments.",
    )


def check_metrics_fit_task(task: str, quality: QualitySpec) -> None:
    allowed = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    for i, t in enumerate(quality.thresholds):
        if t.metric not in allowed:
            raise ValueError(
                f"quality.thresholds[{i}].metric: {t.metric} does not apply to a {task} model "
                f"(use one of {', '.join(sorted(allowed))})"
            )


#: CEL rules on the whole spec that mirror :func:`check_metrics_fit_task` and the objective check.
TASK_RULES = (
    Cel(
        "!has(self.quality) || !has(self.quality.thresholds) || self.model.task != 'regression' || "
        f"self.quality.thresholds.all(t, t.metric in {cel_list(list(REGRESSION_METRICS))})",
        "a regression model takes mae, mse, rmse, r2 or mape",
        ".quality.thresholds",
    ),
    Cel(
        "!has(self.quality) || !has(self.quality.thresholds) || self.model.task == 'regression' || "
        f"self.quality.thresholds.all(t, t.metric in {cel_list(list(CLASSIFICATION_METRICS))})",
        "a classifier takes accuracy, precision, recall, f1, roc-auc or log-loss",
        ".quality.thresholds",
    ),
    Cel(
        "!has(self.alerts) || !has(self.alerts.objective) || self.model.task != 'regression'",
        "accuracy objectives apply to classifiers",
        ".alerts.objective",
    ),
)


def check_fits_task(task: str, sections: MonitorSections) -> None:
    """The Python side of :data:`TASK_RULES`."""
    check_metrics_fit_task(task, sections.quality)
    if sections.alerts.objective is not None and task == "regression":
        raise ValueError("alerts.objective: accuracy objectives apply to classifiers")


#: The CEL side of :func:`check_drift_features` (where the spec declares its features).
DRIFT_FEATURES_RULE = Cel(
    "!has(self.drift) || !has(self.drift.features) || !has(self.data) || "
    "!has(self.data.features) || "
    # sets.contains (not all/exists): the API server's cost budget admits it for 2000 x 2000.
    "sets.contains(self.data.features.map(f, f.name), self.drift.features.map(o, o.name))",
    "drift.features[].name must name one of data.features",
    ".drift.features",
)


def check_drift_features(overrides: list[FeatureDriftOverride], features: list[str]) -> None:
    """Every per-feature drift override names a feature: a typo would otherwise be ignored
    and the feature tested with the defaults. ``features``: declared or inferred names."""
    known = set(features)
    for i, o in enumerate(overrides):
        if o.name not in known:
            listed = ", ".join(sorted(known)[:20])
            raise ValueError(
                f"drift.features[{i}].name: {o.name!r} is not a feature (features: {listed})"
            )
