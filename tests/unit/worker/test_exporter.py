"""The exposition: series named by the shared table, counters with _total, and every figure
equal to the same evaluation's /v1/status."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mm_api import metrics as m
from mm_api.worker_config import parse_config
from monitor_worker.exporter import WindowCollector
from monitor_worker.profile import build_profile
from monitor_worker.reference import ReferenceData
from monitor_worker.service import MonitorService

LABELS = {"modelmonitor": "m", "model": "m"}


def scrape(service) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(WindowCollector(LABELS, "binary-classification", lambda: service))
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            extra = tuple(sorted((k, v) for k, v in s.labels.items() if k not in LABELS))
            assert {k: s.labels[k] for k in LABELS} == LABELS
            out[(s.name, extra)] = s.value
    return out


def test_a_worker_without_reference_exports_only_info_and_loaded():
    series = scrape(None)
    assert series == {
        (m.INFO.series, (("task", "binary-classification"),)): 1.0,
        (m.REFERENCE_LOADED.series, ()): 0.0,
    }


def test_exported_figures_equal_the_status_document():
    config = parse_config(
        {
            "monitor": {"name": "m"},
            "model": {"name": "m", "task": "binary-classification"},
            "window": {"minSamples": 50},
            "outliers": {"enabled": False},
        }
    )
    rng = np.random.default_rng(2)
    ref = {"x": rng.normal(size=400), "c": rng.choice(["a", "b"], 400)}
    svc = MonitorService(
        config, build_profile(config, ReferenceData(pa.table(ref), "s")), lambda: 1e6
    )
    n = 300
    svc.ingest_records(
        orjson.dumps(
            {"columns": {"x": rng.normal(1, 1, n).tolist(), "c": rng.choice(["a", "b"], n).tolist(),
                         "prediction": rng.integers(0, 2, n).tolist(), "label": rng.integers(0, 2, n).tolist(),
                         "score": rng.random(n).tolist()}}
        )
    )  # fmt: skip
    svc.evaluate(svc.window_summary())
    series = scrape(svc)
    doc = svc.status_document()
    assert series[(m.RECORDS.series, ())] == doc["totals"]["records"] == n
    assert series[(m.LABELS.series, (("outcome", "inline"),))] == n
    assert series[(m.WINDOW_RECORDS.series, ())] == doc["window"]["records"]
    for metric, value in doc["quality"].items():
        assert series[(m.QUALITY.series, (("metric", metric),))] == value
    for feature, r in doc["drift"]["features"].items():
        key = (("feature", feature), ("method", r["method"]))
        assert series[(m.FEATURE_DRIFT_SCORE.series, key)] == r["score"]
        assert series[(m.FEATURE_DRIFT_DETECTED.series, key)] == float(r["drifted"])
    assert series[(m.DRIFT_SHARE.series, ())] == doc["drift"]["share"]
    names = {name for name, _ in series}
    assert names <= {metric.series for metric in m.ALL}, names - {metric.series for metric in m.ALL}
