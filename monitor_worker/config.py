"""The worker's configuration: one definition shared with the operator.

The operator parses a ModelMonitor's spec with the same section types (window, drift,
outliers, quality, labels, features) and renders a :class:`WorkerConfig` into the worker's
ConfigMap; the worker parses that file with :func:`load_config`. The CRD's OpenAPI schema
mirrors these types, and ``tests/unit/test_schema_sync.py`` fails when the two drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

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

#: Metrics whose value is a ratio in [0, 1]; thresholds on them must be in [0, 1] too.
RATIO_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc-auc"})
CLASSIFICATION_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc-auc", "log-loss"})
REGRESSION_METRICS = frozenset({"mae", "mse", "rmse", "r2", "mape"})

# Prometheus' duration syntax, so the same strings work in rules (`for:`) and in the worker.
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration such as ``90s``, ``1h30m`` or ``7d``."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h30m or 7d")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def _positive_duration(text: str) -> str:
    if parse_duration(text) <= 0:
        raise ValueError("must be longer than 0s")
    return text


Duration = Annotated[
    str, Field(pattern=DURATION_PATTERN, max_length=32), AfterValidator(_positive_duration)
]
Labels = dict[str, str]


class Section(BaseModel):
    """Base of every config section: camelCase keys like Kubernetes, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


# -- the model and its data -------------------------------------------------------------------


class FeatureSpec(Section):
    name: str = Field(min_length=1, max_length=253)
    type: FeatureType


class DataColumns(Section):
    """How the reference dataset's columns map to features, predictions and labels."""

    features: list[FeatureSpec] | None = Field(
        default=None,
        max_length=2000,
        description="Declared features; inferred from the reference (all other columns) when absent.",
    )
    prediction_column: str = "prediction"
    label_column: str = "label"
    score_column: str = "score"


class ReferenceSource(Section):
    """Where the worker reads the reference dataset: a file or an http(s) URL."""

    path: str | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    format: ReferenceFormat = "auto"

    @model_validator(mode="after")
    def _exactly_one(self) -> ReferenceSource:
        if (self.path is None) == (self.url is None):
            raise ValueError("set exactly one of path or url")
        return self


class WorkerData(DataColumns):
    reference: ReferenceSource | None = None


# -- windows and statistics ---------------------------------------------------------------------


class WindowSpec(Section):
    size: Duration = "1h"
    buckets: int = Field(default=12, ge=1, le=1440)
    evaluation_interval: Duration = "30s"
    min_samples: int = Field(default=200, ge=1)


class FeatureDriftOverride(Section):
    name: str = Field(min_length=1)
    method: DriftMethod | None = None
    threshold: float | None = Field(default=None, gt=0)
    enabled: bool = True


class PredictionDriftSpec(Section):
    enabled: bool = True
    method: DriftMethod = "auto"
    threshold: float | None = Field(default=None, gt=0)


class DriftSpec(Section):
    enabled: bool = True
    method: DriftMethod = "auto"
    threshold: float | None = Field(
        default=None,
        gt=0,
        description="p-value tests drift below it (default 0.05); distances at or above it (default 0.1).",
    )
    share_threshold: float = Field(default=0.5, gt=0, le=1)
    features: list[FeatureDriftOverride] = Field(default_factory=list, max_length=2000)
    prediction: PredictionDriftSpec = Field(default_factory=PredictionDriftSpec)


class OutlierSpec(Section):
    enabled: bool = True
    method: OutlierMethod = "isolation-forest"
    contamination: float = Field(default=0.01, gt=0, le=0.5)
    max_ratio: float = Field(default=0.05, ge=0, le=1)
    sample_size: int = Field(default=2000, ge=10, le=100000)


class QualityThreshold(Section):
    metric: QualityMetric
    min: float | None = None
    max: float | None = None
    severity: Severity | None = None

    @model_validator(mode="after")
    def _bounds(self) -> QualityThreshold:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.metric in RATIO_METRICS:
            for bound in (self.min, self.max):
                if bound is not None and not 0 <= bound <= 1:
                    raise ValueError(f"{self.metric} is a ratio: min and max must be in [0, 1]")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class QualitySpec(Section):
    thresholds: list[QualityThreshold] = Field(default_factory=list, max_length=20)
    average: Averaging = "macro"


class LabelsSpec(Section):
    """The bounded store of predictions waiting for their late labels."""

    ttl: Duration = "24h"
    max_pending: int = Field(default=100000, ge=0, le=10_000_000)


class ModelInfo(Section):
    name: str = Field(min_length=1, max_length=63)
    task: Task
    classes: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        max_length=1000,
        description="Class labels in the order of probability vectors (multiclass); optional.",
    )
    positive_class: str = "1"


class MonitorSections(Section):
    """The sections the worker evaluates; the ModelMonitor spec embeds the same ones."""

    window: WindowSpec = Field(default_factory=WindowSpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    outliers: OutlierSpec = Field(default_factory=OutlierSpec)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    labels: LabelsSpec = Field(default_factory=LabelsSpec)

    @model_validator(mode="after")
    def _window_fits(self) -> MonitorSections:
        if parse_duration(self.window.size) < parse_duration(self.window.evaluation_interval):
            raise ValueError("window.size must be at least window.evaluationInterval")
        return self


# -- the worker process -----------------------------------------------------------------------


class Identity(Section):
    name: str = Field(min_length=1)
    namespace: str = "default"


class IngestionSpec(Section):
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_queue: int = Field(default=64, ge=1, description="Batches waiting; more get 429.")
    auth_token_file: str | None = None


class SnapshotSpec(Section):
    directory: str | None = None
    interval: Duration = "60s"


class WorkerConfig(MonitorSections):
    """The file ``monitor-worker --config`` reads."""

    monitor: Identity
    model: ModelInfo
    data: WorkerData = Field(default_factory=WorkerData)
    ingestion: IngestionSpec = Field(default_factory=IngestionSpec)
    snapshot: SnapshotSpec = Field(default_factory=SnapshotSpec)
    alert_severity: Severity = Field(
        default="warning",
        description="Severity of drift, outlier and threshold violations in /v1/status "
        "(the ModelMonitor's alerts.severity; a threshold's own severity wins).",
    )

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> WorkerConfig:
        check_metrics_fit_task(self.model.task, self.quality)
        return self


def check_metrics_fit_task(task: str, quality: QualitySpec) -> None:
    allowed = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    for i, t in enumerate(quality.thresholds):
        if t.metric not in allowed:
            raise ValueError(
                f"quality.thresholds[{i}].metric: {t.metric} does not apply to a {task} model "
                f"(use one of {', '.join(sorted(allowed))})"
            )


class ConfigError(ValueError):
    """A config that cannot be used; the message names the field."""


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One clause per problem, each naming the field path in the file's own (camelCase) keys,
    under ``prefix`` (e.g. ``spec``)."""
    clauses = []
    for e in err.errors():
        loc = ".".join([prefix] * bool(prefix) + [str(p) for p in e["loc"]])
        msg = e["msg"].removeprefix("Value error, ")
        clauses.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(clauses)


def parse_config(data: Any) -> WorkerConfig:
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def load_config(path: str | Path) -> WorkerConfig:
    """Read and validate a worker config file (YAML or JSON)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path} is not valid YAML: {e}") from None
    return parse_config(data)
