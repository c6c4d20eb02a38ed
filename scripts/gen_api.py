"""Write everything generated from the API types of mm_api/spec.py: the CRD
(crds/modelmonitor.io_modelmonitors.yaml), the chart's byte-identical copy, and docs/api.md
(every field of spec and status with its type, default, bounds and description).

    python scripts/gen_api.py          # rewrite the three files (`make crd`)
    python scripts/gen_api.py --check  # exit 1 naming the stale ones (tests/unit/test_crd.py)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from mm_api.crd import FILE_NAME, crd_yaml, render_crd  # noqa: E402

CRD = REPO / "crds" / FILE_NAME
CHART_CRD = REPO / "helm" / "model-monitor" / "crds" / FILE_NAME
API_DOC = REPO / "docs" / "api.md"

HEADER = """# ModelMonitor API reference

`apiVersion: modelmonitor.io/v1alpha1`, `kind: ModelMonitor` (plural `modelmonitors`, short
name `mm`, categories `ml`, `all-ml`), namespaced, with a status subresource.

Generated from the types in [`mm_api/spec.py`](../mm_api/spec.py), like the CRD
[`crds/modelmonitor.io_modelmonitors.yaml`](../crds/modelmonitor.io_modelmonitors.yaml), by
`make crd`; do not edit by hand. Durations use Prometheus' syntax
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
    """docs/api.md."""
    (version,) = render_crd()["spec"]["versions"]
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


def outputs() -> dict[Path, str]:
    """Each generated file and the text it must hold."""
    crd = crd_yaml()
    return {CRD: crd, CHART_CRD: crd, API_DOC: render()}


def main(argv: list[str]) -> int:
    stale = [p for p, text in outputs().items() if not p.is_file() or p.read_text() != text]
    if "--check" in argv:
        for p in stale:
            print(f"stale: {p.relative_to(REPO)} (run: make crd)", file=sys.stderr)
        return 1 if stale else 0
    for p, text in outputs().items():
        p.write_text(text)
        print(f"wrote {p.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
