"""render: pure spec -> children."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mm_api.worker_config import parse_config
from mm_operator.certificates import make_issuance
from mm_operator.render import (
    ClusterFacts,
    render_children,
    render_logger_ca_bundle,
    render_worker_config,
    service_names,
)
from mm_operator.settings import Settings
from mm_operator.spec import SpecError, parse_monitor

SETTINGS = Settings(worker_image="registry.example/mm:1", default_labels={"team": "ml"})


def monitor(**spec):
    base = {"model": {"task": "binary-classification", "targetRef": {"name": "fd"}}}
    base.update(spec)
    return parse_monitor(
        {
            "metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1", "generation": 3},
            "spec": base,
        }
    )


def by_kind(children):
    return {o["kind"]: o for o in children.objects}


def pod_spec(children):
    return by_kind(children)["Deployment"]["spec"]["template"]["spec"]


def test_children_names_labels_and_owner():
    ch = render_children(monitor(), SETTINGS, ClusterFacts({"app": "fd"}))
    kinds = [(o["kind"], o["metadata"]["name"]) for o in ch.objects]
    assert kinds == [
        ("ConfigMap", "mm-fraud-config"),
        ("Deployment", "mm-fraud"),
        ("Service", "mm-fraud"),
        ("ServiceMonitor", "mm-fraud"),
        ("PrometheusRule", "mm-fraud"),
    ]
    for o in ch.objects:
        assert o["metadata"]["namespace"] == "ml"
        assert o["metadata"]["ownerReferences"][0]["uid"] == "u-1"
        assert o["metadata"]["labels"]["team"] == "ml"
        assert o["metadata"]["labels"]["modelmonitor.io/name"] == "fraud"


def test_pod_passes_restricted_profile_fields():
    spec = pod_spec(render_children(monitor(), SETTINGS, ClusterFacts()))
    sc = spec["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    c = spec["containers"][0]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["image"] == "registry.example/mm:1"
    assert {p["httpGet"]["path"] for p in (c["readinessProbe"], c["livenessProbe"])} == {
        "/readyz",
        "/healthz",
    }


def test_no_gpu_means_no_gpu_fields():
    spec = pod_spec(render_children(monitor(), SETTINGS, ClusterFacts()))
    text = json.dumps(spec)
    assert "gpu" not in text and "tolerations" not in spec and "nodeSelector" not in spec


def test_gpu_defaults_to_nvidia_toleration():
    spec = pod_spec(
        render_children(monitor(worker={"gpu": {"count": 2}}), SETTINGS, ClusterFacts())
    )
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_gpu_custom_resource_selector_and_tolerations():
    gpu = {
        "resourceName": "amd.com/gpu",
        "nodeSelector": {"accel": "mi300"},
        "tolerations": [{"key": "amd", "operator": "Exists"}],
    }
    spec = pod_spec(render_children(monitor(worker={"gpu": gpu}), SETTINGS, ClusterFacts()))
    assert spec["containers"][0]["resources"]["limits"]["amd.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"accel": "mi300"}
    assert spec["tolerations"] == [{"key": "amd", "operator": "Exists"}]


@pytest.mark.parametrize(("colocate", "labels", "expected"), [(True, {"app": "fd"}, True),
                                                              (False, {"app": "fd"}, False),
                                                              (True, None, False)])  # fmt: skip
def test_colocation_affinity(colocate, labels, expected):
    spec = pod_spec(
        render_children(monitor(worker={"colocate": colocate}), SETTINGS, ClusterFacts(labels))
    )
    assert ("affinity" in spec) is expected


def test_without_prometheus_operator_annotations_instead():
    ch = render_children(monitor(), SETTINGS, ClusterFacts(prometheus_operator=False))
    kinds = by_kind(ch)
    assert "ServiceMonitor" not in kinds and "PrometheusRule" not in kinds
    assert kinds["Service"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_disabled_parts_are_listed_absent():
    m = monitor(
        prometheus={"serviceMonitor": {"enabled": False}},
        worker={"auth": {"enabled": False}},
    )
    ch = render_children(m, SETTINGS, ClusterFacts())
    assert ("monitoring.coreos.com/v1", "ServiceMonitor", "mm-fraud") in ch.absent
    assert ("v1", "Secret", "mm-fraud-token") in ch.absent
    assert "token" not in json.dumps(pod_spec(ch)["volumes"])


def test_worker_config_parses_with_the_worker_schema():
    m = monitor(
        data={"reference": {"configMapKeyRef": {"name": "ref", "key": "train.parquet"}}},
        quality={"thresholds": [{"metric": "f1", "min": 0.8}]},
    )
    cfg = render_worker_config(m)
    again = parse_config(cfg.model_dump(by_alias=True, exclude_none=True, mode="json"))
    assert again == cfg
    assert cfg.data.reference.path == "/etc/model-monitor/reference/train.parquet"
    assert cfg.ingestion.auth_token_file == "/var/run/model-monitor/token/token"
    assert cfg.model.name == "fraud"


def test_a_reference_url_with_headers_from_a_secret_sampling_and_reloads():
    m = monitor(
        data={"reference": {"url": "https://data.example.org/ref.parquet?sig=abc",
                            "headersSecretRef": {"name": "ref-auth"},
                            "sampleRows": 50_000, "reloadInterval": "5m"}},
    )  # fmt: skip
    cfg = render_worker_config(m)
    source = cfg.data.reference
    assert source.headers_dir == "/var/run/model-monitor/reference-headers"
    assert source.cache_dir == "/var/lib/model-monitor/reference"  # the state volume
    assert (source.sample_rows, source.reload_interval) == (50_000, "5m")
    ch = render_children(m, SETTINGS, ClusterFacts({"app": "fd"}))
    pod = pod_spec(ch)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["reference-headers"] == {
        "name": "reference-headers", "secret": {"secretName": "ref-auth"}
    }  # fmt: skip
    mounts = {v["name"]: v for v in pod["containers"][0]["volumeMounts"]}
    assert mounts["reference-headers"]["readOnly"] is True
    assert mounts["reference-headers"]["mountPath"] == source.headers_dir
    # Defaults: a check a minute, 200k sampled rows; no headers, no such volume.
    plain = render_worker_config(monitor(data={"reference": {"url": "https://x.example/r.csv"}}))
    assert plain.data.reference.reload_interval == "60s"
    assert plain.data.reference.sample_rows == 200_000
    assert plain.data.reference.headers_dir is None


def test_reference_headers_need_a_url():
    with pytest.raises(SpecError, match="headersSecretRef is sent with the url"):
        monitor(data={"reference": {"configMapKeyRef": {"name": "r", "key": "k"},
                                    "headersSecretRef": {"name": "s"}}})  # fmt: skip


def test_estimation_and_multivariate_drift_reach_the_worker_config():
    m = monitor(
        model={"task": "multiclass-classification", "targetRef": {"name": "fd"},
               "classes": ["a", "b", "c"]},
        data={"reference": {"configMapKeyRef": {"name": "ref", "key": "train.csv"}},
              "scoreColumns": {"a": "p_a"}},
        estimation={"enabled": True, "chunkSize": 5000},
        drift={"multivariate": {"method": "domain-classifier", "threshold": 0.6}},
    )  # fmt: skip
    cfg = render_worker_config(m)
    assert cfg.estimation == m.spec.estimation and cfg.estimation.chunk_size == 5000
    assert cfg.drift.multivariate is not None and cfg.drift.multivariate.threshold == 0.6
    assert cfg.data.class_score_columns(["a", "b", "c"]) == ["p_a", "score_b", "score_c"]
    assert parse_config(cfg.model_dump(by_alias=True, exclude_none=True, mode="json")) == cfg


def test_config_change_changes_pod_checksum():
    a = render_children(monitor(), SETTINGS, ClusterFacts())
    b = render_children(monitor(window={"size": "2h"}), SETTINGS, ClusterFacts())
    c = render_children(monitor(), SETTINGS, ClusterFacts())

    def checksum(ch):
        return by_kind(ch)["Deployment"]["spec"]["template"]["metadata"]["annotations"][
            "modelmonitor.io/config-checksum"
        ]

    assert checksum(a) == checksum(c) != checksum(b)


# -- replicas, store, persistence, autoscaling ------------------------------------------------

STORE = {
    "url": "redis://valkey.ml.svc:6379/0",
    "passwordSecretRef": {"name": "valkey", "key": "pw"},
}


def test_one_replica_without_store_recreates_and_has_no_budget_or_autoscaler():
    ch = render_children(monitor(), SETTINGS, ClusterFacts())
    dep = by_kind(ch)["Deployment"]
    assert dep["spec"]["strategy"] == {"type": "Recreate"} and dep["spec"]["replicas"] == 1
    assert {k for _, k, _ in ch.absent} >= {
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "PersistentVolumeClaim",
    }
    assert "topologySpreadConstraints" not in pod_spec(ch)
    assert {"name": "state", "emptyDir": {}} in pod_spec(ch)["volumes"]


def test_replicas_with_a_store_roll_without_downtime():
    ch = render_children(monitor(worker={"replicas": 3, "store": STORE}), SETTINGS, ClusterFacts())
    kinds = by_kind(ch)
    dep = kinds["Deployment"]
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pdb = kinds["PodDisruptionBudget"]
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": dep["spec"]["selector"]}
    container = pod_spec(ch)["containers"][0]
    assert {
        "name": "MM_STORE_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "valkey", "key": "pw"}},
    } in container["env"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    (spread,) = pod_spec(ch)["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    config = parse_config(__import__("yaml").safe_load(kinds["ConfigMap"]["data"]["config.yaml"]))
    assert config.store is not None and config.store.url == STORE["url"]
    assert config.store.password_env == "MM_STORE_PASSWORD"  # the variable the pod sets


def test_autoscaling_leaves_the_replica_count_to_the_autoscaler():
    auto = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 60}
    ch = render_children(
        monitor(worker={"store": STORE, "autoscaling": auto}), SETTINGS, ClusterFacts()
    )
    kinds = by_kind(ch)
    assert "replicas" not in kinds["Deployment"]["spec"]
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["scaleTargetRef"]["name"] == "mm-fraud"
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


def test_persistence_puts_the_snapshots_on_a_claim():
    ch = render_children(
        monitor(worker={"persistence": {"size": "2Gi", "storageClassName": "fast"}}),
        SETTINGS,
        ClusterFacts(),
    )
    claim = by_kind(ch)["PersistentVolumeClaim"]
    assert claim["metadata"]["name"] == "mm-fraud-state"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
        "storageClassName": "fast",
    }
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "mm-fraud-state"}} in pod_spec(
        ch
    )["volumes"]
    assert by_kind(ch)["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    ("worker", "field"),
    [({"replicas": 2}, "replicas"), ({"autoscaling": {}}, "autoscaling"),
     ({"store": STORE, "persistence": {}}, "persistence")],
)  # fmt: skip
def test_store_rules_name_the_field(worker, field):
    from mm_operator.spec import SpecError

    with pytest.raises(SpecError, match=rf"spec\.worker: {field}: "):
        monitor(worker=worker)


# -- texts the worker embeds (issue 16) ----------------------------------------------------------

EMBED = {"features": [{"name": "review", "type": "text", "embed": True}]}


def container(children):
    return pod_spec(children)["containers"][0]


@pytest.mark.parametrize(("worker", "device"), [({}, "cpu"), ({"gpu": {"count": 1}}, "cuda")])
def test_the_worker_embeds_on_the_gpu_it_is_given_else_on_cpu(worker, device):
    m = monitor(data=EMBED, worker=worker)
    assert render_worker_config(m).embedder.device == device
    c = container(render_children(m, SETTINGS, ClusterFacts()))
    assert c["image"] == "registry.example/mm:1-text"  # the [text] variant of the image
    assert {"name": "HF_HOME", "value": "/tmp/huggingface"} in c["env"]  # /tmp is writable
    memory = {"cpu": "1Gi", "cuda": "4Gi"}[device]
    assert c["resources"]["limits"]["memory"] == memory


def test_a_worker_that_embeds_nothing_keeps_the_default_image_and_resources():
    m = monitor(
        data={"features": [{"name": "review", "type": "text"}]}, measures=[{"name": "latency_ms"}]
    )
    cfg = render_worker_config(m)
    assert cfg.measures[0].name == "latency_ms" and cfg.embedder.device == "cpu"
    c = container(render_children(m, SETTINGS, ClusterFacts()))
    assert c["image"] == "registry.example/mm:1"
    assert c["resources"]["limits"]["memory"] == "512Mi"
    assert not any(e["name"] == "HF_HOME" for e in c["env"])


@pytest.mark.parametrize(
    ("settings", "image"),
    [
        (Settings(worker_image="r.example/mm:2", worker_text_image="r.example/mm-nlp:7"), "r.example/mm-nlp:7"),
        (Settings(worker_image="localhost:5000/mm"), "localhost:5000/mm:latest-text"),
        (Settings(worker_image="r.example/mm@sha256:abc"), "r.example/mm@sha256:abc"),
    ],
)  # fmt: skip
def test_the_text_image_setting_or_its_derivation(settings, image):
    assert (
        container(render_children(monitor(data=EMBED), settings, ClusterFacts()))["image"] == image
    )
    spec_image = monitor(data=EMBED, worker={"image": "mine:1"})
    assert container(render_children(spec_image, settings, ClusterFacts()))["image"] == "mine:1"


# -- KServe's logger: https, the CA ConfigMaps, the NetworkPolicy ------------------------------

ISVC_LABELS = {"serving.kserve.io/inferenceservice": "fd", "component": "predictor"}
OPERATOR = Settings(
    operator_namespace="model-monitor-system",
    operator_pod_labels={"app.kubernetes.io/name": "model-monitor"},
)


def kserve_monitor(**worker):
    return monitor(
        model={"task": "binary-classification",
               "targetRef": {"kind": "InferenceService", "name": "fd"}},
        worker={"auth": {"kserveLogger": True}, "networkPolicy": {"enabled": True},
                "tls": {"enabled": True}, **worker},
    )  # fmt: skip


def issued_record(m):
    now = dt.datetime.now(dt.UTC)
    return make_issuance("fresh", None, service_names(m), "90d", dt.timedelta(days=90), now).record


def test_tls_worker_serves_https_everywhere_with_the_operators_certificate():
    m = kserve_monitor()
    record = issued_record(m)
    ch = render_children(m, OPERATOR, ClusterFacts(ISVC_LABELS, tls=record))
    kinds = by_kind(ch)
    ca = next(o for o in ch.objects if o["metadata"]["name"] == "mm-fraud-ca")
    assert ca["data"]["ca.crt"] == record.bundle
    assert ca["metadata"]["labels"]["modelmonitor.io/logger-ca"] == "true"
    assert ca["metadata"]["annotations"]["modelmonitor.io/tls-slot"] == "a"
    c = pod_spec(ch)["containers"][0]
    assert c["ports"] == [{"name": "https", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["scheme"] == "HTTPS" and c[probe]["httpGet"]["port"] == "https"
    assert {"name": "tls", "mountPath": "/var/run/model-monitor/tls", "readOnly": True} in c[
        "volumeMounts"
    ]
    assert {"name": "tls", "secret": {"secretName": "mm-fraud-tls"}} in pod_spec(ch)["volumes"]
    cfg = render_worker_config(m)
    assert [(p.cert_file, p.key_file) for p in cfg.tls.certificates] == [
        ("/var/run/model-monitor/tls/a.crt", "/var/run/model-monitor/tls/a.key"),
        ("/var/run/model-monitor/tls/b.crt", "/var/run/model-monitor/tls/b.key"),
    ]
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == "https"
    (endpoint,) = kinds["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["port"] == "https"
    assert endpoint["tlsConfig"] == {
        "ca": {"configMap": {"name": "mm-fraud-ca", "key": "ca.crt"}},
        "serverName": "mm-fraud.ml.svc",
    }
    assert ("v1", "Secret", "mm-fraud-tls") not in ch.absent


def test_kserve_logger_needs_no_token_for_events_only():
    cfg = render_worker_config(kserve_monitor())
    assert cfg.ingestion.auth_token_file == "/var/run/model-monitor/token/token"
    assert cfg.ingestion.kserve_logger_without_token is True
    assert render_worker_config(monitor()).ingestion.kserve_logger_without_token is False
    off = kserve_monitor(auth={"enabled": False, "kserveLogger": True})
    assert off.spec.worker.auth.enabled is False
    assert render_worker_config(off).ingestion.kserve_logger_without_token is False


def test_kserve_logger_without_an_inference_service_or_policy_is_refused():
    with pytest.raises(SpecError, match=r"worker.auth.kserveLogger needs"):
        monitor(worker={"auth": {"kserveLogger": True}, "networkPolicy": {"enabled": True}})
    with pytest.raises(SpecError, match=r"worker.auth.kserveLogger needs"):
        kserve_monitor(networkPolicy={"enabled": False})


def test_network_policy_admits_the_predictor_prometheus_and_the_operator():
    m = kserve_monitor(
        networkPolicy={"enabled": True,
                       "prometheusNamespaceSelector": {"kubernetes.io/metadata.name": "monitoring"}},
    )  # fmt: skip
    policy = by_kind(render_children(m, OPERATOR, ClusterFacts(ISVC_LABELS)))["NetworkPolicy"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": ISVC_LABELS}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "model-monitor-system"}
            },
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "model-monitor"}},
        },
    ]


def test_network_policy_never_renders_an_empty_from():
    """Found in review: with the target missing and no Prometheus selector it rendered
    ``from: []``, which admits every pod. With no peer known, no ingress is admitted."""
    m = monitor(worker={"networkPolicy": {"enabled": True}})
    policy = by_kind(render_children(m, SETTINGS, ClusterFacts()))["NetworkPolicy"]
    assert policy["spec"]["ingress"] == [] and policy["spec"]["policyTypes"] == ["Ingress"]
    assert '"from": []' not in json.dumps(policy)


def test_tls_off_removes_what_the_operator_issued():
    ch = render_children(monitor(), SETTINGS, ClusterFacts(cert_manager=True))
    assert ("v1", "ConfigMap", "mm-fraud-ca") in ch.absent
    assert ("v1", "Secret", "mm-fraud-tls") in ch.absent
    assert ("cert-manager.io/v1", "Certificate", "mm-fraud-tls") in ch.absent
    # The Secret goes after the ConfigMap that records it was made (it cannot be read).
    assert ch.absent.index(("v1", "ConfigMap", "mm-fraud-ca")) < ch.absent.index(
        ("v1", "Secret", "mm-fraud-tls")
    )


def test_cert_manager_issues_when_an_issuer_is_named():
    m = kserve_monitor(tls={"enabled": True, "duration": "30d",
                            "issuerRef": {"name": "company-ca", "kind": "ClusterIssuer"}})  # fmt: skip
    ch = render_children(m, OPERATOR, ClusterFacts(ISVC_LABELS, cert_manager=True))
    cert = by_kind(ch)["Certificate"]
    assert cert["apiVersion"] == "cert-manager.io/v1"
    assert cert["spec"]["secretName"] == "mm-fraud-tls"
    assert cert["spec"]["dnsNames"][0] == "mm-fraud.ml.svc"
    assert cert["spec"]["duration"] == "30d"
    assert cert["spec"]["issuerRef"] == {
        "name": "company-ca", "kind": "ClusterIssuer", "group": "cert-manager.io",
    }  # fmt: skip
    assert [(p.cert_file, p.key_file) for p in render_worker_config(m).tls.certificates] == [
        ("/var/run/model-monitor/tls/tls.crt", "/var/run/model-monitor/tls/tls.key")
    ]
    (endpoint,) = by_kind(ch)["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["tlsConfig"]["ca"] == {"secret": {"name": "mm-fraud-tls", "key": "ca.crt"}}
    assert ("v1", "Secret", "mm-fraud-tls") not in ch.absent  # cert-manager's own
    assert "mm-fraud-ca" not in [o["metadata"]["name"] for o in ch.objects]


def test_logger_ca_bundle_holds_every_monitors_ca_and_is_owned_by_each():
    owners = [{"apiVersion": "modelmonitor.io/v1alpha1", "kind": "ModelMonitor", "name": n,
               "uid": f"u-{n}", "controller": True, "blockOwnerDeletion": True}
              for n in ("a", "b")]  # fmt: skip
    cm = render_logger_ca_bundle("ml", Settings(), [(owners[0], "CA-A\n"), (owners[1], "CA-B\n")])
    assert cm["metadata"]["name"] == "model-monitor-logger-ca"
    assert cm["data"] == {"service-ca.crt": "CA-A\nCA-B\n"}
    assert [o["uid"] for o in cm["metadata"]["ownerReferences"]] == ["u-a", "u-b"]
    assert not any(o["controller"] for o in cm["metadata"]["ownerReferences"])
