"""Fixtures for suites that run the operator on the real control plane."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devcluster.controlplane import service_account_kubeconfig
from tests.support.operator import (
    OPERATOR_NAMESPACE,
    OPERATOR_SA,
    OperatorProcess,
    grant_operator_rbac,
    install_crd,
)


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster, tmp_path_factory):
    """A kubeconfig for the operator's ServiceAccount, bound to exactly the chart's rules."""
    install_crd(cluster.kubeconfig)
    grant_operator_rbac(cluster.kubeconfig)
    return service_account_kubeconfig(
        cluster.kubeconfig,
        OPERATOR_NAMESPACE,
        OPERATOR_SA,
        tmp_path_factory.mktemp("operator") / "kubeconfig",
    )


@pytest.fixture(scope="session")
def operator(cluster, operator_kubeconfig, tmp_path_factory) -> Iterator[OperatorProcess]:
    """The operator, watching all namespaces, started once for the session."""
    op = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator-logs")).start()
    try:
        yield op
    finally:
        op.stop()
