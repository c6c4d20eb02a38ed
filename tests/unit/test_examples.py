"""Every example and every ModelMonitor shown in the docs parses with the operator's parser
(and the worker example with the worker's); tests/cluster/test_examples_apply.py sends the
same documents to the real API server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mm_api.worker_config import load_config
from mm_operator.spec import parse_monitor

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "helm/model-monitor/README.md",
]


def monitor_documents() -> list[tuple[str, dict]]:
    """(where, document) for every ModelMonitor in examples/ and in ```yaml blocks of the docs."""
    found = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and doc.get("kind") == "ModelMonitor":
                found.append((f"{path.relative_to(REPO)}#{i}", doc))
    for path in DOC_FILES:
        if not path.exists():
            continue
        for j, block in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)):
            for doc in yaml.safe_load_all(block):
                if isinstance(doc, dict) and doc.get("kind") == "ModelMonitor":
                    found.append((f"{path.relative_to(REPO)}:block{j}", doc))
    return found


DOCS = monitor_documents()


def test_examples_exist():
    names = {w.split("#")[0] for w, _ in DOCS}
    assert {
        "examples/fraud-monitor.yaml",
        "examples/churn-gpu-monitor.yaml",
        "examples/price-regression-monitor.yaml",
    } <= names


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_monitor_parses(where, doc):
    monitor = parse_monitor({**doc, "metadata": {**doc["metadata"], "uid": "u", "generation": 1}})
    assert monitor.name == doc["metadata"]["name"]


def test_worker_example_parses():
    cfg = load_config(REPO / "examples" / "worker.yaml")
    assert cfg.data.reference is not None and cfg.data.reference.path == "examples/reference.csv"
