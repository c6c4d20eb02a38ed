"""One alert table, two evaluators, one answer: the same window goes to the worker (which
evaluates the table on its own samples for /v1/status) and to promtool (which evaluates the
PrometheusRule the operator renders from the same table over the worker's /metrics), and the
firing sets must be equal — alert names and every label.

The monitor is a ModelMonitor spec; the worker's config is the operator's own rendering of it
(``render_worker_config``), so the whole operator -> worker contract is what is checked."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mm_operator.render import render_worker_config
from mm_operator.rules import render_rule_groups
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor
from monitor_worker.exporter import WindowCollector
from monitor_worker.profile import build_profile
from monitor_worker.reference import ReferenceData
from monitor_worker.service import MonitorService

pytestmark = pytest.mark.prometheus
NAMESPACE, NAME, MODEL = "ml", "fraud", "fraud-detector"
TEAM = {"team": "fraud"}


def monitor(task: str, **spec):
    return parse_monitor(
        {
            "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "u", "generation": 1},
            "spec": {
                "model": {"name": MODEL, "task": task, "targetRef": {"name": "fd"}},
                "window": {"size": "1h", "evaluationInterval": "30s", "minSamples": 100},
                "alerts": {"for": "1m", "labels": TEAM},
                **spec,
            },
        }
    )


def worker_for(m, reference: dict) -> MonitorService:
    config = render_worker_config(m)
    config = config.model_copy(update={"data": config.data.model_copy(update={"reference": None})})
    ref = ReferenceData(pa.table(reference), "seeded")
    return MonitorService(config, build_profile(config, ref), clock=lambda: 1_000_000.0)


def tabular(rng, n, shift=0.0, accuracy=0.9, task="binary-classification", unsure=False,
            labelled=True):  # fmt: skip
    """Seeded records; ``unsure``: scores near 0.5 (what CBPE reads as a coin toss),
    ``labelled=False``: no labels (quality only estimated)."""
    cols = {
        "x1": rng.normal(shift, 1, n),
        "x2": rng.normal(2 * shift, 1, n),
        "x3": rng.normal(0, 1, n),
        "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]),
    }
    if task == "regression":
        y = 3 * cols["x3"] + rng.normal(0, 1, n)
        cols["label"] = y
        cols["prediction"] = y + rng.normal(0, 1 / accuracy, n)
    else:
        y = rng.integers(0, 2, n)
        right = rng.random(n) < accuracy
        cols["label"] = y
        cols["prediction"] = np.where(right, y, 1 - y)
        cols["score"] = np.clip(
            np.where(cols["prediction"] == 1, 0.7, 0.3) + rng.normal(0, 0.1, n), 0, 1
        )
        if unsure:
            cols["score"] = np.clip(0.5 + rng.normal(0, 0.05, n), 0, 1)
    if not labelled:
        del cols["label"]
    return cols


def python_firing(svc: MonitorService) -> set[tuple[tuple[str, str], ...]]:
    ev = svc.evaluate(svc.window_summary())
    base = {"namespace": NAMESPACE, "modelmonitor": NAME, "model": MODEL, **TEAM}
    return {
        tuple(sorted({**base, **v.labels, "alertname": v.alert, "severity": v.severity}.items()))
        for v in ev.violations
    }


def input_series(svc: MonitorService) -> list[dict]:
    """The worker's /metrics as promtool input series (the namespace label is what
    Prometheus' service discovery adds), held constant, plus a healthy scrape target."""
    registry = CollectorRegistry()
    registry.register(
        WindowCollector({"modelmonitor": NAME, "model": MODEL}, svc.config.model.task, lambda: svc)
    )
    series = [{"series": f'up{{namespace="{NAMESPACE}", job="mm-{NAME}"}}', "values": "1x10"}]
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            labels = ", ".join(
                f'{k}="{v}"' for k, v in {**s.labels, "namespace": NAMESPACE}.items()
            )
            series.append({"series": f"{s.name}{{{labels}}}", "values": f"{s.value!r}x10"})
    return series


def promtool_agrees(
    tmp_path: Path, m, svc: MonitorService, expected
) -> subprocess.CompletedProcess:
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": render_rule_groups(m, Settings())}))
    samples = [
        {
            "labels": "ALERTS{"
            + ", ".join(f'{k}="{v}"' for k, v in (*labels, ("alertstate", "firing")))
            + "}",
            "value": 1,
        }
        for labels in sorted(expected)
    ]
    test = {
        "interval": "1m",
        "input_series": input_series(svc),
        "promql_expr_test": [
            {"expr": 'ALERTS{alertstate="firing"}', "eval_time": "5m", "exp_samples": samples}
        ],
    }
    spec = tmp_path / "agreement.yml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [test]})
    )
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run scripts/setup.sh (Debian package prometheus)"
    return subprocess.run(
        [promtool, "test", "rules", str(spec)], capture_output=True, text=True, timeout=120
    )


CLASSIFIER = {
    "quality": {
        "thresholds": [
            {"metric": "accuracy", "min": 0.8, "severity": "critical"},
            {"metric": "f1", "max": 0.99},
            {"metric": "roc-auc", "min": 0.2},
        ]
    },
    "drift": {"shareThreshold": 0.5},
    "outliers": {"maxRatio": 0.05},
}

# Quality estimated without labels (CBPE, DLE) and multivariate drift (docs/estimation.md).
REFERENCE = {"reference": {"configMapKeyRef": {"name": "reference", "key": "reference.csv"}}}
ESTIMATING = {
    "data": REFERENCE,
    "quality": {"thresholds": [{"metric": "accuracy", "min": 0.8, "severity": "critical"},
                               {"metric": "roc-auc", "min": 0.6}]},
    "drift": {"shareThreshold": 0.5, "multivariate": {"method": "pca-reconstruction"}},
    "outliers": {"maxRatio": 0.05},
}  # fmt: skip

SCENARIOS = {
    # drift in x1, x2 and c (3 of 4 features), accuracy 0.6 < 0.8, outliers from the shift
    "degraded classifier": ("binary-classification", CLASSIFIER, dict(shift=2.0, accuracy=0.6), 2000),
    # nothing but the f1 max and info-level findings, if any
    "healthy classifier": ("binary-classification", CLASSIFIER, dict(shift=0.0, accuracy=0.95), 2000),
    # fewer records than minSamples: figures withheld, InsufficientSamples fires
    "too few records": ("binary-classification", CLASSIFIER, dict(shift=2.0, accuracy=0.5), 40),
    "degraded regressor": (
        "regression",
        {"quality": {"thresholds": [{"metric": "rmse", "max": 1.5}, {"metric": "r2", "min": 0.95}]},
         "drift": {"shareThreshold": 0.25, "prediction": {"enabled": True}}, "outliers": {"enabled": False}},
        dict(shift=1.0, accuracy=0.5, task="regression"),
        2000,
    ),
    # no labels; scores near 0.5: CBPE estimates accuracy near 0.5 < 0.8 (and out of band)
    "classifier estimated without labels": (
        "binary-classification", ESTIMATING, dict(unsure=True, labelled=False), 2000),
    # no labels; shifted inputs: the features drift one by one and together
    "shifted inputs, joint drift": (
        "binary-classification", ESTIMATING, dict(shift=2.0, labelled=False), 2000),
    "regressor estimated without labels": (
        "regression",
        {"data": REFERENCE, "quality": {"thresholds": [{"metric": "mae", "max": 0.5},
                                                       {"metric": "rmse", "max": 0.6}]},
         "drift": {"multivariate": {"method": "pca-reconstruction"}}, "outliers": {"enabled": False}},
        dict(shift=1.0, accuracy=0.9, task="regression", labelled=False),
        2000,
    ),
}  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_worker_and_prometheus_fire_the_same_alerts(tmp_path, scenario):
    task, spec, current, n = SCENARIOS[scenario]
    rng = np.random.default_rng(7)
    m = monitor(task, **spec)
    reference = tabular(rng, 3000, task=task)
    svc = worker_for(m, {k: v for k, v in reference.items()})
    cur = tabular(rng, n, **current)
    svc.ingest_records(
        orjson.dumps({"columns": {k: np.asarray(v).tolist() for k, v in cur.items()}})
    )
    expected = python_firing(svc)
    names = {dict(labels)["alertname"] for labels in expected}
    if scenario == "degraded classifier":
        assert {
            "ModelMonitorAccuracyLow",
            "ModelMonitorDataDrift",
            "ModelMonitorFeatureDrift",
        } <= names
    if scenario == "too few records":
        assert names == {"ModelMonitorInsufficientSamples"}
    if scenario == "degraded regressor":
        assert {"ModelMonitorRmseHigh", "ModelMonitorR2Low"} <= names
    if scenario == "classifier estimated without labels":
        assert {
            "ModelMonitorEstimatedAccuracyLow",
            "ModelMonitorEstimatedQualityOutsideBand",
        } <= names
        assert "ModelMonitorAccuracyLow" not in names  # no labels: nothing measured
    if scenario == "shifted inputs, joint drift":
        assert {"ModelMonitorMultivariateDrift", "ModelMonitorDataDrift"} <= names
    if scenario == "regressor estimated without labels":
        assert {"ModelMonitorEstimatedMaeHigh", "ModelMonitorEstimatedRmseHigh"} <= names
    r = promtool_agrees(tmp_path, m, svc, expected)
    assert r.returncode == 0, f"firing sets differ:\n{r.stdout}\n{r.stderr}"


def test_a_disagreement_is_caught(tmp_path):
    """The check can fail: drop one alert the worker reports and promtool must object."""
    task, spec, current, n = SCENARIOS["degraded classifier"]
    rng = np.random.default_rng(7)
    m = monitor(task, **spec)
    svc = worker_for(m, tabular(rng, 3000))
    cur = tabular(rng, n, **current)
    svc.ingest_records(
        orjson.dumps({"columns": {k: np.asarray(v).tolist() for k, v in cur.items()}})
    )
    expected = python_firing(svc)
    one_less = set(sorted(expected)[1:])
    r = promtool_agrees(tmp_path, m, svc, one_less)
    assert r.returncode != 0


def test_texts_and_serving_measures_fire_the_same_alerts(tmp_path):
    """Serving-measure bounds (``measures[].thresholds``) and text descriptor drift go through
    the same table: the worker's violations and promtool's ALERTS agree, labels included
    (``measure``/``quantile``, ``feature="review.chars"``)."""
    from tests.unit.stats.peer_cases import texts

    m = monitor(
        "binary-classification",
        data={"features": [{"name": "x1", "type": "numerical"}, {"name": "review", "type": "text"}]},
        measures=[
            {"name": "latency_ms", "thresholds": [{"quantile": "p95", "max": 300},
                                                  {"quantile": "p50", "min": 1000, "severity": "critical"}]},
            {"name": "tokens", "thresholds": [{"quantile": "p99", "max": 1e6}]},
        ],
        drift={"shareThreshold": 0.5},
        outliers={"enabled": False},
    )  # fmt: skip
    rng = np.random.default_rng(11)
    svc = worker_for(m, {"x1": rng.normal(0, 1, 1500), "review": texts(1, 1500)})
    n = 800
    latency = rng.lognormal(5, 0.6, n)
    svc.ingest_records(
        orjson.dumps(
            {
                "columns": {
                    "x1": rng.normal(0, 1, n).tolist(),
                    "review": texts(2, n, shifted=True),
                    "measures": [
                        {"latency_ms": float(v), "tokens": int(t)}
                        for v, t in zip(latency, rng.integers(10, 500, n), strict=True)
                    ],
                }
            }
        )
    )
    expected = python_firing(svc)
    fired = {(d["alertname"], d.get("measure"), d.get("quantile")) for d in map(dict, expected)}
    assert ("ModelMonitorMeasureHigh", "latency_ms", "p95") in fired
    assert ("ModelMonitorMeasureLow", "latency_ms", "p50") in fired
    assert not any(measure == "tokens" for _, measure, _ in fired)
    drifted = {dict(labels).get("feature") for labels in expected}
    assert {"review.chars", "review.words"} <= drifted
    r = promtool_agrees(tmp_path, m, svc, expected)
    assert r.returncode == 0, f"firing sets differ:\n{r.stdout}\n{r.stderr}"
