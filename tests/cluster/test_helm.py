"""The chart against the real API server: server-side dry run, then install into a namespace
enforcing the ``restricted`` Pod Security Standard, upgrade, uninstall. kwok makes the operator
pod Ready without running its image."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from devcluster.processes import wait_until
from tests.support.helm import CHART, helm
from tests.support.operator import RBAC_RULES, get_json, install_crd

pytestmark = pytest.mark.cluster

CRD_NAME = "modelmonitors.modelmonitor.io"


class Release:
    """One helm release of the chart in a throwaway namespace; uninstalled afterwards."""

    def __init__(self, cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = namespace  # unique: cluster-scoped objects are named <release>-model-monitor
        self.fullname = f"{self.name}-model-monitor"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm(*args, kubeconfig=self.cluster.kubeconfig, check=check)

    def install(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.helm(
            "install", self.name, str(CHART), "--namespace", self.namespace,
            "--wait", "--timeout", "120s", *args,
        )  # fmt: skip

    def upgrade(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.helm(
            "upgrade", self.name, str(CHART), "--namespace", self.namespace,
            "--wait", "--timeout", "120s", *args,
        )  # fmt: skip

    def uninstall(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.helm(
            "uninstall", self.name, "--namespace", self.namespace, "--wait",
            "--timeout", "120s", "--ignore-not-found", check=check,
        )  # fmt: skip

    def get(self, *args: str) -> dict:
        return get_json(self.cluster.kubeconfig, *args)

    def owned(self, kinds: str, *scope: str) -> list[str]:
        """kind/name of the release's objects of ``kinds`` (comma-separated), by instance label."""
        out = self.cluster.kubectl(
            "get", kinds, *scope, "-l", f"app.kubernetes.io/instance={self.name}",
            "-o", "jsonpath={range .items[*]}{.kind}/{.metadata.name}{\"\\n\"}{end}",
        )  # fmt: skip
        return out.split()

    def can_i(self, verb: str, resource: str, namespace: str) -> bool:
        sa = f"system:serviceaccount:{self.namespace}:{self.fullname}"
        r = self.cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", namespace, f"--as={sa}", check=False
        )
        return r.strip() == "yes"


@pytest.fixture
def restricted_namespace(cluster, namespace: str) -> str:
    cluster.kubectl(
        "label", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "pod-security.kubernetes.io/warn=restricted",
    )  # fmt: skip
    return namespace


@pytest.fixture
def release(cluster, restricted_namespace: str) -> Iterator[Release]:
    r = Release(cluster, restricted_namespace)
    try:
        yield r
    finally:
        r.uninstall(check=False)  # cluster-scoped objects outlive the namespace otherwise


def operator_pods(release: Release) -> list[dict]:
    return release.get(
        "pods", "-n", release.namespace, "-l",
        f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=operator",
    )["items"]  # fmt: skip


def wait_ready_pod(release: Release, *, not_uid: str | None = None) -> dict:
    """The single Ready operator pod (another than ``not_uid``, after a Recreate rollout)."""
    found: dict = {}

    def ready() -> bool:
        pods = [
            p
            for p in operator_pods(release)
            if p["metadata"]["uid"] != not_uid and not p["metadata"].get("deletionTimestamp")
        ]
        for p in pods:
            conditions = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
            if conditions.get("Ready") == "True":
                found.update(p)
                return len(pods) == 1
        return False

    try:
        wait_until(ready, timeout=60, what="operator pod Ready", interval=0.5)
    except Exception as e:
        events = release.cluster.kubectl("get", "events", "-n", release.namespace, check=False)
        raise AssertionError(f"{e}\nevents:\n{events}") from None
    return found


def test_rendered_chart_passes_server_side_dry_run(cluster, restricted_namespace: str):
    """Every object, with every optional feature on, is accepted by the API server with strict
    field validation (typos in field names fail here), in both RBAC scopes."""
    for scope_args in (
        ["--set", "serviceMonitor.enabled=true"],
        ["--set", "rbac.scope=namespace", "--set", f"watchNamespaces={{{restricted_namespace}}}"],
    ):
        rendered = helm(
            "template", "dry", str(CHART), "--namespace", restricted_namespace,
            "--include-crds", "--set", "operator.prometheusURL=http://prometheus:9090",
            "--set", "operator.defaultLabels.team=ml", *scope_args,
        ).stdout  # fmt: skip
        kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
        assert "CustomResourceDefinition" in kinds and "Deployment" in kinds
        out = cluster.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-n", restricted_namespace,
            "-f", "-", input=rendered,
        )  # fmt: skip
        assert "(server dry run)" in out, out
        assert "Warning" not in out, out
    # Nothing was created.
    assert not cluster.kubectl(
        "get", "deployments,serviceaccounts", "-n", restricted_namespace,
        "-l", "app.kubernetes.io/instance=dry", "-o", "name",
    ).strip()  # fmt: skip


def test_install_upgrade_uninstall(cluster, release: Release):
    # The CRD may already exist (other suites apply it): install must go on without touching it.
    install_crd(cluster.kubeconfig)
    crd_uid = release.get("crd", CRD_NAME)["metadata"]["uid"]

    installed = release.install()
    assert "STATUS: deployed" in installed.stdout, installed.stdout
    assert "kubectl get mm" in installed.stdout  # NOTES
    assert "PodSecurity" not in installed.stderr, installed.stderr  # the namespace warns too
    assert release.get("crd", CRD_NAME)["metadata"]["uid"] == crd_uid

    # The operator pod passed restricted admission and became Ready (kwok).
    pod = wait_ready_pod(release)
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["model-monitor-operator"]
    assert pod["spec"]["securityContext"]["runAsUser"] == 65532
    deployment = release.get("deployment", release.fullname, "-n", release.namespace)
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert deployment["status"].get("readyReplicas") == 1

    # RBAC: exactly the rules file, bound to the operator's ServiceAccount.
    role = release.get("clusterrole", release.fullname)
    assert role["rules"] == yaml.safe_load(RBAC_RULES.read_text())
    assert release.can_i("patch", "modelmonitors.modelmonitor.io/status", "default")
    assert release.can_i("create", "deployments.apps", "default")
    assert not release.can_i("delete", "pods", "default")
    assert not release.can_i("get", "nodes", "default")
    assert release.get("service", f"{release.fullname}-metrics", "-n", release.namespace)
    dashboard = release.get("configmap", f"{release.fullname}-dashboard", "-n", release.namespace)
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    json.loads(dashboard["data"]["model-monitor.json"])

    # Upgrade with a changed value: the Deployment changes, one new pod replaces the old one.
    generation = deployment["metadata"]["generation"]
    release.upgrade("--set", "operator.statusInterval=45s", "--set", "podLabels.rev=two")
    deployment = release.get("deployment", release.fullname, "-n", release.namespace)
    assert deployment["metadata"]["generation"] > generation
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MM_STATUS_INTERVAL"] == "45s"
    new_pod = wait_ready_pod(release, not_uid=pod["metadata"]["uid"])
    assert new_pod["metadata"]["labels"]["rev"] == "two"
    history = json.loads(
        release.helm("history", release.name, "-n", release.namespace, "-o", "json").stdout
    )
    assert [h["revision"] for h in history] == [1, 2]

    # A wrong value is refused by the schema before anything changes.
    refused = release.helm(
        "upgrade", release.name, str(CHART), "-n", release.namespace,
        "--set", "replicaCount=x", check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "replicaCount" in refused.stderr

    # Uninstall removes everything but the CRD.
    release.uninstall()
    assert not release.owned(
        "deployments,services,serviceaccounts,configmaps,roles,rolebindings",
        "-n", release.namespace,
    )  # fmt: skip
    assert not release.owned("clusterroles,clusterrolebindings")
    wait_until(
        lambda: not operator_pods(release), timeout=60, what="operator pods gone", interval=0.5
    )
    assert release.get("crd", CRD_NAME)["metadata"]["uid"] == crd_uid


def test_namespace_scope_grants_only_the_watched_namespaces(cluster, release: Release):
    """rbac.scope=namespace: a Role per watched namespace, nothing cluster-wide."""
    watched = f"{release.namespace}-w"
    cluster.kubectl("create", "namespace", watched)
    try:
        release.install(
            "--skip-crds", "--set", "rbac.scope=namespace",
            "--set", f"watchNamespaces={{{watched}}}",
        )  # fmt: skip
        pod = wait_ready_pod(release)
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["MM_NAMESPACES"] == watched
        assert not release.owned("clusterroles,clusterrolebindings")
        role = release.get("role", release.fullname, "-n", watched)
        assert role["rules"] == yaml.safe_load(RBAC_RULES.read_text())
        assert release.can_i("list", "modelmonitors.modelmonitor.io", watched)
        assert release.can_i("create", "deployments.apps", watched)
        assert not release.can_i("list", "modelmonitors.modelmonitor.io", "default")
        release.uninstall()
        assert not release.owned("roles,rolebindings", "-n", watched)
    finally:
        cluster.kubectl("delete", "namespace", watched, "--wait=false", check=False)
