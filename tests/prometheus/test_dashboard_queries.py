"""Every query of the generated dashboard is valid PromQL for the Prometheus the tests run:
each becomes a recording rule (the dashboard variables replaced by a match-all regex, as
Grafana's "All" does) that ``promtool check rules`` must accept."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.prometheus.test_rules_promtool import promtool

pytestmark = pytest.mark.prometheus
DASHBOARD = (
    Path(__file__).resolve().parents[2] / "helm/model-monitor/files/dashboards/model-monitor.json"
)


def test_every_dashboard_query_parses(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    rules = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$namespace", ".*").replace("$modelmonitor", ".*")
            rules.append(
                {"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr}
            )
    assert len(rules) > 40
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
