"""The operator with KServe InferenceService targets on the real control plane (KServe's own
CRD from its Go module), under exactly the chart's RBAC: readiness events, the predictor's
pods, the certificates it issues and rotates without reading a Secret, the CA bundle KServe's
logger mounts, and the specs the API server refuses."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess

import pytest
import yaml
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from devcluster.processes import wait_until
from tests.cluster.test_operator import (
    apply,
    condition,
    monitor,
    reference_configmap,
    status,
    wait_status,
)
from tests.support.operator import OPERATOR_NAMESPACE, get_json

pytestmark = pytest.mark.cluster

PREDICTOR = {"serving.kserve.io/inferenceservice": "fraud-detector", "component": "predictor"}
BUNDLE = "model-monitor-logger-ca"


def inference_service(name: str = "fraud-detector") -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "protocolVersion": "v2",
                    "storageUri": "gs://models-example/fraud-detector",
                },
                "logger": {"mode": "all", "url": "https://mm-fraud.ns.svc:8080/v1/cloudevents"},
            }
        },
    }


def kserve_monitor(name: str = "fraud", **worker) -> dict:
    m = monitor(
        name,
        worker={
            "auth": {"kserveLogger": True},
            "networkPolicy": {"enabled": True},
            "tls": {"enabled": True},
            **worker,
        },
    )
    m["spec"]["model"]["targetRef"] = {"kind": "InferenceService", "name": "fraud-detector"}
    return m


def set_ready(cluster, ns: str, ready: bool) -> None:
    state = "True" if ready else "False"
    patch = {"status": {"conditions": [{"type": "Ready", "status": state,
                                        "lastTransitionTime": "2026-12-01T00:00:00Z"}]}}  # fmt: skip
    cluster.kubectl("patch", "inferenceservice", "fraud-detector", "-n", ns, "--subresource=status",
                    "--type=merge", "-p", json.dumps(patch))  # fmt: skip


def secret_data(cluster, ns: str, name: str) -> dict[str, str]:
    data = get_json(cluster.kubeconfig, "secret", name, "-n", ns)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def verify(
    cert_pem: str, bundle: str, name: str, at: dt.datetime | None = None
) -> x509.Certificate:
    leaf = x509.load_pem_x509_certificate(cert_pem.encode())
    store = Store(x509.load_pem_x509_certificates(bundle.encode()))
    builder = PolicyBuilder().store(store)
    if at is not None:
        builder = builder.time(at)
    builder.build_server_verifier(x509.DNSName(name)).verify(leaf, [])
    return leaf


@pytest.fixture
def slow_timer(operator):
    """The operator with a status timer too slow to matter: what changes, events changed."""
    operator.reconfigure(MM_STATUS_INTERVAL="600")
    try:
        yield operator
    finally:
        operator.reconfigure(MM_STATUS_INTERVAL="2")


def test_readiness_of_an_inference_service_reaches_the_monitor_by_its_events(
    cluster, inferenceservice_crd, slow_timer, namespace
):
    apply(cluster, namespace, reference_configmap(), inference_service(), kserve_monitor())
    wait_status(cluster, namespace, "fraud",
                lambda s: "not ready yet" in condition(s, "TargetFound").get("message", ""),
                "TargetFound: not ready yet", timeout=60)  # fmt: skip
    set_ready(cluster, namespace, True)
    wait_status(cluster, namespace, "fraud",
                lambda s: "(ready)" in condition(s, "TargetFound").get("message", ""),
                "TargetFound: ready, from the InferenceService's event", timeout=30)  # fmt: skip
    set_ready(cluster, namespace, False)
    wait_status(cluster, namespace, "fraud",
                lambda s: "not ready yet" in condition(s, "TargetFound").get("message", ""),
                "TargetFound: not ready again", timeout=30)  # fmt: skip


def test_predictor_pods_tls_and_the_logger_ca_bundle(
    cluster, inferenceservice_crd, operator, namespace
):
    apply(cluster, namespace, reference_configmap(), inference_service(), kserve_monitor())
    wait_status(cluster, namespace, "fraud",
                lambda s: condition(s, "WorkerAvailable").get("status") == "True",
                "worker available", timeout=60)  # fmt: skip
    uid = get_json(cluster.kubeconfig, "modelmonitor", "fraud", "-n", namespace)["metadata"]["uid"]

    # Colocation and the NetworkPolicy select the predictor's pods only, and admit the operator.
    pod = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)["spec"]["template"]["spec"]  # fmt: skip
    term = pod["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == PREDICTOR
    policy = get_json(cluster.kubeconfig, "networkpolicy", "mm-fraud", "-n", namespace)["spec"]
    (rule,) = policy["ingress"]
    assert {"podSelector": {"matchLabels": PREDICTOR}} in rule["from"]
    operator_peer = next(p for p in rule["from"] if "namespaceSelector" in p)
    assert operator_peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": OPERATOR_NAMESPACE
    }
    config = yaml.safe_load(
        get_json(cluster.kubeconfig, "configmap", "mm-fraud-config", "-n", namespace)["data"]["config.yaml"]
    )  # fmt: skip
    assert config["ingestion"]["kserveLoggerWithoutToken"] is True
    assert config["ingestion"]["authTokenFile"]  # /v1/records and /v1/labels keep the token
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"

    # The certificate: in a Secret the operator made (and cannot read), for the Service's names,
    # signed by the CA it published; KServe's bundle holds the same CA, owned by the monitor.
    tls = secret_data(cluster, namespace, "mm-fraud-tls")
    assert set(tls) == {"a.crt", "a.key"}
    ca = get_json(cluster.kubeconfig, "configmap", "mm-fraud-ca", "-n", namespace)
    for name in (f"mm-fraud.{namespace}.svc", f"mm-fraud.{namespace}.svc.cluster.local"):
        verify(tls["a.crt"], ca["data"]["ca.crt"], name)
    bundle = get_json(cluster.kubeconfig, "configmap", BUNDLE, "-n", namespace)
    assert bundle["data"]["service-ca.crt"] == ca["data"]["ca.crt"]
    assert [o["uid"] for o in bundle["metadata"]["ownerReferences"]] == [uid]
    sm = get_json(cluster.kubeconfig, "servicemonitor", "mm-fraud", "-n", namespace)["spec"]
    assert sm["endpoints"][0]["scheme"] == "https"
    assert sm["endpoints"][0]["tlsConfig"]["serverName"] == f"mm-fraud.{namespace}.svc"

    # A second monitor of an InferenceService in the namespace: both CAs in the one bundle.
    second = kserve_monitor("fraud-b")
    apply(cluster, namespace, second)
    wait_until(
        lambda: len(x509.load_pem_x509_certificates(
            get_json(cluster.kubeconfig, "configmap", BUNDLE, "-n", namespace)["data"]["service-ca.crt"].encode()
        )) == 2,
        timeout=60, what="the bundle holding both monitors' CAs",
    )  # fmt: skip
    # TLS off for the first: its Secret and CA ConfigMap go, its CA leaves the bundle.
    off = kserve_monitor()
    off["spec"]["worker"] = {"networkPolicy": {"enabled": True}}
    apply(cluster, namespace, off)
    for kind, name in (("secret", "mm-fraud-tls"), ("configmap", "mm-fraud-ca")):
        wait_until(lambda k=kind, n=name: cluster.kubectl("get", k, n, "-n", namespace, check=False) == "",
                   timeout=60, what=f"{kind}/{name} removed")  # fmt: skip
    b_ca = get_json(cluster.kubeconfig, "configmap", "mm-fraud-b-ca", "-n", namespace)["data"][
        "ca.crt"
    ]
    wait_until(
        lambda: get_json(cluster.kubeconfig, "configmap", BUNDLE, "-n", namespace)["data"]["service-ca.crt"] == b_ca,
        timeout=60, what="the bundle holding only the second CA",
    )  # fmt: skip


def test_certificates_rotate_into_the_other_slot_valid_later(
    cluster, inferenceservice_crd, operator, namespace
):
    """A one-minute validity: due after 40 s; the rotation writes slot b valid from 6 s later
    (the grace), and the bundle trusts both CAs meanwhile. Checked as a client would."""
    apply(cluster, namespace, reference_configmap(), inference_service(),
          kserve_monitor(tls={"enabled": True, "duration": "1m"}))  # fmt: skip
    wait_until(lambda: cluster.kubectl("get", "configmap", "mm-fraud-ca", "-n", namespace, check=False) != "",
               timeout=60, what="the CA ConfigMap")  # fmt: skip
    first = secret_data(cluster, namespace, "mm-fraud-tls")
    assert set(first) == {"a.crt", "a.key"}
    wait_until(lambda: "b.crt" in secret_data(cluster, namespace, "mm-fraud-tls"), timeout=120,
               what="a rotation into slot b", interval=1)  # fmt: skip
    rotated = secret_data(cluster, namespace, "mm-fraud-tls")
    assert rotated["a.crt"] == first["a.crt"]  # the served one stays until b is valid
    ca = get_json(cluster.kubeconfig, "configmap", "mm-fraud-ca", "-n", namespace)
    assert ca["metadata"]["annotations"]["modelmonitor.io/tls-slot"] == "b"
    name = f"mm-fraud.{namespace}.svc"
    new = x509.load_pem_x509_certificate(rotated["b.crt"].encode())
    old = verify(first["a.crt"], ca["data"]["ca.crt"], name)
    verify(rotated["b.crt"], ca["data"]["ca.crt"], name, at=new.not_valid_before_utc)
    assert new.not_valid_before_utc > old.not_valid_before_utc
    bundle = get_json(cluster.kubeconfig, "configmap", BUNDLE, "-n", namespace)
    assert bundle["data"]["service-ca.crt"] == ca["data"]["ca.crt"]
    assert len(x509.load_pem_x509_certificates(ca["data"]["ca.crt"].encode())) == 2


def test_specs_that_cannot_work_are_refused_naming_the_field(cluster, operator, namespace):
    typo = monitor("typo", data={"features": [{"name": "amount", "type": "numerical"}]},
                   drift={"features": [{"name": "amout", "method": "psi"}]})  # fmt: skip
    open_logger = monitor("open", worker={"auth": {"kserveLogger": True}})
    for doc, field in (
        (typo, "spec.drift.features"),
        (open_logger, "spec.worker.auth.kserveLogger"),
    ):
        r = subprocess.run(
            [*_kubectl(cluster), "apply", "-n", namespace, "-f", "-"],
            input=yaml.safe_dump(doc), capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode != 0 and field in r.stderr, r.stderr
    # A text feature's descriptor series is a name drift.features may use.
    series = monitor("series", data={"features": [{"name": "review", "type": "text"}]},
                     drift={"features": [{"name": "review.has_link", "enabled": False}]})  # fmt: skip
    r = subprocess.run(
        [*_kubectl(cluster), "apply", "--dry-run=server", "-n", namespace, "-f", "-"],
        input=yaml.safe_dump(series), capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_a_paused_monitor_is_unknown_and_has_no_worker_presence_alerts(
    cluster, operator, namespace
):
    from tests.cluster.test_operator import target_deployment

    apply(cluster, namespace, reference_configmap(), target_deployment(),
          monitor("fraud", worker={"replicas": 0}))  # fmt: skip
    st = wait_status(cluster, namespace, "fraud",
                     lambda s: condition(s, "Healthy").get("reason") == "WorkerPaused",
                     "Healthy: WorkerPaused")  # fmt: skip
    assert st["health"] == "Unknown"
    assert condition(st, "WorkerAvailable")["reason"] == "Paused"
    rules = get_json(cluster.kubeconfig, "prometheusrule", "mm-fraud", "-n", namespace)
    names = {r.get("alert") for g in rules["spec"]["groups"] for r in g["rules"]}
    assert "ModelMonitorAccuracyLow" in names
    assert not names & {"ModelMonitorWorkerDown", "ModelMonitorWorkerAbsent"}
    assert status(cluster, namespace, "fraud")["health"] == "Unknown"


def _kubectl(cluster) -> list[str]:
    from devcluster.tools import kubectl_binary

    return [kubectl_binary(), f"--kubeconfig={cluster.kubeconfig}"]


def test_with_an_issuer_cert_manager_issues_and_the_operator_makes_no_secret(
    cluster, cert_manager_crds, operator, namespace
):
    """worker.tls.issuerRef: a Certificate the real cert-manager schema accepts, for the
    Service's names; the worker mounts cert-manager's Secret; the operator writes no key."""
    from tests.cluster.test_operator import target_deployment

    issuer = {"name": "company-ca", "kind": "ClusterIssuer"}
    apply(cluster, namespace, reference_configmap(), target_deployment(),
          monitor("fraud", worker={"tls": {"enabled": True, "issuerRef": issuer}}))  # fmt: skip
    wait_until(lambda: cluster.kubectl("get", "certificate", "mm-fraud-tls", "-n", namespace,
                                       check=False) != "",
               timeout=120, what="the Certificate (cert-manager.io/v1)")  # fmt: skip
    cert = get_json(cluster.kubeconfig, "certificate", "mm-fraud-tls", "-n", namespace)["spec"]
    assert cert["secretName"] == "mm-fraud-tls"
    assert cert["issuerRef"] == {**issuer, "group": "cert-manager.io"}
    assert f"mm-fraud.{namespace}.svc" in cert["dnsNames"]
    assert cluster.kubectl("get", "secret", "mm-fraud-tls", "-n", namespace, check=False) == ""
    assert cluster.kubectl("get", "configmap", "mm-fraud-ca", "-n", namespace, check=False) == ""
    pod = get_json(cluster.kubeconfig, "deployment", "mm-fraud", "-n", namespace)["spec"]["template"]["spec"]  # fmt: skip
    volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "mm-fraud-tls"
    # Back to the operator's own certificates: the Certificate goes, a Secret comes.
    apply(cluster, namespace, monitor("fraud", worker={"tls": {"enabled": True}}))
    wait_until(lambda: cluster.kubectl("get", "certificate", "mm-fraud-tls", "-n", namespace,
                                       check=False) == "",
               timeout=60, what="the Certificate removed")  # fmt: skip
    wait_until(lambda: "a.crt" in secret_data(cluster, namespace, "mm-fraud-tls"), timeout=60,
               what="the operator's own certificate")  # fmt: skip
