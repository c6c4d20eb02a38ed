"""The spec sections both sides read: the ModelMonitor spec embeds them and the worker's
config file carries the very same classes (``tests/unit/test_crd.py`` checks the identity).

Conventions: camelCase keys like Kubernetes, unknown keys refused, instances frozen. A rule the
API server must enforce is declared beside the field it checks, as CEL in ``crd_rules`` (for
the object) or ``crd(...)`` extras (for a field); :mod:`mm_api.crd` writes both into the CRD, and
the Python validator next to it enforces the same rule for configs that never pass through the
API server (the worker's file)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from .durations import Duration, parse_duration

Task = Literal["binary-classification", "multiclass-classification", "regression"]
FeatureType = Literal["numerical", "categorical", "text", "embedding"]
DriftMethod = Literal["auto", "ks", "chi-square", "z-test", "wasserstein", "jensen-shannon", "psi"]
OutlierMethod = Literal["isolation-forest", "one-class-svm"]
MultivariateMethod = Literal["pca-reconstruction", "domain-classifier"]
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
#: Metrics estimated without labels: CBPE for classifiers, DLE for regressors.
ESTIMATED_CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc-auc")
ESTIMATED_REGRESSION_METRICS = ("mae", "rmse")


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


#: Text descriptors: each text feature ``review`` is watched as the numerical series
#: ``review.<descriptor>`` (monitor_worker/stats/text.py, docs/text-and-embeddings.md).
TEXT_DESCRIPTORS = ("chars", "words", "sentences", "oov_share", "non_letter_share", "has_link")
DEFAULT_MAX_CHARS = 10_000


class FeatureSpec(Section):
    crd_rules = (
        Cel(
            "self.type != 'embedding' || has(self.dimension)",
            "dimension is required for an embedding feature",
        ),
        Cel(
            "!has(self.dimension) || self.type == 'embedding'",
            "dimension applies to embedding features only",
        ),
        Cel("!has(self.embed) || self.type == 'text'", "embed applies to text features only"),
        Cel("!has(self.maxChars) || self.type == 'text'", "maxChars applies to text features only"),
    )

    name: str = Field(min_length=1, max_length=253, description="Column name.")
    type: FeatureType = Field(
        description="numerical (floats), categorical (strings, integers, booleans), text "
        "(strings, watched through descriptors) or embedding (a list of dimension numbers)."
    )
    embed: bool | None = Field(
        default=None,
        description="Text only: also embed the texts with the packaged sentence model "
        "(all-MiniLM-L6-v2, 384 numbers) and watch the embeddings' drift; needs the worker's "
        "text image. On the GPU when worker.gpu is set.",
    )
    dimension: int | None = Field(
        default=None, ge=1, le=4096, description="Embedding only (required): numbers per vector."
    )
    max_chars: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description=f"Text only: longer texts are cut here, and counted (default {DEFAULT_MAX_CHARS}).",
    )

    @model_validator(mode="after")
    def _type_fields(self) -> FeatureSpec:
        checks = (
            self.type != "embedding" or self.dimension is not None,
            self.dimension is None or self.type == "embedding",
            self.embed is None or self.type == "text",
            self.max_chars is None or self.type == "text",
        )
        for rule, ok in zip(self.crd_rules, checks, strict=True):
            if not ok:
                raise ValueError(rule.message)
        return self


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
        description="Reference column holding the positive class's probability (binary; for score drift and estimation).",
    )
    score_columns: dict[str, str] | None = Field(
        default=None,
        description="Multiclass: the reference column holding each class's probability, by class "
        "(default: <scoreColumn>_<class> for each of model.classes), for quality estimation.",
    )

    def class_score_columns(self, classes: tuple[str, ...] | list[str]) -> list[str]:
        """The reference's per-class probability columns of a multiclass model, in class order."""
        given = self.score_columns or {}
        return [given.get(c, f"{self.score_column}_{c}") for c in classes]

    @model_validator(mode="after")
    def _series_names_unique(self) -> DataColumns:
        """A text feature's descriptor series must not share a name with another feature."""
        names = {f.name for f in self.features or ()}
        for f in self.features or ():
            if f.type == "text":
                for d in TEXT_DESCRIPTORS:
                    if f"{f.name}.{d}" in names:
                        raise ValueError(
                            f"features: {f.name}.{d} is the name of text feature {f.name}'s "
                            f"{d} series; rename one of them"
                        )
        return self


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


class MultivariateDriftSpec(Section):
    """Drift of the features taken together (docs/estimation.md)."""

    crd_rules = (
        Cel(
            "self.method != 'domain-classifier' || !has(self.threshold) || "
            "(self.threshold >= 0.5 && self.threshold < 1.0)",
            "a domain-classifier threshold is a ROC-AUC in [0.5, 1)",
            ".threshold",
        ),
    )

    method: MultivariateMethod = Field(
        default="pca-reconstruction",
        description="pca-reconstruction: the mean error of rebuilding each record from the "
        "reference's principal components (NannyML); domain-classifier: the ROC-AUC of a "
        "classifier telling the window's sample from the reference's.",
    )
    threshold: float | None = Field(
        default=None,
        gt=0,
        description="pca-reconstruction: drift above this error (default: outside the band of "
        "the reference's own chunks); domain-classifier: drift above this ROC-AUC (default 0.55, "
        "bootstrapped below 1000 reference rows).",
    )
    chunk_size: int | None = Field(
        default=None,
        ge=10,
        description="pca-reconstruction: reference rows per chunk of the band (default: the "
        "reference in 10 chunks); set it near a window's record count.",
    )
    sample_size: int = Field(
        default=2000,
        ge=100,
        le=100000,
        description="domain-classifier: reference rows sampled for the classifier; the window's "
        "side is its uniform sample (outliers.sampleSize rows).",
    )

    @model_validator(mode="after")
    def _auc(self) -> MultivariateDriftSpec:
        t = self.threshold
        if self.method == "domain-classifier" and t is not None and not 0.5 <= t < 1.0:
            raise ValueError(f"threshold: {self.crd_rules[0].message}")
        return self


EmbeddingDriftMethod = Literal["auto", "mmd", "domain-classifier"]


class EmbeddingDriftSpec(Section):
    """Drift of embedding features and of embedded texts (docs/text-and-embeddings.md)."""

    method: EmbeddingDriftMethod = Field(
        default="auto",
        description="mmd (permutation test), domain-classifier (ROC-AUC), or auto: mmd below "
        "1000 vectors on either side, the classifier from there on.",
    )
    mmd_threshold: float = Field(
        default=0.05, gt=0, lt=1, description="MMD drifts when its p-value is below."
    )
    classifier_threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="The domain classifier drifts when its ROC-AUC is above (default 0.55; "
        "Evidently's bootstrapped threshold when the reference has fewer than 1000 vectors).",
    )
    sample_size: int = Field(
        default=1000,
        ge=50,
        le=10000,
        description="Vectors (or texts to embed) kept per time bucket and from the reference; "
        "memory is window.buckets x sampleSize x dimension x 4 bytes per feature.",
    )
    permutations: int = Field(
        default=100, ge=10, le=10000, description="Permutations of the MMD test."
    )


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
    multivariate: MultivariateDriftSpec | None = Field(
        default=None,
        description="Drift of all features together, which per-feature tests miss (a broken "
        "join, swapped columns). Absent: off. Needs two or more features and a reference.",
    )
    embedding: EmbeddingDriftSpec = Field(
        default_factory=EmbeddingDriftSpec,
        description="Drift of embedding features and of texts embedded by the worker.",
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


class EstimationSpec(Section):
    """Quality without labels: CBPE for classifiers, DLE for regressors (docs/estimation.md)."""

    enabled: bool | None = Field(
        default=None,
        description="Unset: on when it can work (a reference with labels and predictions, and "
        "for classifiers the scores), else off with the reason in the worker's /v1/status; "
        "true: required (the worker refuses to start, naming the field); false: off.",
    )
    chunk_size: int | None = Field(
        default=None,
        ge=10,
        description="Reference rows per chunk of the alert band (default: the reference in 10 "
        "chunks, as NannyML); set it near a window's record count.",
    )
    sample_size: int = Field(
        default=2000,
        ge=100,
        le=100000,
        description="DLE: records of the window scored per evaluation (a uniform sample; the "
        "rest adds a sample error to the band).",
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


# -- serving measures ---------------------------------------------------------------------------

MeasureQuantile = Literal["p50", "p95", "p99"]


class MeasureThreshold(Section):
    crd_rules = (
        Cel("has(self.min) || has(self.max)", "set min, max or both"),
        Cel("!has(self.min) || !has(self.max) || self.min <= self.max", "min must not exceed max"),
    )

    quantile: MeasureQuantile = Field(description="p50, p95 or p99 of the window's values.")
    min: float | None = Field(default=None, description="Alert when the quantile is below.")
    max: float | None = Field(default=None, description="Alert when the quantile is above.")
    severity: Severity | None = Field(default=None, description=_SEVERITY)

    @model_validator(mode="after")
    def _bounds(self) -> MeasureThreshold:
        if self.min is None and self.max is None:
            raise ValueError(self.crd_rules[0].message)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(self.crd_rules[1].message)
        return self


class MeasureSpec(Section):
    """A serving measure: a named number per record (``measures: {latency_ms: 87}``)."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Key in each record's measures object, e.g. latency_ms or completion_tokens.",
    )
    thresholds: list[MeasureThreshold] = Field(
        default_factory=list,
        max_length=6,
        description="Bounds on the window's quantiles; each becomes an alert.",
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
        description="URL of the Model Monitor Grafana dashboard (e.g. https://grafana.example.org/d/model-monitor); each alert's dashboard_url opens the panel showing its series.",
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
    estimation: EstimationSpec = Field(
        default_factory=EstimationSpec,
        description="Quality estimated without labels (CBPE, DLE); quality.thresholds apply to it too.",
    )
    labels: LateLabelsSpec = Field(
        default_factory=LateLabelsSpec,
        description="The bounded store of predictions waiting for their late labels (joined by id).",
    )
    alerts: AlertsSpec = Field(
        default_factory=AlertsSpec, description="The PrometheusRule's alerts."
    )
    measures: list[MeasureSpec] = Field(
        default_factory=list,
        max_length=50,
        description="Serving measures sent with each record (latency, token counts...), watched "
        "as window quantiles p50/p95/p99.",
        json_schema_extra=crd(
            **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
        ),
    )
    kserve: KServeSpec = Field(
        default_factory=KServeSpec,
        description="Events of KServe's payload logger: canary and default kept apart, optional segments.",
    )


def check_drift_overrides(data: DataColumns, drift: DriftSpec) -> None:
    """Embedding drift has its own methods and thresholds (``drift.embedding``): a per-feature
    override may turn an embedding feature off, not give it a numerical test or threshold."""
    embedding = {f.name for f in data.features or () if f.type == "embedding"}
    for i, o in enumerate(drift.features):
        if o.name in embedding and (o.method is not None or o.threshold is not None):
            raise ValueError(
                f"drift.features[{i}]: {o.name} is an embedding feature; set its method and "
                "thresholds in drift.embedding (an override may only set enabled)"
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


#: CEL rule on the whole spec mirroring :func:`check_data_fits` (the spec and the worker's config
#: both carry ``data.features``).
DATA_RULES = (
    Cel(
        "!has(self.drift) || !has(self.drift.multivariate) || !has(self.data) || "
        "!has(self.data.features) || size(self.data.features) >= 2",
        "multivariate drift needs at least two features",
        ".drift.multivariate",
    ),
)


def check_data_fits(data: DataColumns, sections: MonitorSections) -> None:
    """The Python side of :data:`DATA_RULES`."""
    features = data.features
    if sections.drift.multivariate is not None and features is not None and len(features) < 2:
        raise ValueError(
            f"drift.multivariate: {DATA_RULES[0].message}; data.features declares "
            f"{len(features)} (per-feature drift covers one feature: remove drift.multivariate)"
        )


#: The CEL side of :func:`check_drift_features` (where the spec declares its features). A name
#: ending in a text descriptor (``review.has_link``) is left to the operator's own check (a
#: condition naming the field): matching it against each text feature here would cost more
#: than the API server's budget allows at 2000 features.
DRIFT_FEATURES_RULE = Cel(
    "!has(self.drift) || !has(self.drift.features) || !has(self.data) || "
    "!has(self.data.features) || "
    # sets.contains (not all/exists): the API server's cost budget admits it for 2000 x 2000.
    "sets.contains(self.data.features.map(f, f.name), self.drift.features"
    f".filter(o, !o.name.matches('[.]({'|'.join(TEXT_DESCRIPTORS)})$')).map(o, o.name))",
    "drift.features[].name must name one of data.features",
    ".drift.features",
)


def check_drift_features(
    overrides: list[FeatureDriftOverride], features: list[str], texts: Iterable[str] = ()
) -> None:
    """Every per-feature drift override names a feature or a text feature's descriptor
    series: a typo would otherwise be ignored and the feature tested with the defaults.
    ``features``: declared or inferred names; ``texts``: those of text features."""
    known = set(features) | {f"{t}.{d}" for t in texts for d in TEXT_DESCRIPTORS}
    for i, o in enumerate(overrides):
        if o.name not in known:
            listed = ", ".join(sorted(known)[:20])
            raise ValueError(
                f"drift.features[{i}].name: {o.name!r} is not a feature (features: {listed})"
            )
