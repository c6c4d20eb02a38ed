"""The docs stay true: the API reference is generated from the current CRD, every metric the
worker exports is documented (and nothing else), every alert the rules can emit has its
runbook anchor, relative links resolve, and the JSON examples are accepted by the worker."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from mm_api import metrics
from mm_api.alerts import METRIC_TITLES, estimated_quality_alert
from mm_api.sections import ESTIMATED_CLASSIFICATION_METRICS, ESTIMATED_REGRESSION_METRICS
from mm_api.worker_config import load_config
from mm_operator.rules import render_rule_groups
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor
from monitor_worker.exporter import Ingestion, WindowCollector
from monitor_worker.loader import Loader
from monitor_worker.profile import build_profile
from monitor_worker.service import MonitorService

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def example_service():
    import os

    cwd = os.getcwd()
    os.chdir(REPO)  # examples/worker.yaml names its reference relative to the repository
    try:
        config = load_config(REPO / "examples" / "worker.yaml")
        service = Loader(config, spawn=False)()  # as the worker builds it
    finally:
        os.chdir(cwd)
    return service


def _exported_names(service: MonitorService) -> set[str]:
    rng = np.random.default_rng(0)
    n = 400
    cols = {
        "amount": rng.lognormal(3, 1, n).tolist(),
        "hour": rng.integers(0, 24, n).tolist(),
        "age": rng.normal(40, 10, n).tolist(),
        "device_score": rng.random(n).tolist(),
        "country": rng.choice(["DE", "FR"], n).tolist(),
        "merchant": rng.choice(["travel", "grocery"], n).tolist(),
        "prediction": rng.integers(0, 2, n).tolist(),
        "score": rng.random(n).tolist(),
        "label": rng.integers(0, 2, n).tolist(),
    }
    service.ingest_records(orjson.dumps({"columns": cols}))
    service.evaluate(service.window_summary())
    service.snapshot_at = 1.0
    registry = CollectorRegistry()
    labels = {"modelmonitor": "m", "model": "m"}
    ingestion = Ingestion(registry, labels)
    ingestion.request("records", 200)
    ingestion.queue_depth.labels(**labels).set(0)
    ingestion.batch_seconds.labels(**labels).observe(0.01)
    ingestion.snapshot_failures.labels(**labels).inc(0)
    ingestion.kserve_refused("binary-tensor")
    registry.register(WindowCollector(labels, "binary-classification", lambda: service))
    names = set()
    for family in registry.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                names.add(re.sub(r"_(bucket|count|sum)$", "", sample.name))
    return names


def test_every_worker_metric_is_documented_and_nothing_else(example_service):
    exported = _exported_names(example_service)
    documented_all = set(re.findall(r"`(modelmonitor_[a-z_]+)`", (DOCS / "metrics.md").read_text()))
    documented = {n for n in documented_all if not n.startswith("modelmonitor_operator_")}
    assert exported - documented == set(), "exported but not in docs/metrics.md"
    # Exported only by workers that share a store (tests/integration/test_replicas.py).
    with_store = {m.series for m in (metrics.STORE_REACHABLE, metrics.STORE_BACKLOG,
                                     metrics.STORE_LAST_FLUSH, metrics.STORE_FLUSH_FAILURES,
                                     metrics.KSERVE_PAIRS_REFUSED)}  # fmt: skip
    assert documented - exported - with_store - RICH_ONLY == set(), "documented but not exported"


#: Exported only by workers with text or embedding features or serving measures (below).
RICH_ONLY = {m.series for m in (metrics.MEASURE_QUANTILE, metrics.MEASURE_VALUES,
                                metrics.TEXT_TRUNCATED, metrics.EMBEDDER_INFO)}  # fmt: skip


def test_a_worker_with_texts_vectors_and_measures_exports_their_metrics(tmp_path):
    """The metrics of RICH_ONLY, documented above, are exported by such a worker (the
    embedder's with ``embed: true``: tests/unit/worker/test_rich_embed.py)."""
    import pyarrow as pa

    from mm_api.worker_config import parse_config
    from monitor_worker.reference import ReferenceData

    config = parse_config(
        {
            "monitor": {"name": "m"},
            "model": {"name": "m", "task": "regression"},
            "data": {"features": [{"name": "review", "type": "text", "maxChars": 5},
                                  {"name": "vec", "type": "embedding", "dimension": 3}]},
            "window": {"minSamples": 10},
            "measures": [{"name": "latency_ms"}],
        }
    )  # fmt: skip
    rng = np.random.default_rng(0)
    reference = pa.table(
        {"review": ["a b", "c d e"] * 20, "vec": rng.normal(size=(40, 3)).tolist()}
    )
    service = MonitorService(config, build_profile(config, ReferenceData(reference, "r")))
    records = [
        {"features": {"review": "long text", "vec": [0.1, 0.2, 0.3]}, "measures": {"latency_ms": i}}
        for i in range(20)
    ]
    service.ingest_records(orjson.dumps({"records": records}))
    service.evaluate(service.window_summary())
    registry = CollectorRegistry()
    registry.register(WindowCollector({"modelmonitor": "m", "model": "m"}, "regression",
                                      lambda: service))  # fmt: skip
    names = {s.name for f in registry.collect() for s in f.samples}
    assert RICH_ONLY - {metrics.EMBEDDER_INFO.series} <= names
    assert metrics.EMBEDDER_INFO.series not in names  # nothing is embedded here


def test_the_metric_table_is_documented_with_its_kind_and_labels():
    """docs/metrics.md has a row per metric of mm_api.metrics: name, kind and labels agree."""

    rows = {}
    for line in (DOCS / "metrics.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`modelmonitor_"):
            rows[cells[0].strip("`")] = (cells[1], set(re.findall(r"`([a-z_]+)`", cells[2])))
    for metric in metrics.ALL:
        assert metric.series in rows, f"{metric.series} has no row in docs/metrics.md"
        kind, labels = rows[metric.series]
        assert kind == metric.kind, metric.series
        assert labels == set(metric.labels), metric.series


def test_operator_metrics_are_documented():
    from mm_operator import metrics

    names = {
        m._name + ("_total" if m._type == "counter" else "")  # type: ignore[attr-defined]
        for m in vars(metrics).values()
        if hasattr(m, "_name") and hasattr(m, "_type")
    }
    documented = set(
        re.findall(r"`(modelmonitor_operator_[a-z_]+)`", (DOCS / "metrics.md").read_text())
    )
    assert names == documented


def test_every_alert_has_a_runbook_anchor():
    text = (DOCS / "alerts.md").read_text()
    anchors = set(re.findall(r'<a id="([a-z0-9]+)"></a>', text))
    body = {
        "model": {"task": "binary-classification", "targetRef": {"name": "x"}},
        "data": {"reference": {"url": "https://example.org/reference.csv"}},
        "drift": {"multivariate": {"method": "pca-reconstruction"}},
        "quality": {"thresholds": [{"metric": "accuracy", "min": 0.9}]},
        "alerts": {"objective": {"metric": "accuracy", "target": 0.9}},
        "measures": [
            {"name": "latency_ms", "thresholds": [{"quantile": "p95", "min": 1, "max": 9}]}
        ],
    }
    monitor = parse_monitor({"metadata": {"name": "m", "namespace": "n"}, "spec": body})
    rules = [
        r
        for g in render_rule_groups(monitor, Settings(), target_gpu=True)
        for r in g["rules"]
        if "alert" in r
    ]
    emitted = {r["alert"].lower() for r in rules}
    assert {"modelmonitorestimatedaccuracylow", "modelmonitormultivariatedrift"} <= emitted
    quality = {
        f"modelmonitor{t.lower()}{w}" for t in METRIC_TITLES.values() for w in ("low", "high")
    }
    quality |= {
        estimated_quality_alert(metric, bound).lower()
        for metric in ESTIMATED_CLASSIFICATION_METRICS + ESTIMATED_REGRESSION_METRICS
        for bound in ("min", "max")
    }
    assert emitted | quality <= anchors
    for rule in rules:
        anchor = rule["annotations"]["runbook_url"].split("#")[1]
        assert anchor in anchors


def test_relative_links_resolve():
    for page in [REPO / "README.md", *DOCS.glob("*.md"), REPO / "helm/model-monitor/README.md"]:
        prose = re.sub(r"`[^`\n]*`", "", page.read_text())  # code spans hold no links
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", prose):
            assert (page.parent / target).exists(), (
                f"{page.relative_to(REPO)} links to missing {target}"
            )


def test_ingestion_examples_are_accepted(example_service):
    text = (DOCS / "ingestion.md").read_text()
    blocks = [b for b in re.findall(r"```json\n(.*?)```", text, re.S) if '"error"' not in b]
    assert len(blocks) == 3
    for block in blocks:
        doc = orjson.loads(block)
        if "labels" in doc:
            out = example_service.ingest_labels(block.encode())
            assert out["accepted"] == len(doc["labels"])
        else:
            assert example_service.ingest_records(block.encode())["accepted"] >= 1
