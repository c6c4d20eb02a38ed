"""The worker's figures as Prometheus samples, named by the shared metric table. The exporter
exposes exactly these, and the shared alert table is evaluated on exactly these for
``/v1/status``, so Prometheus and the worker judge the same numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mm_api import metrics as m
from mm_api.alerts import Sample
from mm_api.metrics import Metric

if TYPE_CHECKING:
    from .evaluate import Evaluation
    from .ingest import EventKey
    from .service import MonitorService
    from .window import Totals


def _s(metric_: Metric, value: float, **labels: str) -> Sample:
    return Sample(metric_.series, tuple(labels.items()), float(value))


def evaluation_samples(ev: Evaluation) -> list[Sample]:
    """The evaluated window: quality, drift, outliers and window counts."""
    out = [
        _s(m.EVALUATION_TIMESTAMP, ev.at),
        _s(m.EVALUATION_DURATION, ev.duration),
        _s(m.WINDOW_RECORDS, ev.records),
        _s(m.WINDOW_LABELLED, ev.labelled),
        _s(m.WINDOW_SUFFICIENT, 1.0 if ev.sufficient else 0.0),
    ]
    out += [_s(m.QUALITY, v, metric=k) for k, v in sorted(ev.quality.items())]
    for feature, r in sorted(ev.features.items()):
        out += [
            _s(m.FEATURE_DRIFT_SCORE, r.score, feature=feature, method=r.method),
            _s(m.FEATURE_DRIFT_DETECTED, r.drifted, feature=feature, method=r.method),
            _s(m.FEATURE_DRIFT_THRESHOLD, r.threshold, feature=feature, method=r.method),
        ]
    if ev.drift_share is not None:
        out += [
            _s(m.DRIFT_SHARE, ev.drift_share),
            _s(m.DATASET_DRIFT, 1.0 if ev.dataset_drift else 0.0),
        ]
    for result, score, detected, threshold in (
        (ev.prediction_drift, m.PREDICTION_DRIFT_SCORE, m.PREDICTION_DRIFT_DETECTED, m.PREDICTION_DRIFT_THRESHOLD),
        (ev.score_drift, m.SCORE_DRIFT_SCORE, m.SCORE_DRIFT_DETECTED, m.SCORE_DRIFT_THRESHOLD),
    ):  # fmt: skip
        if result is not None:
            out += [
                _s(score, result.score, method=result.method),
                _s(detected, result.drifted, method=result.method),
                _s(threshold, result.threshold, method=result.method),
            ]
    if ev.outlier_ratio is not None:
        out += [_s(m.OUTLIER_RATIO, ev.outlier_ratio), _s(m.OUTLIERS_SCORED, ev.outliers_scored)]
    for measure, figures in sorted(ev.measures.items()):
        out.append(_s(m.MEASURE_VALUES, figures["count"], measure=measure))
        out += [
            _s(m.MEASURE_QUANTILE, figures[q], measure=measure, quantile=q)
            for q in ("p50", "p95", "p99")
            if q in figures
        ]
    return out + estimation_samples(ev)


_KEYED_SERIES = frozenset(metric.series for metric in m.KEYED_METRICS)


def keyed_samples(key: EventKey, ev: Evaluation) -> list[Sample]:
    """A keyed window's figures (a KServe canary endpoint's or a segment's,
    monitor_worker.windows): the window's series of :func:`evaluation_samples`, each with the
    :data:`~mm_api.metrics.KEYED_LABELS` ``kserve_endpoint`` and ``segment`` last."""
    extra = (("kserve_endpoint", key.endpoint), ("segment", key.segment_label))
    return [
        Sample(s.series, (*s.labels, *extra), s.value)
        for s in evaluation_samples(ev)
        if s.series in _KEYED_SERIES
    ]


def estimation_samples(ev: Evaluation) -> list[Sample]:
    """Quality estimated without labels, with its bands, and multivariate drift."""
    out = []
    for metric, e in sorted(ev.estimated.items()):
        out += [
            _s(m.ESTIMATED_QUALITY, e.value, metric=metric),
            _s(m.ESTIMATED_QUALITY_LOWER, e.lower, metric=metric),
            _s(m.ESTIMATED_QUALITY_UPPER, e.upper, metric=metric),
            _s(m.ESTIMATED_QUALITY_SAMPLING_ERROR, e.sampling_error, metric=metric),
            _s(m.ESTIMATED_QUALITY_OUTSIDE_BAND, e.outside_band, metric=metric),
        ]
        for series, bound in (
            (m.ESTIMATED_QUALITY_LOWER_THRESHOLD, e.lower_threshold),
            (m.ESTIMATED_QUALITY_UPPER_THRESHOLD, e.upper_threshold),
        ):
            if bound is not None:
                out.append(_s(series, bound, metric=metric))
    mv = ev.multivariate
    if mv is not None:
        out += [
            _s(m.MULTIVARIATE_DRIFT, mv.value, method=mv.method),
            _s(m.MULTIVARIATE_DRIFT_DETECTED, mv.drifted, method=mv.method),
        ]
        for series, bound in (
            (m.MULTIVARIATE_DRIFT_UPPER_THRESHOLD, mv.upper_threshold),
            (m.MULTIVARIATE_DRIFT_LOWER_THRESHOLD, mv.lower_threshold),
        ):
            if bound is not None:
                out.append(_s(series, bound, method=mv.method))
    return out


def state_samples(
    totals: Totals, pending: int, snapshot_at: float | None, classifier: bool
) -> list[Sample]:
    """Counters and timestamps of the state (not of one evaluation)."""
    out = [
        _s(m.RECORDS, totals.records),
        _s(m.LATE_RECORDS, totals.late_records),
        _s(m.LABELS, totals.labels_matched, outcome="matched"),
        _s(m.LABELS, totals.labels_unmatched, outcome="unmatched"),
        _s(m.LABELS, totals.labels_expired, outcome="expired"),
        _s(m.LABELS, totals.labels_inline, outcome="inline"),
        _s(m.PREDICTIONS_LABELLED, totals.labelled),
    ]
    if classifier:
        out.append(_s(m.PREDICTIONS_CORRECT, totals.correct))
    out += [
        _s(m.LAST_RECORD_TIMESTAMP, totals.last_record_at),
        _s(m.LAST_LABEL_TIMESTAMP, totals.last_label_at),
        _s(m.PENDING_LABELS, pending),
    ]
    if snapshot_at is not None:
        out.append(_s(m.SNAPSHOT_TIMESTAMP, snapshot_at))
    return out


def rich_samples(service: MonitorService) -> list[Sample]:
    """Text truncations (a counter per text feature, 0 included) and the embedder in use."""
    schema = service.profile.schema
    truncated = service.state.totals.texts_truncated
    out = [_s(m.TEXT_TRUNCATED, truncated.get(f.name, 0), feature=f.name) for f in schema.texts]
    rich = service.profile.rich
    if rich is not None and rich.embeddings is not None:
        e = rich.embeddings.embedder
        out.append(_s(m.EMBEDDER_INFO, 1.0, device=e.device, runtime=e.runtime))
    return out


def store_samples(service: MonitorService) -> list[Sample]:
    """The shared store as this replica sees it."""
    store = service.store
    assert store is not None
    out = [
        _s(m.STORE_REACHABLE, 1.0 if store.reachable else 0.0),
        _s(m.STORE_BACKLOG, service.backlog()),
        _s(m.KSERVE_PAIRS_REFUSED, service.pairs_refused),
    ]
    if store.last_flush is not None:
        out.append(_s(m.STORE_LAST_FLUSH, store.last_flush))
    return out


def reference_samples(reference: Any) -> list[Sample]:
    """The reference's reloads and when the one in use was profiled (a ReferenceState)."""
    out = [
        Sample(m.REFERENCE_RELOADS.series, (("result", "reloaded"),), float(reference.reloads)),
        Sample(
            m.REFERENCE_RELOADS.series, (("result", "failed"),), float(reference.reload_failures)
        ),
    ]
    if reference.loaded_at is not None:
        out.append(Sample(m.REFERENCE_LOADED_AT.series, (), float(reference.loaded_at)))
    return out
