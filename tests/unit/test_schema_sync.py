"""One source of truth: the CRD's OpenAPI schema and the Python types that parse the spec
(the operator's ModelMonitorSpec, built from the worker's own config sections) must agree
field by field — names, required fields, types, enums, defaults and bounds."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mm_operator.spec import ModelMonitorSpec
from monitor_worker.config import MonitorSections, WorkerConfig

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / "modelmonitor.io_modelmonitors.yaml"


def crd_spec_schema() -> dict:
    crd = yaml.safe_load(CRD_PATH.read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _leaf_schema(model: type[BaseModel], alias: str) -> dict:
    prop = model.model_json_schema(by_alias=True)["properties"][alias]
    if "anyOf" in prop:
        non_null = [s for s in prop["anyOf"] if s.get("type") != "null"]
        if len(non_null) == 1:
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **non_null[0]}
    return prop


def _normalise_crd_bounds(node: dict) -> dict:
    """CRD (OpenAPI v3.0) bounds -> JSON Schema 2020 bounds, as pydantic writes them."""
    out = {}
    for key in ("minimum", "maximum"):
        if key in node:
            exclusive = node.get("exclusive" + key.capitalize(), False)
            out[("exclusive" + key.capitalize()) if exclusive else key] = node[key]
    for key in ("minLength", "maxLength", "pattern", "maxItems"):
        if key in node:
            out[key] = node[key]
    return out


def _pydantic_bounds(node: dict) -> dict:
    keys = (
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "minLength", "maxLength", "pattern", "maxItems",
    )  # fmt: skip
    return {k: node[k] for k in keys if k in node}


def compare_model(model: type[BaseModel], crd: dict, path: str, problems: list[str]) -> None:
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    crd_props = crd.get("properties", {})
    if set(fields) != set(crd_props):
        problems.append(
            f"{path}: only in Python {sorted(set(fields) - set(crd_props))}, "
            f"only in CRD {sorted(set(crd_props) - set(fields))}"
        )
    required = {a for a, f in fields.items() if f.is_required()}
    if required != set(crd.get("required", [])):
        problems.append(f"{path}: required {sorted(required)} vs CRD {crd.get('required', [])}")
    for alias in sorted(set(fields) & set(crd_props)):
        compare_field(model, alias, fields[alias], crd_props[alias], f"{path}.{alias}", problems)


def compare_field(model, alias, field, crd: dict, path: str, problems: list[str]) -> None:
    annotation = _strip_optional(field.annotation)
    # Defaults: a sub-section defaults to {} in the CRD so that the API server fills its own
    # defaults; lists and maps default to absent.
    if field.default_factory is not None:
        produced = field.default_factory()
        expected: Any = {} if isinstance(produced, BaseModel) else None
        if crd.get("default") != expected:
            problems.append(f"{path}: CRD default {crd.get('default')!r}, expected {expected!r}")
    elif field.is_required() or field.default is None:
        if "default" in crd:
            problems.append(f"{path}: CRD has default {crd['default']!r}, Python has none")
    elif crd.get("default") != field.default:
        problems.append(f"{path}: default {field.default!r} vs CRD {crd.get('default')!r}")

    if _is_model(annotation):
        if crd.get("type") != "object":
            problems.append(f"{path}: a section in Python, {crd.get('type')} in the CRD")
            return
        compare_model(annotation, crd, path, problems)
        return

    leaf = _leaf_schema(model, alias)
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        if crd.get("type") != "array":
            problems.append(f"{path}: list in Python, {crd.get('type')} in CRD")
            return
        if leaf.get("maxItems") != crd.get("maxItems"):
            problems.append(f"{path}: maxItems {leaf.get('maxItems')} vs CRD {crd.get('maxItems')}")
        if _is_model(item):
            compare_model(item, crd["items"], f"{path}[]", problems)
        else:
            compare_leaf(leaf["items"], crd["items"], f"{path}[]", problems)
        return
    compare_leaf(leaf, crd, path, problems)


def compare_leaf(py: dict, crd: dict, path: str, problems: list[str]) -> None:
    if "anyOf" in py:  # int | str quantities
        if not crd.get("additionalProperties", crd).get("x-kubernetes-int-or-string", False):
            problems.append(f"{path}: int-or-string in Python, not in CRD")
        return
    if py.get("type") != crd.get("type"):
        problems.append(f"{path}: type {py.get('type')} vs CRD {crd.get('type')}")
    if py.get("type") == "object":
        py_values = py.get("additionalProperties", {})
        crd_values = crd.get("additionalProperties", {})
        if "anyOf" in py_values:
            if not crd_values.get("x-kubernetes-int-or-string"):
                problems.append(f"{path}: int-or-string values in Python, not in CRD")
        elif py_values.get("type") != crd_values.get("type"):
            problems.append(f"{path}: map of {py_values} vs CRD {crd_values}")
    py_enum = py.get("enum", [py["const"]] if "const" in py else [])
    if set(py_enum) != set(crd.get("enum", [])):
        problems.append(f"{path}: enum {py_enum} vs CRD {crd.get('enum')}")
    if _pydantic_bounds(py) != _normalise_crd_bounds(crd):
        problems.append(
            f"{path}: bounds {_pydantic_bounds(py)} vs CRD {_normalise_crd_bounds(crd)}"
        )


def test_crd_spec_matches_the_python_types():
    problems: list[str] = []
    compare_model(ModelMonitorSpec, crd_spec_schema(), "spec", problems)
    assert problems == [], "\n".join(problems)


def test_worker_config_uses_the_same_sections():
    """The worker's config embeds the very classes the operator's spec embeds."""
    for name in MonitorSections.model_fields:
        assert (
            WorkerConfig.model_fields[name].annotation
            is ModelMonitorSpec.model_fields[name].annotation
        ), name


def test_comparison_catches_a_drifted_copy():
    """The checker itself can fail: a CRD with a changed default and a missing field."""
    schema = crd_spec_schema()
    window = schema["properties"]["window"]
    window["properties"]["size"]["default"] = "2h"
    del window["properties"]["buckets"]
    problems: list[str] = []
    compare_model(ModelMonitorSpec, schema, "spec", problems)
    assert any("spec.window.size: default" in p for p in problems)
    assert any("spec.window: only in Python ['buckets']" in p for p in problems)


@pytest.mark.parametrize("bad", ["enum", "bound"])
def test_comparison_catches_enum_and_bound_changes(bad):
    schema = crd_spec_schema()
    if bad == "enum":
        schema["properties"]["drift"]["properties"]["method"]["enum"] = ["auto", "ks"]
        expected = "spec.drift.method: enum"
    else:
        schema["properties"]["outliers"]["properties"]["contamination"]["maximum"] = 0.9
        expected = "spec.outliers.contamination: bounds"
    problems: list[str] = []
    compare_model(ModelMonitorSpec, schema, "spec", problems)
    assert [p for p in problems if p.startswith(expected)], problems
