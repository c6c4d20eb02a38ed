"""The worker's ``GET /v1/status`` document, typed: the worker builds it, the operator's health
reader parses it. Unknown keys are ignored when reading, so an operator reads the documents of
newer workers (a monitor may pin its own worker image)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Document(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_json_dict(self) -> dict:
        """camelCase keys; fields never set are left out (``None`` that was set stays)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class MonitorIdentity(Document):
    name: str
    namespace: str


class ModelIdentity(Document):
    name: str
    task: str


class FeatureInfo(Document):
    name: str
    type: str


class Totals(Document):
    """Monotonic counters since the state began (they survive restarts through snapshots)."""

    records: int = 0
    late_records: int = 0
    labels_matched: int = 0
    labels_unmatched: int = 0
    labels_expired: int = 0
    labels_inline: int = 0
    labelled: int = 0
    correct: int = 0
    last_record_at: float = 0.0
    last_label_at: float = 0.0
    texts_truncated: dict[str, int] = Field(default_factory=dict)


class WindowInfo(Document):
    size: str
    records: int = 0
    labelled: int | None = None
    min_samples: int | None = None
    sufficient: bool = False


class DriftFigure(Document):
    """One drift test: ``score`` is a p-value for tests, a distance otherwise."""

    method: str
    score: float
    statistic: float
    threshold: float
    drifted: bool
    exact: bool


class MultivariateDriftFigure(Document):
    """Drift of all features together. ``value`` is the mean PCA reconstruction error
    (``pca-reconstruction``) or the domain classifier's ROC-AUC (``domain-classifier``); drift
    when it is above ``upperThreshold`` (or, for the reconstruction, below ``lowerThreshold``).
    ``referenceBand`` is the band of the reference's own chunks (pca-reconstruction)."""

    method: str
    value: float
    upper_threshold: float | None = None
    lower_threshold: float | None = None
    drifted: bool
    records: int
    sampling_error: float | None = None
    reference_band: dict[str, float | None] | None = None
    message: str


class DriftInfo(Document):
    share: float | None = None
    detected: bool | None = None
    share_threshold: float
    features: dict[str, DriftFigure] = Field(default_factory=dict)
    prediction: DriftFigure | None = None
    score: DriftFigure | None = None
    multivariate: MultivariateDriftFigure | None = None


class EstimatedFigure(Document):
    """One metric estimated without labels, with NannyML's two bands: the confidence band
    ``lower``/``upper`` (value +- 3 standard errors) and the reference band
    ``lowerThreshold``/``upperThreshold`` (the metric over the reference's chunks, mean +- 3
    std), outside which ``outsideBand`` is true."""

    value: float
    lower: float
    upper: float
    sampling_error: float
    #: DLE: the error of scoring a sample of the window rather than every record (in the band).
    sample_error: float | None = None
    lower_threshold: float | None = None
    upper_threshold: float | None = None
    outside_band: bool
    records: int


class EstimationInfo(Document):
    """Whether quality is estimated without labels, how (``cbpe`` or ``dle``), and why not."""

    enabled: bool
    method: str | None = None
    reason: str | None = None
    scored_records: int | None = None


class OutlierInfo(Document):
    ratio: float | None = None
    scored: int = 0
    max_ratio: float
    method: str


class MeasureFigure(Document):
    """Window quantiles of one serving measure (absent below window.minSamples values)."""

    count: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class EmbedderInfo(Document):
    """The sentence model of ``embed: true`` features: the device really used, and why it
    differs from the one asked for (no usable GPU)."""

    device: str
    runtime: str
    requested_device: str
    fallback: str | None = None
    model: str
    texts_embedded: int = 0  # texts run through the model (each sampled text about once)
    seconds: float = 0.0  # time the model took for them (on the evaluator thread)
    cpu_seconds: float = 0.0  # CPU time of that thread for them


class Violation(Document):
    """An alert of the shared table whose condition holds now (see mm_api.alerts)."""

    alert: str
    severity: str
    value: float
    threshold: float
    message: str
    labels: dict[str, str] = Field(default_factory=dict)
    since: str | None = None


class StoreInfo(Document):
    """The shared store, when replicas use one."""

    url: str
    replica: str
    reachable: bool
    last_error: str | None = None
    last_flush_at: float | None = None
    backlog: int = 0


class ReferenceInfo(Document):
    """The reference in use: its version (file identity or the URL's ETag), when it was
    profiled, its rows (and the rows sampled from a larger file), and its reloads."""

    version: str | None = None
    loaded_at: float | None = None
    rows: int | None = None
    sampled_rows: int | None = None
    reloads: int = 0
    reload_failures: int = 0
    last_error: str | None = None


class WorkerStatus(Document):
    monitor: MonitorIdentity
    model: ModelIdentity
    features: list[FeatureInfo] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    pending_labels: int = 0
    store: StoreInfo | None = None
    reference: ReferenceInfo | None = None
    window: WindowInfo
    evaluated_at: float | None = None
    quality: dict[str, float] | None = None
    estimation: EstimationInfo | None = None
    estimated_quality: dict[str, EstimatedFigure] | None = None
    drift: DriftInfo | None = None
    outliers: OutlierInfo | None = None
    measures: dict[str, MeasureFigure] | None = None
    embedder: EmbedderInfo | None = None
    violations: list[Violation] | None = None
    evaluation_seconds: float | None = None
