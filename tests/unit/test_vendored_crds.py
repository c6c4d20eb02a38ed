"""The Prometheus Operator CRDs the local control plane installs are the official v0.93.0
files: their SHA-256 sums are the ones of example/prometheus-operator-crd/ in the Go module
github.com/prometheus-operator/prometheus-operator@v0.93.0 (h1:AohlYJT+En8TmNpAcEUJ3GsaJTAqfEBwHmGTVpRm/Io=),
recorded in SHA256SUMS beside them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


class _Loader(yaml.SafeLoader):
    """YAML 1.1's obsolete ``=`` (value) tag read as the plain string it is in YAML 1.2: the
    AlertmanagerConfig CRD lists the matcher type ``=`` unquoted in an enum, as kubectl and
    the API server read it."""


_Loader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)
VENDORED = REPO / "devcluster" / "crds" / "prometheus-operator"
SUMS = {
    name: digest
    for digest, name in (
        line.split() for line in (VENDORED / "SHA256SUMS").read_text().splitlines() if line.strip()
    )
}


def test_every_vendored_crd_is_listed():
    assert sorted(SUMS) == sorted(p.name for p in VENDORED.glob("monitoring.coreos.com_*.yaml"))
    assert {
        "monitoring.coreos.com_servicemonitors.yaml",
        "monitoring.coreos.com_prometheusrules.yaml",
        "monitoring.coreos.com_alertmanagerconfigs.yaml",
    } <= set(SUMS)


@pytest.mark.parametrize("name", sorted(SUMS))
def test_vendored_crd_is_the_official_file(name):
    data = (VENDORED / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SUMS[name], f"{name} differs from the official file"
    crd = yaml.load(data, Loader=_Loader)
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["annotations"]["operator.prometheus.io/version"] == "0.93.0"
