"""Our image as containers under the pod specs the product renders: the worker Deployment of
``mm_operator.render`` and the chart's operator Deployment (``helm template``), run by podman
with exactly their user and groups, read-only root filesystem, dropped capabilities,
no-new-privileges, seccomp profile, memory limit and volumes (config, reference, token, state,
tmp; the operator's tmp and service-account token).

Each must answer its probes where the pod spec points them and do its job: the worker ingests
and serves /metrics and snapshots its state into its state volume; the operator reconciles a
ModelMonitor in a real API server. And neither may write outside its volumes: every workload
runs once as specified (a read-only root: nothing may fail to write, and the container keeps
running) and once with a writable root (``podman diff`` must show nothing outside the volumes'
mount points). A last test shows both checks catch a program that does write elsewhere."""

from __future__ import annotations

import csv
import json
import uuid

import pytest
import yaml

from devcluster.podman import PodmanContainer, with_service_account_token
from devcluster.processes import free_port, wait_until
from tests.support.containers import (
    REFERENCE,
    client,
    fraud_monitor,
    kubelet_env,
    metric_value,
    probe_target,
    rendered_worker,
    service_account_files,
    wait_http_ok,
    write_failures,
    writes_outside_volumes,
)
from tests.support.helm import REPO, template
from tests.support.operator import get_json

pytestmark = pytest.mark.container

ROOTS = ["read-only", "writable"]
RECORDS = 400
FAST_WINDOW = {"size": "10m", "evaluationInterval": "1s", "minSamples": 200}


def reference_records(n: int) -> dict:
    with REFERENCE.open() as f:
        rows = list(csv.DictReader(f))[:n]
    features = ("amount", "hour", "age", "device_score")
    return {
        "records": [
            {
                "id": f"r-{i}",
                "features": {
                    **{k: float(r[k]) for k in features},
                    "country": r["country"],
                    "merchant": r["merchant"],
                },
                "prediction": int(r["prediction"]),
                "score": float(r["score"]),
                "label": int(r["label"]),
            }
            for i, r in enumerate(rows)
        ]
    }


def check_no_writes(c: PodmanContainer, root: str, log: str) -> None:
    # A refused write shows in the log with either root (a writable root is still owned by
    # root, not by the container's user); one that succeeded shows in the diff.
    assert write_failures(log) == [], log[-4000:]
    if root == "writable":
        assert writes_outside_volumes(c) == [], c.diff()


@pytest.mark.parametrize("root", ROOTS)
def test_worker_runs_under_its_rendered_pod_spec(images, tmp_path, root):
    image = images.project.ref
    pod_spec, files = rendered_worker(image, fraud_monitor(window=FAST_WINDOW))
    c = PodmanContainer(
        pod_spec, image, tmp_path, files=files, fields={"metadata.name": "mm-fraud-0"},
        read_only_root=None if root == "read-only" else False,
    )  # fmt: skip
    spec = c.container
    with c:
        ready_path, ready_port = probe_target(spec, "readinessProbe")
        live_path, live_port = probe_target(spec, "livenessProbe")
        startup_path, startup_port = probe_target(spec, "startupProbe")
        worker = client(c.port(ready_port), token=files["token"]["token"])
        wait_http_ok(worker, ready_path, "the worker's readiness probe", c)
        assert client(c.port(live_port)).get(live_path)[0] == 200
        assert client(c.port(startup_port)).get(startup_path)[0] == 200
        code, doc = worker.post("/v1/records", reference_records(RECORDS))
        assert code == 200, doc
        assert client(c.port(ready_port)).post("/v1/records", reference_records(1))[0] == 401
        assert metric_value(worker.metrics(), "modelmonitor_records_total") == RECORDS
        wait_until(lambda: worker.status()["window"]["records"] == RECORDS, timeout=30,
                   what="the window to count the records")  # fmt: skip
        assert c.running()
        exit_code = c.stop()
        log = c.logs()
        assert exit_code == 0, log[-4000:]
        check_no_writes(c, root, log)
        # The state went where the pod spec put the state volume.
        state = c.volume_dirs.get("state")
        assert state is not None and any(state.iterdir()), (
            f"no snapshot in a state volume\n{log[-4000:]}"
        )


@pytest.fixture
def chart_rbac(own_cluster):
    """The chart's CRD, ServiceAccount and RBAC in the container suites' own cluster, for a
    release ``mm`` in namespace ``mm-podman`` (what ``helm install`` would create, minus the
    Deployment, whose container the test runs itself)."""
    namespace = "mm-podman"
    own_cluster.kubectl("create", "namespace", namespace, check=False)
    own_cluster.kubectl(
        "apply", "--server-side", "--force-conflicts",
        "-f", str(REPO / "helm" / "model-monitor" / "crds"),
    )  # fmt: skip
    return namespace


@pytest.mark.parametrize("root", ROOTS)
def test_operator_runs_under_the_charts_pod_spec(images, own_cluster, chart_rbac, tmp_path, root):
    image = images.project.ref
    repo, _, tag = image.rpartition(":")
    watched = f"watched-{uuid.uuid4().hex[:6]}"
    # The ports are the chart's own values: free ones, as the container shares the machine's
    # network to reach the API server on loopback. Cluster-wide (the chart's default): this
    # cluster has no other operator. (With watchNamespaces, kopf first retries listing
    # namespaces, which the chart's RBAC does not grant, for about 55 s.)
    objects = template(
        "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
        "--set", f"ports.metrics={free_port()}", "--set", f"ports.health={free_port()}",
        release="mm", namespace=chart_rbac,
    )  # fmt: skip
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    rest = [o for o in objects if o["kind"] != "Deployment"]
    own_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rest))
    pod_spec = with_service_account_token(deployment["spec"]["template"]["spec"])
    files = {
        "kube-api-access": service_account_files(
            own_cluster, chart_rbac, pod_spec["serviceAccountName"]
        )
    }
    c = PodmanContainer(
        pod_spec, image, tmp_path, files=files, network="host",
        fields={"metadata.name": "mm-operator-0", "metadata.namespace": chart_rbac},
        kubelet_env=kubelet_env(own_cluster),
        read_only_root=None if root == "read-only" else False,
    )  # fmt: skip
    spec = c.container
    own_cluster.kubectl("create", "namespace", watched)
    try:
        with c:
            live_path, live_port = probe_target(spec, "livenessProbe")
            ready_path, ready_port = probe_target(spec, "readinessProbe")
            wait_http_ok(client(live_port), live_path, "the operator's liveness probe", c)
            assert client(ready_port).get(ready_path)[0] == 200
            metrics_port = next(p["containerPort"] for p in spec["ports"] if p["name"] == "metrics")
            # Reconciling for real: the worker Deployment appears, owned by the monitor.
            own_cluster.kubectl(
                "create", "configmap", "fraud-reference", "-n", watched,
                f"--from-file=reference.csv={REFERENCE}",
            )  # fmt: skip
            monitor = fraud_monitor(namespace=watched)
            monitor["metadata"] = {"name": "fraud", "namespace": watched}
            own_cluster.kubectl("apply", "-f", "-", input=json.dumps(monitor))

            def worker_deployment() -> dict:
                return get_json(own_cluster.kubeconfig, "deployment", "mm-fraud", "-n", watched)

            wait_until(lambda: bool(worker_deployment()), timeout=120,
                       what="the worker Deployment made by the operator in the container")  # fmt: skip
            owner = worker_deployment()["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["name"]) == ("ModelMonitor", "fraud")
            reconciles = client(metrics_port).get("/metrics")
            assert reconciles[0] == 200
            assert "modelmonitor_operator_reconciles_total" in str(reconciles[1])
            assert c.running()
            exit_code = c.stop()
            log = c.logs()
            assert exit_code == 0, log[-4000:]
            check_no_writes(c, root, log)
            assert "Traceback" not in log, log[-4000:]
    finally:
        own_cluster.kubectl("delete", "namespace", watched, "--wait=false", check=False)


@pytest.mark.parametrize("root", ROOTS)
def test_the_checks_catch_a_write_outside_the_volumes(images, tmp_path, root):
    """The worker's pod spec with a command that writes to /var/tmp (world-writable, and no volume): with a read-only root
    it fails with EROFS (seen in its log), with a writable one ``podman diff`` shows the file."""
    image = images.project.ref
    pod_spec, files = rendered_worker(image, fraud_monitor())
    container = pod_spec["containers"][0]
    container["command"] = ["python3", "-c"]
    container["args"] = ["open('/var/tmp/leak', 'w').write('x')"]
    c = PodmanContainer(
        pod_spec, image, tmp_path, files=files,
        read_only_root=None if root == "read-only" else False,
    )  # fmt: skip
    with c:
        wait_until(lambda: not c.running(), timeout=60, what="the writing command to finish")
        log = c.logs()
        if root == "read-only":
            assert write_failures(log), log
        else:
            assert ("A", "/var/tmp/leak") in writes_outside_volumes(c), c.diff()
