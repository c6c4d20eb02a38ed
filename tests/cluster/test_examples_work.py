"""The KServe example as written, on the real control plane with the real operator: the
worker the operator makes for it (run from its pod spec, with the Secrets and ConfigMaps the
operator wrote) takes the logger's events over https without a token, by the Service name
its certificate is for and with the CA KServe's logger would mount; records and labels still
need the token. Found in review: this example used to answer 401 to every event."""

from __future__ import annotations

import json

import pytest

from devcluster.podrunner import PodRunner
from devcluster.processes import wait_until
from devcluster.tools import REPO
from tests.support.operator import get_json

pytestmark = pytest.mark.cluster

EXAMPLE = REPO / "examples" / "kserve-inferenceservice.yaml"
NAMESPACE, NAME = "models", "fraud-detector"
REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


@pytest.fixture
def models_namespace(cluster):
    """The example's namespace (tests/cluster/test_examples_apply.py makes it too); what the
    example made in it is deleted afterwards, not the namespace (other tests use it)."""
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    try:
        yield NAMESPACE
    finally:
        cluster.kubectl("delete", "-f", str(EXAMPLE), "--wait=true", check=False)
        cluster.kubectl("delete", "configmap", "fraud-reference", "-n", NAMESPACE, check=False)


def test_the_kserve_example_takes_the_loggers_events_over_https_without_401(
    cluster, inferenceservice_crd, operator, models_namespace, tmp_path
):
    # The commands of the example's header, as written.
    cluster.kubectl("create", "configmap", "fraud-reference", "-n", NAMESPACE,
                    f"--from-file=reference.csv={REPO / 'examples' / 'reference.csv'}")  # fmt: skip
    cluster.kubectl("apply", "-f", str(EXAMPLE))
    wait_until(
        lambda: cluster.kubectl("get", "configmap", "model-monitor-logger-ca", "-n", NAMESPACE,
                                check=False) != "",
        timeout=60, what="the logger CA bundle",
    )  # fmt: skip
    bundle = get_json(cluster.kubeconfig, "configmap", "model-monitor-logger-ca", "-n", NAMESPACE)
    ca = bundle["data"]["service-ca.crt"]  # what KServe's agent reads at /etc/tls/logger/

    worker = PodRunner(cluster.kubeconfig, NAMESPACE, f"mm-{NAME}", tmp_path).start(ca=ca)
    try:
        assert worker.url.startswith("https://")
        token = worker.token
        worker.token = None  # KServe's logger sends none
        features = {"amount": 31.0, "hour": 3.0, "age": 40.0, "device_score": 0.5,
                    "country": "DE", "merchant": "travel"}  # fmt: skip
        for ce_type, body in (
            (REQUEST, {"instances": [features]}),
            (RESPONSE, {"predictions": [1]}),
        ):
            code, doc = worker.post("/v1/cloudevents", json.dumps(body).encode(), {
                "Ce-Id": "tx-1", "Ce-Type": ce_type, "Ce-Specversion": "1.0",
                "Ce-Source": "http://fraud-detector-predictor", "Ce-Endpoint": "",
                "Ce-Inferenceservicename": NAME, "Ce-Namespace": NAMESPACE,
            })  # fmt: skip
            assert code == 200, doc
        assert worker.status()["totals"]["records"] == 1
        code, _ = worker.post("/v1/labels", {"labels": [{"id": "tx-1", "label": 1}]})
        assert code == 401
        auth = {"Authorization": f"Bearer {token}"}
        code, doc = worker.post("/v1/labels", {"labels": [{"id": "tx-1", "label": 1}]}, auth)
        assert code == 200 and doc["matched"] == 1
    finally:
        worker.stop()
