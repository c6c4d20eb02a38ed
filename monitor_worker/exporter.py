"""Prometheus exposition of the latest evaluation and the worker's counters. Reads only.

Every series carries ``modelmonitor`` and ``model`` labels; Prometheus adds ``namespace``
(and ``job``, ``pod``...) from service discovery. Names and meanings: docs/metrics.md."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .service import MonitorService


class Ingestion:
    """Request-level instruments, updated by the HTTP layer."""

    def __init__(self, registry: CollectorRegistry, labels: dict[str, str]) -> None:
        names = ["modelmonitor", "model"]
        self._labels = labels
        self.requests = Counter(
            "modelmonitor_ingest_requests",
            "Ingestion requests by endpoint and HTTP status.",
            [*names, "endpoint", "code"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "modelmonitor_ingest_queue_depth",
            "Batches accepted and waiting to be applied.",
            names,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "modelmonitor_ingest_batch_duration_seconds",
            "Time to parse and apply one batch.",
            names,
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.snapshot_failures = Counter(
            "modelmonitor_snapshot_failures",
            "Snapshots that could not be written.",
            names,
            registry=registry,
        )

    def request(self, endpoint: str, code: int) -> None:
        self.requests.labels(**self._labels, endpoint=endpoint, code=str(code)).inc()


class WindowCollector(Collector):
    """Exports the latest :class:`Evaluation` and the :class:`Totals` at scrape time."""

    def __init__(
        self, labels: dict[str, str], task: str, service: Callable[[], MonitorService | None]
    ) -> None:
        self.labels = labels
        self.task = task
        self.service = service

    def _gauge(self, name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=[*self.labels, *extra])

    def _counter(self, name: str, doc: str, extra: tuple[str, ...] = ()) -> CounterMetricFamily:
        return CounterMetricFamily(name, doc, labels=[*self.labels, *extra])

    def collect(self) -> Iterator[Metric]:
        base = list(self.labels.values())
        info = self._gauge("modelmonitor_info", "Always 1; the model's task as a label.", ("task",))
        info.add_metric([*base, self.task], 1)
        yield info
        service = self.service()
        loaded = self._gauge(
            "modelmonitor_reference_loaded",
            "1 when the reference is loaded and the worker computes figures; 0 while it retries.",
        )
        loaded.add_metric(base, 0.0 if service is None else 1.0)
        yield loaded
        if service is None:
            return

        t = service.state.totals
        records = self._counter(
            "modelmonitor_records", "Records accepted (2xx) since the state began."
        )
        records.add_metric(base, t.records)
        yield records
        late = self._counter(
            "modelmonitor_late_records", "Records whose timestamp was older than the window."
        )
        late.add_metric(base, t.late_records)
        yield late
        labels = self._counter(
            "modelmonitor_labels",
            "Labels by outcome: matched to a pending prediction by id, unmatched, expired (prediction dropped before its label came: TTL or maxPending), or inline in the record.",
            ("outcome",),
        )
        for outcome, count in (
            ("matched", t.labels_matched),
            ("unmatched", t.labels_unmatched),
            ("expired", t.labels_expired),
            ("inline", t.labels_inline),
        ):
            labels.add_metric([*base, outcome], count)
        yield labels
        labelled = self._counter(
            "modelmonitor_predictions_labelled", "Predictions joined with their label."
        )
        labelled.add_metric(base, t.labelled)
        yield labelled
        if self.task != "regression":
            correct = self._counter(
                "modelmonitor_predictions_correct",
                "Labelled predictions that were right (for accuracy objectives).",
            )
            correct.add_metric(base, t.correct)
            yield correct
        gauges: tuple[tuple[str, float, str], ...] = (
            (
                "modelmonitor_last_record_timestamp_seconds",
                t.last_record_at,
                "When the last record arrived (Unix time; 0: never).",
            ),
            (
                "modelmonitor_last_label_timestamp_seconds",
                t.last_label_at,
                "When the last label arrived (Unix time; 0: never).",
            ),
            (
                "modelmonitor_pending_labels",
                float(len(service.state.pending)),
                "Predictions with an id waiting for their label.",
            ),
        )
        for name, value, doc in gauges:
            g = self._gauge(name, doc)
            g.add_metric(base, value)
            yield g
        snap = service.snapshot_at
        if snap is not None:
            g = self._gauge(
                "modelmonitor_snapshot_timestamp_seconds", "When the state was last saved."
            )
            g.add_metric(base, snap)
            yield g

        ev = service.evaluation
        if ev is None:
            return
        window: tuple[tuple[str, float, str], ...] = (
            (
                "modelmonitor_evaluation_timestamp_seconds",
                ev.at,
                "When the window was last evaluated.",
            ),
            (
                "modelmonitor_evaluation_duration_seconds",
                ev.duration,
                "How long the last evaluation took.",
            ),
            ("modelmonitor_window_records", ev.records, "Records in the current window."),
            (
                "modelmonitor_window_labelled_records",
                ev.labelled,
                "Labelled records in the current window.",
            ),
            (
                "modelmonitor_window_sufficient",
                1.0 if ev.sufficient else 0.0,
                "1 when the window holds at least minSamples records.",
            ),
        )
        for name, value, doc in window:
            g = self._gauge(name, doc)
            g.add_metric(base, value)
            yield g
        if ev.quality:
            g = self._gauge(
                "modelmonitor_quality", "Quality over the window's labelled records.", ("metric",)
            )
            for metric, value in sorted(ev.quality.items()):
                g.add_metric([*base, metric], value)
            yield g
        if ev.features:
            score = self._gauge(
                "modelmonitor_feature_drift_score",
                "Per-feature drift: the p-value of a test (ks, chi-square, z-test) or the distance (wasserstein, jensen-shannon, psi).",
                ("feature", "method"),
            )
            detected = self._gauge(
                "modelmonitor_feature_drift_detected",
                "1 when the feature drifted by its method and threshold.",
                ("feature", "method"),
            )
            threshold = self._gauge(
                "modelmonitor_feature_drift_threshold",
                "The threshold the feature's score is compared with.",
                ("feature", "method"),
            )
            for feature, r in sorted(ev.features.items()):
                score.add_metric([*base, feature, r.method], r.score)
                detected.add_metric([*base, feature, r.method], 1.0 if r.drifted else 0.0)
                threshold.add_metric([*base, feature, r.method], r.threshold)
            yield score
            yield detected
            yield threshold
        if ev.drift_share is not None:
            g = self._gauge("modelmonitor_drift_share", "Share of features drifted in the window.")
            g.add_metric(base, ev.drift_share)
            yield g
            g = self._gauge(
                "modelmonitor_dataset_drift", "1 when the drift share reaches drift.shareThreshold."
            )
            g.add_metric(base, 1.0 if ev.dataset_drift else 0.0)
            yield g
        for kind, result in (("prediction", ev.prediction_drift), ("score", ev.score_drift)):
            if result is None:
                continue
            g = self._gauge(
                f"modelmonitor_{kind}_drift_score",
                f"Drift of the model's {kind}s: p-value or distance.",
                ("method",),
            )
            g.add_metric([*base, result.method], result.score)
            yield g
            g = self._gauge(
                f"modelmonitor_{kind}_drift_detected", f"1 when the {kind}s drifted.", ("method",)
            )
            g.add_metric([*base, result.method], 1.0 if result.drifted else 0.0)
            yield g
        if ev.outlier_ratio is not None:
            g = self._gauge(
                "modelmonitor_outlier_ratio", "Share of outliers in a uniform sample of the window."
            )
            g.add_metric(base, ev.outlier_ratio)
            yield g
            g = self._gauge("modelmonitor_outliers_scored", "Rows scored for the outlier ratio.")
            g.add_metric(base, ev.outliers_scored)
            yield g
