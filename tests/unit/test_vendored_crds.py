"""The Prometheus Operator CRDs the local control plane installs are the official v0.93.0 files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "devcluster" / "crds" / "prometheus-operator"
SHARED = REPO.parent / "shared" / "crds" / "prometheus-operator"
NAMES = [
    "monitoring.coreos.com_servicemonitors.yaml",
    "monitoring.coreos.com_podmonitors.yaml",
    "monitoring.coreos.com_prometheusrules.yaml",
]


@pytest.mark.parametrize("name", NAMES)
def test_vendored_crd_is_the_official_version(name):
    crd = yaml.safe_load((VENDORED / name).read_text())
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["annotations"]["operator.prometheus.io/version"] == "0.93.0"


@pytest.mark.parametrize("name", NAMES)
def test_vendored_crd_matches_shared_copy(name):
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout (CI and the workplace have it)")
    assert (VENDORED / name).read_bytes() == (SHARED / name).read_bytes()
