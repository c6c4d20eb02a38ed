"""The Go tools of the routing and serving-health tests come from pinned module versions:
versions.env (the cache key) and each wrapper go.mod (what is built) agree, as
build-monitoring.sh also checks at build time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GO = REPO / "devcluster" / "go"


def versions_env() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z_]+)=(\S+)$", (REPO / "devcluster/versions.env").read_text(), re.M)
    return dict(pairs)


@pytest.mark.parametrize(
    ("folder", "module", "variable"),
    [
        ("amconfig", "github.com/prometheus-operator/prometheus-operator", "PROMETHEUS_OPERATOR_VERSION"),
        ("kube-state-metrics", "k8s.io/kube-state-metrics/v2", "KUBE_STATE_METRICS_VERSION"),
    ],
)  # fmt: skip
def test_versions_env_and_go_mod_pin_the_same_version(folder, module, variable):
    go_mod = (GO / folder / "go.mod").read_text()
    required = re.search(rf"^\s*(?:require )?{re.escape(module)} (v\S+)$", go_mod, re.M)
    assert required, f"{folder}/go.mod must require {module} directly"
    assert versions_env()[variable] == required.group(1)
    assert f"{module} {required.group(1)} h1:" in (GO / folder / "go.sum").read_text()


def test_the_vendored_crds_are_of_the_operator_version_amconfig_converts_for():
    """The AlertmanagerConfig CRD installed in the control plane and the conversion the tests
    run come from the same Prometheus Operator release."""
    readme = (REPO / "devcluster/crds/prometheus-operator/README.md").read_text()
    assert f"({versions_env()['PROMETHEUS_OPERATOR_VERSION']})" in readme.splitlines()[0]


def test_amconfig_uses_the_operators_own_conversion():
    main = (GO / "amconfig" / "main.go").read_text()
    assert "alertmanager.NewConfigBuilder(" in main
    assert "AddAlertmanagerConfigs(" in main and "ValidateAlertmanagerConfig(" in main
