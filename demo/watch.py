"""Step 7: what a person looks at: ``kubectl get mm -n fraud -o wide``, the monitor's alerts
in Alertmanager, and ``kubectl describe mm`` (conditions and events)."""

from __future__ import annotations

import json

from devcluster.prometheus import Alertmanager
from devcluster.tools import Cluster

from .monitor import NAME, NAMESPACE

GET_MM = f"kubectl get mm -n {NAMESPACE} -o wide"


def get_mm_command(namespace: str = NAMESPACE) -> str:
    return f"kubectl get mm -n {namespace} -o wide"


def get_mm(kube: Cluster, namespace: str = NAMESPACE) -> str:
    return kube.kubectl("get", "mm", "-n", namespace, "-o", "wide")


def health(kube: Cluster, namespace: str = NAMESPACE, name: str = NAME) -> str:
    return kube.kubectl(
        "get", "mm", name, "-n", namespace, "-o", "jsonpath={.status.health}", check=False
    ).strip()


def status(kube: Cluster, namespace: str = NAMESPACE, name: str = NAME) -> dict:
    out = kube.kubectl("get", "mm", name, "-n", namespace, "-o", "json", check=False)
    try:
        return json.loads(out).get("status") or {}
    except ValueError:
        return {}


def alerts(am: Alertmanager, namespace: str = NAMESPACE, name: str = NAME) -> list[dict]:
    """The monitor's active alerts in Alertmanager, most severe first."""
    rank = {"critical": 0, "warning": 1, "info": 2}
    active = [
        a
        for a in am.alerts(namespace=namespace, modelmonitor=name)
        if a["status"]["state"] == "active"
    ]
    return sorted(active, key=lambda a: (rank.get(a["labels"].get("severity"), 9), a["labels"]["alertname"]))  # fmt: skip


def alert_lines(active: list[dict]) -> list[str]:
    if not active:
        return ["(none)"]
    return [
        f"{a['labels']['alertname']:<32} {a['labels'].get('severity', ''):<9} "
        f"{a.get('annotations', {}).get('summary', '')}"
        for a in active
    ]


def describe_excerpt(kube: Cluster, namespace: str = NAMESPACE, name: str = NAME) -> str:
    """``kubectl describe mm``, briefly: its Conditions as one line each, and its Events."""
    lines = kube.kubectl("describe", "mm", name, "-n", namespace).splitlines()
    conditions: list[dict[str, str]] = []
    events: list[str] = []
    section = None
    indent = 0
    for line in lines:
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        if stripped == "Conditions:":
            section, indent = "conditions", depth
            continue
        if line.startswith("Events:"):
            section = "events"
            continue
        if section == "conditions":
            if depth <= indent:
                section = None
                continue
            key, _, value = stripped.partition(":")
            if key == "Last Transition Time" or not conditions:
                conditions.append({})
            conditions[-1][key] = value.strip()
        elif section == "events" and stripped:
            events.append(line.rstrip())
    out = ["Conditions:"]
    out += [
        f"  {c.get('Type', ''):<21} {c.get('Status', ''):<7} {c.get('Reason', ''):<19} "
        f"{c.get('Message', '')}"
        for c in conditions
    ]
    out += ["Events:", *events]
    return "\n".join(out)
