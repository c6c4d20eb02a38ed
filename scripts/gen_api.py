"""Write docs/api.md from the CRD: every field of spec and status with its type, default,
bounds and description. `python scripts/gen_api_docs.py` rewrites it;
tests/unit/test_docs.py fails when the committed file is stale."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "crds" / "modelmonitor.io_modelmonitors.yaml"
OUT = REPO / "docs" / "api.md"

HEADER = """# ModelMonitor API reference

`apiVersion: modelmonitor.io/v1alpha1`, `kind: ModelMonitor` (plural `modelmonitors`, short
name `mm`, categories `ml`, `all-ml`), namespaced, with a status subresource.

Generated from [`crds/modelmonitor.io_modelmonitors.yaml`](../crds/modelmonitor.io_modelmonitors.yaml)
by `python scripts/gen_api_docs.py`; do not edit by hand. Durations use Prometheus' syntax
(`30s`, `5m`, `1h30m`, `7d`). The API server refuses a spec that breaks a rule below with a
message naming the field; see [failure modes](failure-modes.md) for what the operator does
with specs that pass the schema but cannot work.

"""


def _type(node: dict) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    t = node.get("type", "")
    if t == "array":
        item = node.get("items", {})
        return f"[]{_type(item) if item.get('type') != 'object' else 'object'}"
    if t == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type(node['additionalProperties'])}"
    return t


def _rules(node: dict, required: bool) -> str:
    parts = []
    if required:
        parts.append("**required**")
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    lo, hi = node.get("minimum"), node.get("maximum")
    if lo is not None:
        parts.append(f"{'>' if node.get('exclusiveMinimum') else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if node.get('exclusiveMaximum') else '<='} {hi}")
    for key, word in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("maxItems", "max items"),
    ):
        if key in node:
            parts.append(f"{word} {node[key]}")
    if "pattern" in node and "([0-9]+(ms|s|m|h|d|w))+" in node["pattern"]:
        parts.append("duration")
    elif "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    for rule in node.get("x-kubernetes-validations", []):
        parts.append(f"rule: {rule['message']}")
    return "; ".join(parts)


def _rows(node: dict, path: str, required: bool, out: list[str]) -> None:
    default = node.get("default")
    default_text = "" if default is None or default == {} else f"`{json.dumps(default)}`"
    desc = " ".join(node.get("description", "").split()).replace("|", "\\|")
    out.append(f"| `{path}` | {_type(node)} | {default_text} | {_rules(node, required)} | {desc} |")
    props = node.get("properties") or {}
    req = set(node.get("required", []))
    for name, child in props.items():
        _rows(child, f"{path}.{name}", name in req, out)
    items = node.get("items")
    if isinstance(items, dict) and items.get("properties"):
        req_items = set(items.get("required", []))
        for name, child in items["properties"].items():
            _rows(child, f"{path}[].{name}", name in req_items, out)


def render() -> str:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    root = version["schema"]["openAPIV3Schema"]
    lines = [HEADER]
    for section in ("spec", "status"):
        node = root["properties"][section]
        lines.append(f"## {section}\n")
        if section == "spec":
            lines.append(
                "Cross-field rules on `spec`: "
                + "; ".join(r["message"] for r in node.get("x-kubernetes-validations", []))
                + ".\n"
            )
        lines.append("| field | type | default | rules | description |")
        lines.append("| --- | --- | --- | --- | --- |")
        rows: list[str] = []
        for name, child in node["properties"].items():
            _rows(child, f"{section}.{name}", name in set(node.get("required", [])), rows)
        lines.extend(rows)
        lines.append("")
    lines.append("## Printer columns (`kubectl get mm`)\n")
    lines.append("| column | from | shown |")
    lines.append("| --- | --- | --- |")
    for col in version["additionalPrinterColumns"]:
        shown = "with `-o wide`" if col.get("priority") else "always"
        lines.append(f"| {col['name'].upper()} | `{col['jsonPath']}` | {shown} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
