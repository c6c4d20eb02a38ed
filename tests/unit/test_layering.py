"""The operator and the worker share only mm_api: neither imports the other, and mm_api
imports neither (read from the source, so a lazy import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "mm_api": REPO / "mm_api",
    "monitor_worker": REPO / "monitor_worker",
    "mm_operator": REPO / "operator" / "mm_operator",
}
FORBIDDEN = {
    "mm_api": {"monitor_worker", "mm_operator"},
    "monitor_worker": {"mm_operator"},
    "mm_operator": {"monitor_worker"},
}


def imported_packages(source: str) -> set[str]:
    tree = ast.parse(source)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_imports_only_what_its_layer_allows(package):
    offenders = []
    for path in sorted(PACKAGES[package].rglob("*.py")):
        bad = imported_packages(path.read_text()) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert offenders == []


def test_the_check_sees_lazy_imports():
    source = "def f():\n    from monitor_worker.service import MonitorService\n"
    assert "monitor_worker" in imported_packages(source)
