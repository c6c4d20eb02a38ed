"""One source of truth: the CRD, the chart's copy and docs/api.md are generated from the
types in mm_api/spec.py, and the worker's config embeds the very section classes the spec does."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import Field

from mm_api.alerting import ModelAlertsSpec
from mm_api.crd import SchemaError, model_schema, render_crd
from mm_api.sections import AlertsSpec, MonitorSections, Section
from mm_api.spec import ModelMonitorSpec
from mm_api.worker_config import WorkerConfig

REPO = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_api", REPO / "scripts" / "gen_api.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_crd_chart_copy_and_api_doc_are_generated_from_the_types():
    gen = _generator()
    stale = [str(p) for p, text in gen.outputs().items() if p.read_text() != text]
    assert stale == [], "stale (run: make crd): " + ", ".join(stale)


def test_the_check_names_a_stale_file(tmp_path, monkeypatch, capsys):
    gen = _generator()
    stale = tmp_path / "api.md"
    stale.write_text("old text\n")
    monkeypatch.setattr(gen, "API_DOC", stale)
    monkeypatch.setattr(gen, "REPO", tmp_path)
    monkeypatch.setattr(gen, "CRD", tmp_path / "crd.yaml")
    monkeypatch.setattr(gen, "CHART_CRD", tmp_path / "crd.yaml")
    (tmp_path / "crd.yaml").write_text(gen.crd_yaml())
    assert gen.main(["--check"]) == 1
    assert "stale: api.md" in capsys.readouterr().err


def test_worker_config_uses_the_same_sections():
    """The worker's config embeds the very classes the operator's spec embeds; the spec's
    alerts section extends the worker's with what only the operator acts on."""
    for name in MonitorSections.model_fields:
        worker = WorkerConfig.model_fields[name].annotation
        spec = ModelMonitorSpec.model_fields[name].annotation
        if name == "alerts":
            assert worker is AlertsSpec and spec is ModelAlertsSpec
            assert set(ModelAlertsSpec.model_fields) - set(AlertsSpec.model_fields) == {
                "serving_health",
                "route",
            }
            continue
        assert worker is spec, name


def test_the_worker_config_carries_no_routing():
    """Routing and serving health never reach the worker's config: changing them does not
    restart the worker."""
    spec = ModelMonitorSpec.model_validate(
        {
            "model": {"task": "regression", "targetRef": {"name": "x"}},
            "alerts": {
                "for": "1m",
                "labels": {"team": "t"},
                "servingHealth": {"errorRatio": 0.2},
                "route": {
                    "receivers": [
                        {"name": "t", "webhook": {"urlSecret": {"name": "s", "key": "k"}}}
                    ]
                },
            },
        }
    )
    section = spec.alerts.worker_section()
    assert type(section) is AlertsSpec
    assert section.for_ == "1m" and section.labels == {"team": "t"}


def _spec_schema() -> dict:
    (version,) = render_crd()["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_fields_bounds_defaults_and_rules_come_from_the_types():
    spec = _spec_schema()
    assert spec["required"] == ["model"]
    assert list(spec["properties"])[:2] == ["model", "data"]
    window = spec["properties"]["window"]
    assert window["default"] == {}
    assert window["properties"]["buckets"] == {
        "type": "integer",
        "description": "Time buckets the window is made of; it slides one bucket at a time.",
        "default": 12,
        "minimum": 1,
        "maximum": 1440,
    }
    contamination = spec["properties"]["outliers"]["properties"]["contamination"]
    assert contamination["exclusiveMinimum"] is True and contamination["maximum"] == 0.5
    (rule,) = window["x-kubernetes-validations"]
    assert rule["message"] == "window.size must be at least window.evaluationInterval"
    thresholds = spec["properties"]["quality"]["properties"]["thresholds"]
    assert next(r["message"] for r in thresholds["items"]["x-kubernetes-validations"]) == (
        "set min, max or both"
    )
    requests = spec["properties"]["worker"]["properties"]["resources"]["properties"]["requests"]
    assert requests["additionalProperties"]["x-kubernetes-int-or-string"] is True
    assert "pattern" in requests["additionalProperties"]
    assert [r["fieldPath"] for r in spec["x-kubernetes-validations"]] == [
        ".quality.thresholds",
        ".quality.thresholds",
        ".alerts.objective",
        ".drift.multivariate",
        ".estimation.enabled",
        ".drift.multivariate",
        ".drift.features",
        ".worker.auth.kserveLogger",
    ]


def test_a_changed_type_changes_the_schema():
    class Probe(Section):
        size: int = Field(default=3, ge=1, le=9, description="d")
        mode: Literal["a", "b"] = "a"

    schema = model_schema(Probe)
    assert schema["properties"]["size"] == {
        "type": "integer",
        "description": "d",
        "default": 3,
        "minimum": 1,
        "maximum": 9,
    }
    assert schema["properties"]["mode"]["enum"] == ["a", "b"]


def test_types_a_structural_schema_cannot_express_are_refused():
    class Bad(Section):
        value: complex = 1j

    with pytest.raises(SchemaError, match="complex"):
        model_schema(Bad)


def test_the_generated_crd_is_valid_yaml_with_the_printer_columns():
    text = _generator().crd_yaml()
    crd = yaml.safe_load(text)
    (version,) = crd["spec"]["versions"]
    assert [c["name"] for c in version["additionalPrinterColumns"]][:3] == [
        "Model",
        "Task",
        "Health",
    ]
    assert crd["spec"]["names"]["shortNames"] == ["mm"]
