"""Prometheus exposition of the worker. Reads only.

Series are named by the shared table (:mod:`mm_api.metrics`) and built from the samples of
:mod:`monitor_worker.samples`; every series carries ``modelmonitor`` and ``model`` labels;
Prometheus adds ``namespace`` (and ``job``, ``pod``...) from service discovery. Meanings:
docs/metrics.md."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mm_api import metrics as m
from mm_api.alerts import Sample

from .samples import (
    evaluation_samples,
    keyed_samples,
    reference_samples,
    rich_samples,
    state_samples,
    store_samples,
)

if TYPE_CHECKING:
    from .service import MonitorService

_BY_SERIES = {metric.series: metric for metric in m.ALL}


class Ingestion:
    """Request-level instruments, updated by the HTTP layer."""

    def __init__(self, registry: CollectorRegistry, labels: dict[str, str]) -> None:
        self._labels = labels
        common = list(m.COMMON)

        def make(cls, metric: m.Metric, **kwargs):
            return cls(
                metric.name, metric.help, [*common, *metric.labels], registry=registry, **kwargs
            )

        self.requests = make(Counter, m.INGEST_REQUESTS)
        self.queue_depth = make(Gauge, m.INGEST_QUEUE_DEPTH)
        self.batch_seconds = make(
            Histogram,
            m.INGEST_BATCH_DURATION,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.snapshot_failures = make(Counter, m.SNAPSHOT_FAILURES)
        self.store_flush_failures = make(Counter, m.STORE_FLUSH_FAILURES)
        self.kserve_events_refused = make(Counter, m.KSERVE_EVENTS_REFUSED)

    def request(self, endpoint: str, code: int) -> None:
        self.requests.labels(**self._labels, api=endpoint, code=str(code)).inc()

    def kserve_refused(self, reason: str) -> None:
        self.kserve_events_refused.labels(**self._labels, reason=reason).inc()


def families(labels: dict[str, str], samples: Iterable[Sample]) -> Iterator[Metric]:
    """Metric families of ``samples``, one per metric, in the order they first appear. Samples
    of one metric may differ in their label names: a keyed window's carry ``kserve_endpoint``
    and ``segment`` too (mm_api.metrics.KEYED_LABELS), the main window's series do not."""
    built: dict[str, Metric] = {}
    for s in samples:
        family = built.get(s.series)
        if family is None:
            metric = _BY_SERIES[s.series]
            kind = CounterMetricFamily if metric.kind == "counter" else GaugeMetricFamily
            family = kind(metric.name, metric.help, labels=[])
            built[s.series] = family
        family.add_sample(s.series, {**labels, **dict(s.labels)}, s.value)
    return iter(built.values())


class WindowCollector(Collector):
    """Exports the latest evaluation and the state's counters at scrape time."""

    def __init__(
        self, labels: dict[str, str], task: str, service: Callable[[], MonitorService | None]
    ) -> None:
        self.labels = labels
        self.task = task
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service()
        head = [
            Sample(m.INFO.series, (("task", self.task),), 1.0),
            Sample(m.REFERENCE_LOADED.series, (), 0.0 if service is None else 1.0),
        ]
        if service is None:
            yield from families(self.labels, head)
            return
        samples = head + state_samples(
            service.state.totals,
            len(service.state.pending),
            service.snapshot_at,
            classifier=self.task != "regression",
        )
        if service.store is not None:
            samples += store_samples(service)
        if service.reference is not None:
            samples += reference_samples(service.reference)
        samples += rich_samples(service)
        if service.evaluation is not None:
            samples += evaluation_samples(service.evaluation)
        for key, ev in list(service.keyed_evaluations.items()):
            samples += keyed_samples(key, ev)
        yield from families(self.labels, samples)
