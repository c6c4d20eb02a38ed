"""The chart's Grafana dashboard is generated from dashboards/model_monitor.py
(grafana-foundation-sdk) and stays true: the committed JSON is what the generator writes,
every metric the worker exports has a panel, every alert links to a panel that shows its
series, and panel ids are the stable ones of mm_api.panels."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from mm_api import exporters, metrics
from mm_api.alerts import Compare, ServingTarget, alert_definitions, objective_rules, serving_rules
from mm_api.panels import DASHBOARD_UID, PANEL_IDS, dashboard_link
from mm_operator.spec import parse_monitor

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "helm" / "model-monitor" / "files" / "dashboards" / "model-monitor.json"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_dashboards", REPO / "scripts" / "gen_dashboards.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def exprs_by_panel(dashboard: dict) -> dict[int, list[str]]:
    return {p["id"]: [t["expr"] for t in p.get("targets", [])] for p in dashboard["panels"]}


def test_committed_dashboard_is_the_generated_one():
    gen = _generator()
    stale = [str(p) for p, text in gen.outputs().items() if p.read_text() != text]
    assert stale == [], "stale (run: make dashboards): " + ", ".join(stale)


def test_the_check_names_a_stale_file(tmp_path, monkeypatch, capsys):
    gen = _generator()
    stale = tmp_path / "model-monitor.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(gen, "OUTPUT", stale)
    monkeypatch.setattr(gen, "REPO", tmp_path)
    assert gen.main(["--check"]) == 1
    assert "stale: model-monitor.json" in capsys.readouterr().err


def test_every_exported_metric_has_a_panel(dashboard):
    joined = "\n".join(e for es in exprs_by_panel(dashboard).values() for e in es)
    missing = []
    for metric in metrics.ALL:
        series = f"{metric.name}_bucket" if metric.kind == "histogram" else metric.series
        if not re.search(rf"\b{re.escape(series)}\b", joined):
            missing.append(metric.series)
    assert missing == [], "metrics of mm_api.metrics.ALL without a panel"


#: Read through the recording rule of the target's pods (every serving panel joins on it).
POD_SET = {exporters.POD_OWNER, exporters.REPLICASET_OWNER}
#: Workload-level series the dashboard cannot narrow to one monitor's target (no pod label);
#: its "Pods not ready" panel shows the same trouble per pod, the alert reads these.
WORKLOAD = {
    exporters.DEPLOYMENT_UNAVAILABLE,
    exporters.STATEFULSET_REPLICAS,
    exporters.STATEFULSET_READY,
}


def test_every_serving_series_has_a_panel(dashboard):
    joined = "\n".join(e for es in exprs_by_panel(dashboard).values() for e in es)
    missing = [
        s.name for s in exporters.ALL if s not in POD_SET | WORKLOAD and s.name not in joined
    ]
    assert missing == []
    assert "modelmonitor:target_pod:info{" in joined


def test_panel_ids_are_the_stable_ones_and_unique(dashboard):
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(PANEL_IDS.values())
    assert dashboard["uid"] == DASHBOARD_UID
    # Ids the first hand-written dashboard had keep their meaning (links in old notifications).
    titles = {p["id"]: p["title"] for p in dashboard["panels"]}
    assert (titles[8], titles[11], titles[12], titles[15]) == (
        "Quality",
        "Dataset drift share",
        "Feature drift score",
        "Outlier ratio",
    )


def test_datasource_variable_and_every_query_follows_the_selection(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            expr = target["expr"]
            assert 'namespace=~"$namespace"' in expr and 'modelmonitor=~"$modelmonitor"' in expr


def all_alerts():
    monitor = parse_monitor(
        {
            "metadata": {"name": "m", "namespace": "n"},
            "spec": {
                "model": {"task": "binary-classification", "targetRef": {"name": "x"}},
                "quality": {"thresholds": [{"metric": "accuracy", "min": 0.9}]},
                "alerts": {"objective": {"metric": "accuracy", "target": 0.9}},
            },
        }
    )
    spec = monitor.spec
    defs = alert_definitions(monitor.ref, spec) + objective_rules(monitor.ref, spec)[1]
    defs += serving_rules(
        monitor.ref, ServingTarget("Deployment", "x", gpu=True), spec, spec.alerts.serving_health
    )[1]
    return defs


@pytest.mark.parametrize("d", all_alerts(), ids=lambda d: d.name)
def test_every_alert_links_to_a_panel_showing_its_series(dashboard, d):
    panel = PANEL_IDS[d.panel]
    exprs = exprs_by_panel(dashboard)[panel]
    if isinstance(d.condition, Compare):
        assert any(d.condition.metric.series in e for e in exprs), (d.name, panel)
    link = dashboard_link("https://g.example/d/model-monitor", "ml", "fraud", d.panel)
    assert link.endswith(f"var-namespace=ml&var-modelmonitor=fraud&viewPanel={panel}")
