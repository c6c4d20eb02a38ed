"""The ModelMonitor CRD, generated from the types in :mod:`mm_api.spec`.

The schema is read off the pydantic fields (type, default, bounds, pattern, enum, description)
and the CEL rules each section declares beside its fields (``crd_rules``), so the Python types
are the one source: ``make crd`` (``python -m mm_api.crd``) rewrites ``crds/`` and the chart's
copy, and ``tests/unit/test_crd.py`` fails when a committed copy is stale."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types as at
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .spec import GROUP, KIND, PLURAL, VERSION, ModelMonitor

FILE_NAME = f"{GROUP}_{PLURAL}.yaml"
HEADER = """\
# The ModelMonitor API. Generated from the Python types in mm_api/spec.py by `make crd`
# (python -m mm_api.crd); do not edit by hand: tests/unit/test_crd.py fails when this file,
# the chart's copy or docs/api.md is stale.
"""

PRINTER_COLUMNS = [
    {"name": "Model", "type": "string", "jsonPath": ".status.model"},
    {"name": "Task", "type": "string", "jsonPath": ".spec.model.task", "priority": 1},
    {"name": "Health", "type": "string", "jsonPath": ".status.health"},
    {
        "name": "Quality",
        "type": "string",
        "jsonPath": ".status.summary.keyMetric",
        "description": "The first quality threshold's metric and its current value",
    },
    {
        "name": "Drift",
        "type": "number",
        "jsonPath": ".status.summary.driftShare",
        "description": "Share of features drifted in the current window",
    },
    {
        "name": "Outliers",
        "type": "number",
        "jsonPath": ".status.summary.outlierRatio",
        "priority": 1,
    },
    {"name": "Records", "type": "integer", "jsonPath": ".status.summary.records", "priority": 1},
    {"name": "Alerts", "type": "integer", "jsonPath": ".status.firingAlertCount"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


class SchemaError(TypeError):
    """A Python type the generator cannot express in a structural schema."""


def _strip_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        return typing.Union[tuple(args)]  # noqa: UP007 (rebuilt from parts)
    return annotation


def _unannotate(annotation: Any) -> tuple[Any, list[Any]]:
    """(bare type, metadata) of ``Annotated[T, ...]``; FieldInfo metadata is flattened."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        for m in extra:
            if isinstance(m, FieldInfo):
                metadata += m.metadata
            else:
                metadata.append(m)
    return annotation, metadata


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, at.Gt):
            out.update(minimum=m.gt, exclusiveMinimum=True)
        elif isinstance(m, at.Ge):
            out["minimum"] = m.ge
        elif isinstance(m, at.Lt):
            out.update(maximum=m.lt, exclusiveMaximum=True)
        elif isinstance(m, at.Le):
            out["maximum"] = m.le
        elif isinstance(m, at.MinLen):
            out["minLength"] = m.min_length
        elif isinstance(m, at.MaxLen):
            out["maxLength"] = m.max_length
        elif getattr(m, "pattern", None) is not None:
            out["pattern"] = m.pattern
    return out


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def type_schema(annotation: Any, metadata: list[Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Schema of a Python type, with the field's constraints and CRD extras."""
    annotation, inner = _unannotate(_strip_none(annotation))
    constraints = _constraints(metadata + inner)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_model(annotation):
        return model_schema(annotation)
    if origin is list:
        node: dict[str, Any] = {"type": "array"}
        if "maxLength" in constraints:
            node["maxItems"] = constraints.pop("maxLength")
        node["items"] = type_schema(args[0], [], {})
        return node
    if origin is dict and args[1] is Any:
        return {"type": "object"}  # free-form (metadata)
    if origin is dict:
        values = type_schema(args[1], [], {})
        if "quantity_pattern" in extra:
            values["pattern"] = extra["quantity_pattern"]
        return {"type": "object", "additionalProperties": values}
    if origin in (typing.Union, types.UnionType) and set(args) == {int, str}:
        return {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        }
    if origin is Literal:
        return {"type": "string", "enum": list(args), **constraints}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if annotation in simple:
        return {"type": simple[annotation], **constraints}
    raise SchemaError(f"no CRD schema for {annotation!r}")


def field_schema(field: FieldInfo) -> dict[str, Any]:
    schema_extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    crd_extra = schema_extra.get("crd")
    extra: dict[str, Any] = dict(crd_extra) if isinstance(crd_extra, dict) else {}
    node = type_schema(field.annotation, list(field.metadata), extra)
    head: dict[str, Any] = {}
    if field.description:
        head["description"] = field.description
    if field.default_factory is not None:
        if isinstance(field.default_factory(), BaseModel):  # type: ignore[call-arg]
            node["default"] = {}  # the API server then fills the section's own defaults
    elif not field.is_required() and field.default is not None:
        node["default"] = field.default
    extra.pop("quantity_pattern", None)
    node.update(extra)
    # Type first, then the description, as people read a schema.
    ordered = {"type": node.pop("type")} if "type" in node else {}
    return {**ordered, **head, **node}


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    order = getattr(model, "crd_field_order", None) or tuple(fields)
    if set(order) != set(fields):
        raise SchemaError(f"{model.__name__}.crd_field_order does not list every field")
    node: dict[str, Any] = {"type": "object"}
    required = [alias for alias in order if fields[alias].is_required()]
    if required:
        node["required"] = required
    node["properties"] = {alias: field_schema(fields[alias]) for alias in order}
    rules = getattr(model, "crd_rules", ())
    if rules:
        node["x-kubernetes-validations"] = [
            {
                "rule": r.rule,
                "message": r.message,
                **({"fieldPath": r.field_path} if r.field_path else {}),
            }
            for r in rules
        ]
    return node


def render_crd() -> dict[str, Any]:
    root = model_schema(ModelMonitor)
    root = {"type": "object", "description": (ModelMonitor.__doc__ or "").strip(), **root}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "model-monitor",
                "app.kubernetes.io/part-of": "model-monitor",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["mm"],
                "categories": ["ml", "all-ml"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def crd_yaml() -> str:
    return HEADER + yaml.safe_dump(render_crd(), sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mm_api.crd", description=__doc__)
    parser.add_argument(
        "paths", nargs="*", type=Path, help="files to write (default: print to stdout)"
    )
    args = parser.parse_args(argv)
    text = crd_yaml()
    if not args.paths:
        sys.stdout.write(text)
    for path in args.paths:
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
