"""Every metric the worker exports: name, kind, labels and help, in one table. The worker's
exporter builds its series from it, the alert rules and the operator's health queries name
series through it, and docs/metrics.md is checked against it (``tests/unit/test_docs.py``).

Every series also carries the :data:`COMMON` labels; Prometheus adds ``namespace`` (and
``job``, ``pod``...) from service discovery. Counters are exposed with the ``_total`` suffix
(:attr:`Metric.series`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

COMMON = ("modelmonitor", "model")


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Literal["gauge", "counter", "histogram"]
    help: str
    labels: tuple[str, ...] = ()

    @property
    def series(self) -> str:
        """The name PromQL sees (counters get ``_total``)."""
        return f"{self.name}_total" if self.kind == "counter" else self.name

    @property
    def all_labels(self) -> tuple[str, ...]:
        return (*COMMON, *self.labels)


def _g(name: str, help: str, *labels: str) -> Metric:
    return Metric(f"modelmonitor_{name}", "gauge", help, labels)


def _c(name: str, help: str, *labels: str) -> Metric:
    return Metric(f"modelmonitor_{name}", "counter", help, labels)


# -- the worker and its inputs --------------------------------------------------------------------
INFO = _g("info", "Always 1; the model's task as a label.", "task")
REFERENCE_LOADED = _g(
    "reference_loaded",
    "1 when the reference is loaded and the worker computes figures; 0 while it retries.",
)
REFERENCE_RELOADS = _c(
    "reference_reloads",
    "Reference reloads on new contents (a changed file, a new ETag), by result: reloaded, or "
    "failed (the previous reference keeps serving).",
    "result",
)
REFERENCE_LOADED_AT = _g(
    "reference_loaded_timestamp_seconds", "When the reference in use was profiled."
)
RECORDS = _c("records", "Records accepted (2xx) since the state began.")
LATE_RECORDS = _c("late_records", "Records whose timestamp was older than the window.")
LABELS = _c(
    "labels",
    "Labels by outcome: matched to a pending prediction by id, unmatched, expired (prediction "
    "dropped before its label came: TTL or maxPending), or inline in the record.",
    "outcome",
)
PREDICTIONS_LABELLED = _c("predictions_labelled", "Predictions joined with their label.")
PREDICTIONS_CORRECT = _c(
    "predictions_correct", "Labelled predictions that were right (for accuracy objectives)."
)
LAST_RECORD_TIMESTAMP = _g(
    "last_record_timestamp_seconds", "When the last record arrived (Unix time; 0: never)."
)
LAST_LABEL_TIMESTAMP = _g(
    "last_label_timestamp_seconds", "When the last label arrived (Unix time; 0: never)."
)
PENDING_LABELS = _g("pending_labels", "Predictions with an id waiting for their label.")
SNAPSHOT_TIMESTAMP = _g("snapshot_timestamp_seconds", "When the state was last saved.")

# -- the evaluated window --------------------------------------------------------------------------
EVALUATION_TIMESTAMP = _g("evaluation_timestamp_seconds", "When the window was last evaluated.")
EVALUATION_DURATION = _g("evaluation_duration_seconds", "How long the last evaluation took.")
WINDOW_RECORDS = _g("window_records", "Records in the current window.")
WINDOW_LABELLED = _g("window_labelled_records", "Labelled records in the current window.")
WINDOW_SUFFICIENT = _g("window_sufficient", "1 when the window holds at least minSamples records.")
QUALITY = _g("quality", "Quality over the window's labelled records.", "metric")
FEATURE_DRIFT_SCORE = _g(
    "feature_drift_score",
    "Per-feature drift: the p-value of a test (ks, chi-square, z-test) or the distance "
    "(wasserstein, jensen-shannon, psi).",
    "feature",
    "method",
)
FEATURE_DRIFT_DETECTED = _g(
    "feature_drift_detected",
    "1 when the feature drifted by its method and threshold.",
    "feature",
    "method",
)
FEATURE_DRIFT_THRESHOLD = _g(
    "feature_drift_threshold",
    "The threshold the feature's score is compared with.",
    "feature",
    "method",
)
DRIFT_SHARE = _g("drift_share", "Share of features drifted in the window.")
DATASET_DRIFT = _g("dataset_drift", "1 when the drift share reaches drift.shareThreshold.")
PREDICTION_DRIFT_SCORE = _g(
    "prediction_drift_score", "Drift of the model's predictions: p-value or distance.", "method"
)
PREDICTION_DRIFT_DETECTED = _g(
    "prediction_drift_detected", "1 when the predictions drifted.", "method"
)
PREDICTION_DRIFT_THRESHOLD = _g(
    "prediction_drift_threshold",
    "The threshold the predictions' drift score is compared with.",
    "method",
)
SCORE_DRIFT_SCORE = _g(
    "score_drift_score", "Drift of the model's scores: p-value or distance.", "method"
)
SCORE_DRIFT_DETECTED = _g("score_drift_detected", "1 when the scores drifted.", "method")
SCORE_DRIFT_THRESHOLD = _g(
    "score_drift_threshold", "The threshold the scores' drift score is compared with.", "method"
)

OUTLIER_RATIO = _g("outlier_ratio", "Share of outliers in a uniform sample of the window.")
OUTLIERS_SCORED = _g("outliers_scored", "Rows scored for the outlier ratio.")

# -- quality without labels and multivariate drift (docs/estimation.md) ----------------------------
ESTIMATED_QUALITY = _g(
    "estimated_quality",
    "Quality estimated without labels over the window (CBPE for classifiers, DLE for regressors).",
    "metric",
)
ESTIMATED_QUALITY_LOWER = _g(
    "estimated_quality_lower",
    "Lower end of the estimate's confidence band (value - 3 standard errors).",
    "metric",
)
ESTIMATED_QUALITY_UPPER = _g(
    "estimated_quality_upper",
    "Upper end of the estimate's confidence band (value + 3 standard errors).",
    "metric",
)
ESTIMATED_QUALITY_SAMPLING_ERROR = _g(
    "estimated_quality_sampling_error",
    "The estimate's sampling error (NannyML's, for the window's record count).",
    "metric",
)
ESTIMATED_QUALITY_LOWER_THRESHOLD = _g(
    "estimated_quality_lower_threshold",
    "Lower bound of the reference band: the metric over the reference's chunks, mean - 3 std.",
    "metric",
)
ESTIMATED_QUALITY_UPPER_THRESHOLD = _g(
    "estimated_quality_upper_threshold",
    "Upper bound of the reference band: the metric over the reference's chunks, mean + 3 std.",
    "metric",
)
ESTIMATED_QUALITY_OUTSIDE_BAND = _g(
    "estimated_quality_outside_band",
    "1 when the estimate lies outside the reference band (NannyML's alert).",
    "metric",
)
MULTIVARIATE_DRIFT = _g(
    "multivariate_drift",
    "Drift of all features together: the mean PCA reconstruction error, or the domain "
    "classifier's ROC-AUC.",
    "method",
)
MULTIVARIATE_DRIFT_DETECTED = _g(
    "multivariate_drift_detected", "1 when the features drifted together.", "method"
)
MULTIVARIATE_DRIFT_UPPER_THRESHOLD = _g(
    "multivariate_drift_upper_threshold",
    "Drift above this value (the reference band's upper bound, or drift.multivariate.threshold).",
    "method",
)
MULTIVARIATE_DRIFT_LOWER_THRESHOLD = _g(
    "multivariate_drift_lower_threshold",
    "pca-reconstruction: drift below this value too (the reference band's lower bound).",
    "method",
)
# -- texts, embeddings and serving measures (docs/text-and-embeddings.md) -------------------------
MEASURE_QUANTILE = _g(
    "measure_quantile",
    "Window quantile (p50, p95, p99) of a serving measure, within 1 % of the exact value.",
    "measure",
    "quantile",
)
MEASURE_VALUES = _g("measure_values", "Values of a serving measure in the window.", "measure")
TEXT_TRUNCATED = _c("text_truncated", "Texts cut at their feature's maxChars.", "feature")
EMBEDDER_INFO = _g(
    "embedder_info",
    "Always 1 while the worker embeds texts (embed: true): the device and runtime in use.",
    "device",
    "runtime",
)

# -- ingestion (the HTTP layer) --------------------------------------------------------------------
INGEST_REQUESTS = _c(
    # Not "endpoint": the Prometheus Operator sets that label (the ServiceMonitor's port) on
    # every series it scrapes, and would rename ours to exported_endpoint.
    "ingest_requests",
    "Ingestion requests by API (records, labels, cloudevents) and HTTP status.",
    "api",
    "code",
)
INGEST_QUEUE_DEPTH = _g("ingest_queue_depth", "Batches accepted and waiting to be applied.")
INGEST_BATCH_DURATION = Metric(
    "modelmonitor_ingest_batch_duration_seconds", "histogram", "Time to parse and apply one batch."
)
SNAPSHOT_FAILURES = _c("snapshot_failures", "Snapshots that could not be written.")
KSERVE_EVENTS_REFUSED = _c(
    "kserve_events_refused",
    "KServe payload-logger events refused whole (4xx), by why: structured-mode, batched, "
    "binary-tensor, not-inference, partner-refused, segment-limit, invalid.",
    "reason",
)

# -- the shared store of replicas ------------------------------------------------------------------
STORE_REACHABLE = _g("store_reachable", "1 when the shared store answered the last flush, else 0.")
STORE_BACKLOG = _g(
    "store_backlog", "Predictions and KServe halves accepted and not yet written to the store."
)
STORE_LAST_FLUSH = _g(
    "store_last_flush_timestamp_seconds", "When this replica last wrote its part to the store."
)
STORE_FLUSH_FAILURES = _c("store_flush_failures", "Flushes to the shared store that failed.")
KSERVE_PAIRS_REFUSED = _c(
    "kserve_pairs_refused",
    "KServe request/response pairs joined in the shared store whose halves disagree (dropped).",
)

ALL: tuple[Metric, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Metric))

# -- KServe's canary endpoint and segments (docs/kserve.md) ----------------------------------------
#: Labels of the series of a keyed window: the figures of KServe's ``canary`` endpoint, or of a
#: segment (``kserve.segments``), kept apart from the main window's. ``kserve_endpoint``:
#: ``default`` or ``canary`` (not ``endpoint``: the Prometheus Operator gives every series its
#: ServiceMonitor port as ``endpoint``); ``segment``: ``Key=value,...`` (empty for none). The
#: main window (the default endpoint without a segment, and ``/v1/records``) keeps its series
#: without these labels.
KEYED_LABELS = ("kserve_endpoint", "segment")
#: The metrics a keyed window exports too, with :data:`KEYED_LABELS` after their own labels.
KEYED_METRICS: tuple[Metric, ...] = (
    WINDOW_RECORDS, WINDOW_LABELLED, WINDOW_SUFFICIENT, QUALITY,
    FEATURE_DRIFT_SCORE, FEATURE_DRIFT_DETECTED, FEATURE_DRIFT_THRESHOLD, DRIFT_SHARE,
    DATASET_DRIFT, PREDICTION_DRIFT_SCORE, PREDICTION_DRIFT_DETECTED, PREDICTION_DRIFT_THRESHOLD,
    SCORE_DRIFT_SCORE, SCORE_DRIFT_DETECTED, SCORE_DRIFT_THRESHOLD, OUTLIER_RATIO, OUTLIERS_SCORED,
    ESTIMATED_QUALITY, ESTIMATED_QUALITY_LOWER, ESTIMATED_QUALITY_UPPER,
    ESTIMATED_QUALITY_SAMPLING_ERROR, ESTIMATED_QUALITY_LOWER_THRESHOLD,
    ESTIMATED_QUALITY_UPPER_THRESHOLD, ESTIMATED_QUALITY_OUTSIDE_BAND, MULTIVARIATE_DRIFT,
    MULTIVARIATE_DRIFT_DETECTED, MULTIVARIATE_DRIFT_UPPER_THRESHOLD,
    MULTIVARIATE_DRIFT_LOWER_THRESHOLD, MEASURE_QUANTILE, MEASURE_VALUES,
)  # fmt: skip
#: A PromQL matcher for the main window's series only (absent labels match ``""``).
MAIN_WINDOW = 'kserve_endpoint="", segment=""'
