"""The Helm chart, rendered without a cluster: the CRD copy, lint, RBAC from the one rules file,
values schema, README, labels, the operator's env against its settings parser, the dashboard,
and a restricted Pod Security Standard check of every pod spec."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mm_operator.render import RUN_AS
from mm_operator.settings import ENV, load_settings
from tests.support.helm import CHART, REPO, helm, template

CRD = REPO / "crds" / "modelmonitor.io_modelmonitors.yaml"
CHART_CRD = CHART / "crds" / CRD.name
RULES_FILE = CHART / "files" / "operator-rbac-rules.yaml"
DASHBOARD = CHART / "files" / "dashboards" / "model-monitor.json"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())

# Every optional feature on: lint, render and PSS-check this too, not only the defaults.
ALL_FEATURES = {
    "commonLabels": {"team": "ml"},
    "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccount": {"annotations": {"example.org/role": "x"}},
    "watchNamespaces": ["ml", "fraud"],
    "operator": {
        "workerImage": "registry.example.org/mm-worker:1.2.3",
        "workerImagePullPolicy": "Always",
        "workerTextImage": "registry.example.org/mm-nlp:4",
        "prometheusURL": "http://prometheus.monitoring:9090",
        "alertmanagerURL": "http://alertmanager.monitoring:9093",
        "defaultLabels": {"team": "ml", "env": "prod"},
        "statusInterval": "30s",
        "docsURL": "https://runbooks.example.org/mm",
        "verbose": True,
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
    },
    "service": {"annotations": {"example.org/a": "b"}},
    "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}, "scrapeTimeout": "10s"},
    "grafana": {"dashboards": {"namespace": "monitoring", "annotations": {"grafana_folder": "ML"}}},
    "podAnnotations": {"example.org/p": "q"},
    "podLabels": {"tier": "control"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "Exists"}]}
                ]
            }
        }
    },
}


@pytest.fixture(scope="module")
def all_features_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("values") / "all-features.yaml"
    path.write_text(yaml.safe_dump(ALL_FEATURES))
    return path


@pytest.fixture(scope="module")
def default_objects() -> list[dict]:
    return template()


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str) -> dict:
    (obj,) = of_kind(objects, kind)
    return obj


def operator_container(objects: list[dict]) -> dict:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def env_of(objects: list[dict]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in operator_container(objects)["env"]}


# -- the CRD and lint ---------------------------------------------------------------------------


def test_crd_copy_is_identical_to_the_source_of_truth():
    assert CHART_CRD.read_bytes() == CRD.read_bytes(), (
        "helm/model-monitor/crds/ must ship the same bytes as crds/. Fix: "
        "cp crds/modelmonitor.io_modelmonitors.yaml helm/model-monitor/crds/"
    )
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [CRD.name]


@pytest.mark.parametrize("features", [False, True], ids=["defaults", "all-features"])
def test_helm_lint_strict(features: bool, all_features_file: Path):
    args = ["--values", str(all_features_file)] if features else []
    r = helm("lint", "--strict", str(CHART), *args, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[WARNING]" not in r.stdout and "[ERROR]" not in r.stdout, r.stdout


def test_defaults_render_the_expected_objects(default_objects):
    kinds = sorted(o["kind"] for o in default_objects)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "ConfigMap",
        ]
    )
    for obj in default_objects:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "model-monitor", obj["kind"]


def test_every_object_has_the_recommended_labels(all_features_file: Path):
    for objects in (template(), template("--values", str(all_features_file))):
        for obj in objects:
            labels = obj["metadata"]["labels"]
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            assert labels["app.kubernetes.io/name"] == "model-monitor", where
            assert labels["app.kubernetes.io/instance"] == "mm", where
            assert labels["app.kubernetes.io/version"] == "0.1.0", where
            assert labels["app.kubernetes.io/component"] in ("operator", "dashboard"), where
            assert labels["app.kubernetes.io/part-of"] == "model-monitor", where
            assert labels["app.kubernetes.io/managed-by"] == "Helm", where
            assert labels["helm.sh/chart"] == "model-monitor-0.1.0", where
    for obj in template("--values", str(all_features_file)):
        assert obj["metadata"]["labels"]["team"] == "ml", obj["kind"]


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"]) == ("v2", "model-monitor")
    assert (chart["version"], chart["appVersion"]) == ("0.1.0", "0.1.0")


# -- RBAC: exactly the one rules file -----------------------------------------------------------


def test_cluster_role_rules_are_exactly_the_rules_file(default_objects):
    rules = yaml.safe_load(RULES_FILE.read_text())
    assert rules and all("verbs" in r for r in rules)
    role = one(default_objects, "ClusterRole")
    assert role["rules"] == rules
    binding = one(default_objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    sa = one(default_objects, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "model-monitor"}
    ]
    assert (
        one(default_objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
        == (sa["metadata"]["name"])
    )
    assert "MM_NAMESPACES" not in env_of(default_objects)


def test_rbac_rules_are_not_copied_into_templates():
    """The list lives in files/operator-rbac-rules.yaml only; templates read it with .Files.Get."""
    for path in (CHART / "templates").iterdir():
        text = path.read_text()
        assert "apiGroups" not in text and "verbs:" not in text, path.name
    assert (
        '.Files.Get "files/operator-rbac-rules.yaml"'
        in (CHART / "templates" / "_helpers.tpl").read_text()
    )


def test_namespace_scope_renders_roles_in_each_watched_namespace():
    objects = template("--set", "rbac.scope=namespace", "--set", "watchNamespaces={ml,fraud}")
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    rules = yaml.safe_load(RULES_FILE.read_text())
    roles = of_kind(objects, "Role")
    bindings = of_kind(objects, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["fraud", "ml"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["fraud", "ml"]
    for role in roles:
        assert role["rules"] == rules
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == "model-monitor"
    assert env_of(objects)["MM_NAMESPACES"] == "ml,fraud"


def test_namespace_scope_without_namespaces_is_refused():
    r = helm("template", "mm", str(CHART), "--set", "rbac.scope=namespace", check=False)
    assert r.returncode != 0
    assert "watchNamespaces" in r.stderr


def test_rbac_can_be_left_to_the_user():
    objects = template("--set", "rbac.create=false", "--set", "serviceAccount.create=false",
                       "--set", "serviceAccount.name=existing")  # fmt: skip
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert "ServiceAccount" not in kinds
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "existing"


# -- values schema ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["--set", "replicaCount=x"], "/replicaCount"),
        (["--set", "replicaCount=2"], "/replicaCount"),  # kopf runs standalone: one operator
        (["--set", "notAValue=1"], "notAValue"),
        (["--set", "rbac.scope=everything"], "/rbac/scope"),
        (["--set", "rbac.scopes=cluster"], "scopes"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "ports.metrics=http"], "/ports/metrics"),
        (["--set", "ports.health=70000"], "/ports/health"),
        (["--set", "operator.statusInterval=soon"], "/operator/statusInterval"),
        (["--set", "operator.prometheusURL=prometheus:9090"], "/operator/prometheusURL"),
        (["--set", "serviceMonitor.enabled=maybe"], "/serviceMonitor/enabled"),
        (["--set", "grafana.dashboards.enabled=1"], "/grafana/dashboards/enabled"),
        (["--set", "watchNamespaces=ml"], "/watchNamespaces"),
        (["--set", "nodeSelector.disk=1"], "/nodeSelector/disk"),
    ],
)
def test_schema_rejects_wrong_values(args: list[str], path: str):
    r = helm("template", "mm", str(CHART), *args, check=False)
    assert r.returncode != 0, f"{args} was accepted"
    assert "schema" in r.stderr and path in r.stderr, r.stderr


def test_schema_is_draft_07_and_closed_at_the_top():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    assert set(VALUES) <= set(schema["properties"])


# -- README -------------------------------------------------------------------------------------


def leaves(values: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of every leaf (scalars, lists and empty maps)."""
    if isinstance(values, dict) and values:
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(leaves(value, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: values}


def readme_rows() -> dict[str, str]:
    """`key` -> default cell, from the README's values tables."""
    rows = {}
    for line in (CHART / "README.md").read_text().splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_readme_lists_every_value_with_its_default():
    rows = readme_rows()
    missing = [key for key in leaves(VALUES) if key not in rows]
    assert not missing, f"helm/model-monitor/README.md lacks rows for: {missing}"
    for key, value in leaves(VALUES).items():
        cell = rows[key].strip()
        assert cell.startswith("`") and cell.endswith("`"), f"{key}: default {cell!r} not in `…`"
        assert yaml.safe_load(cell.strip("`")) == value, f"{key}: README default {cell}"
    stale = [key for key in rows if key not in leaves(VALUES)]
    assert not stale, f"README documents values that do not exist: {stale}"


def test_readme_documents_existing_crds_and_skip_crds():
    text = (CHART / "README.md").read_text()
    assert "--skip-crds" in text


# -- the operator Deployment --------------------------------------------------------------------


def test_operator_deployment_shape(default_objects):
    deployment = one(default_objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert set(spec["selector"]["matchLabels"].items()) <= set(
        spec["template"]["metadata"]["labels"].items()
    )
    c = operator_container(default_objects)
    assert c["command"] == ["model-monitor-operator"]
    assert c["image"] == f"{VALUES['image']['repository']}:0.1.0"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert pod["securityContext"]["runAsUser"] == RUN_AS == c["securityContext"]["runAsUser"]
    service = one(default_objects, "Service")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_operator_env_defaults(default_objects):
    env = env_of(default_objects)
    assert env["MM_WORKER_IMAGE"] == f"{VALUES['image']['repository']}:0.1.0"
    assert env["MM_METRICS_PORT"] == "8080" and env["MM_HEALTH_PORT"] == "8081"
    assert env["MM_STATUS_INTERVAL"] == "15s"
    for absent in ("MM_PROMETHEUS_URL", "MM_ALERTMANAGER_URL", "MM_DEFAULT_LABELS", "MM_DOCS_URL"):
        assert absent not in env
    settings = load_settings(env)
    assert settings.worker_image == env["MM_WORKER_IMAGE"]
    assert settings.namespaces == []
    tagged = env_of(template("--set", "image.tag=9.9.9", "--set", "image.repository=r.io/mm"))
    assert tagged["MM_WORKER_IMAGE"] == "r.io/mm:9.9.9"


def test_operator_env_from_values_is_what_the_operator_parses(all_features_file: Path):
    objects = template("--values", str(all_features_file))
    env = env_of(objects)
    unknown = {k for k in env if k.startswith("MM_")} - set(ENV.values())
    assert not unknown, f"the chart sets variables the operator does not read: {unknown}"
    settings = load_settings(env)
    assert settings.namespaces == ["ml", "fraud"]
    assert settings.worker_image == "registry.example.org/mm-worker:1.2.3"
    assert settings.worker_image_pull_policy == "Always"
    assert settings.worker_text_image_ref == "registry.example.org/mm-nlp:4"
    assert settings.prometheus_url == "http://prometheus.monitoring:9090"
    assert settings.alertmanager_url == "http://alertmanager.monitoring:9093"
    assert settings.default_labels == {"team": "ml", "env": "prod"}
    assert settings.status_interval == 30
    assert settings.docs_url == "https://runbooks.example.org/mm"
    assert (settings.metrics_port, settings.health_port) == (8080, 8081)
    c = operator_container(objects)
    assert c["args"] == ["--verbose"]
    assert env["EXTRA"] == "1"
    pod = one(objects, "Deployment")["spec"]["template"]
    assert pod["metadata"]["labels"]["tier"] == "control"
    assert pod["metadata"]["annotations"]["example.org/p"] == "q"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["nodeSelector"] == ALL_FEATURES["nodeSelector"]
    assert pod["spec"]["tolerations"] == ALL_FEATURES["tolerations"]
    assert pod["spec"]["affinity"] == ALL_FEATURES["affinity"]
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"


def test_numeric_status_interval_is_accepted():
    env = env_of(template("--set", "operator.statusInterval=5"))
    assert load_settings(env).status_interval == 5


def test_replica_count_zero_pauses_the_operator():
    assert one(template("--set", "replicaCount=0"), "Deployment")["spec"]["replicas"] == 0


# -- ServiceMonitor and dashboard ---------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(all_features_file: Path, default_objects):
    assert not of_kind(default_objects, "ServiceMonitor")
    objects = template("--values", str(all_features_file))
    sm = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert sm["metadata"]["labels"]["release"] == "kps"
    selector = sm["spec"]["selector"]["matchLabels"]
    assert set(selector.items()) <= set(service["metadata"]["labels"].items())
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["model-monitor"]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("30s", "10s")


def test_dashboard_configmap(default_objects, all_features_file: Path):
    cm = one(default_objects, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["model-monitor.json"]) == json.loads(DASHBOARD.read_text())
    custom = template(
        "--set", "grafana.dashboards.label=dashboards", "--set-string",
        "grafana.dashboards.labelValue=yes",
    )  # fmt: skip
    assert one(custom, "ConfigMap")["metadata"]["labels"]["dashboards"] == "yes"
    elsewhere = one(template("--values", str(all_features_file)), "ConfigMap")
    assert elsewhere["metadata"]["namespace"] == "monitoring"
    assert elsewhere["metadata"]["annotations"] == {"grafana_folder": "ML"}
    assert not of_kind(template("--set", "grafana.dashboards.enabled=false"), "ConfigMap")


def test_dashboard_panels_and_variables():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "modelmonitor"} <= set(variables)
    assert "modelmonitor" in json.dumps(variables["modelmonitor"]["query"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    joined = "\n".join(exprs)
    for needle in [
        "modelmonitor_quality{",
        "modelmonitor_feature_drift_score{",
        "modelmonitor_feature_drift_detected{",
        "modelmonitor_drift_share{",
        "modelmonitor_outlier_ratio{",
        "rate(modelmonitor_records_total{",
        "modelmonitor_window_records{",
        'ALERTS{alertname=~"ModelMonitor.*", alertstate="firing"',
    ]:
        assert needle in joined, needle
    for expr in exprs:  # every query follows the dashboard's selection
        assert 'namespace=~"$namespace"' in expr and 'modelmonitor=~"$modelmonitor"' in expr, expr
    legends = " ".join(
        t.get("legendFormat", "") for p in dashboard["panels"] for t in p.get("targets", [])
    )
    assert "{{feature}}" in legends and "{{method}}" in legends and "{{metric}}" in legends
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_notes_name_next_steps():
    r = helm("install", "mm", str(CHART), "--dry-run=client", "--namespace", "model-monitor")
    notes = r.stdout.split("NOTES:", 1)[1]
    assert "kubectl get mm" in notes
    assert "examples/" in notes
    assert "/metrics" in notes and "ModelMonitor" in notes


# -- restricted Pod Security Standard -----------------------------------------------------------

RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip


def restricted_violations(pod: dict) -> list[str]:
    """What the ``restricted`` Pod Security Standard (latest) would refuse in a pod spec."""
    problems = []
    psc = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"spec.{field}")
    for vol in pod.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {vol['name']}: {sorted(kinds - RESTRICTED_VOLUME_TYPES)}")
    for sysctl in psc.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl['name']}")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"pod seccompProfile {pod_seccomp}")
    if psc.get("runAsUser") == 0:
        problems.append("pod runAsUser 0")
    containers = [
        *pod.get("initContainers", []),
        *pod.get("containers", []),
        *pod.get("ephemeralContainers", []),
    ]
    for c in containers:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities.add {caps['add']}")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"{name}: hostProcess")
        if (sc.get("seLinuxOptions") or {}).get("user") or (sc.get("seLinuxOptions") or {}).get(
            "role"
        ):
            problems.append(f"{name}: seLinuxOptions user/role")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
    return problems


def pod_specs(objects: list[dict]) -> list[tuple[str, dict]]:
    specs = []
    for o in objects:
        where = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "Pod":
            specs.append((where, o["spec"]))
        elif o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            specs.append((where, o["spec"]["template"]["spec"]))
        elif o["kind"] == "CronJob":
            specs.append((where, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return specs


def test_restricted_checker_catches_violations():
    good = one(template(), "Deployment")["spec"]["template"]["spec"]
    assert restricted_violations(good) == []
    bad_cases = {
        "allowPrivilegeEscalation": lambda p: p["containers"][0]["securityContext"].pop(
            "allowPrivilegeEscalation"
        ),
        "runAsNonRoot": lambda p: (
            p["securityContext"].pop("runAsNonRoot"),
            p["containers"][0]["securityContext"].pop("runAsNonRoot"),
        ),
        "seccompProfile": lambda p: (
            p["securityContext"].pop("seccompProfile"),
            p["containers"][0]["securityContext"].pop("seccompProfile"),
        ),
        "drop ALL": lambda p: p["containers"][0]["securityContext"].pop("capabilities"),
        "hostPath": lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "hostNetwork": lambda p: p.update(hostNetwork=True),
        "runAsUser 0": lambda p: p["containers"][0]["securityContext"].update(runAsUser=0),
    }
    for case, mutate in bad_cases.items():
        pod = json.loads(json.dumps(good))
        mutate(pod)
        assert restricted_violations(pod), case


@pytest.mark.parametrize("features", [False, True], ids=["defaults", "all-features"])
def test_rendered_pods_pass_the_restricted_profile(features: bool, all_features_file: Path):
    objects = template("--values", str(all_features_file)) if features else template()
    specs = pod_specs(objects)
    assert specs, "no pod specs rendered"
    for where, spec in specs:
        assert restricted_violations(spec) == [], where
        for c in spec["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, where
            mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
            assert "/tmp" in mounts, where


def test_workers_network_policies_know_the_operator_pod(default_objects):
    """MM_OPERATOR_NAMESPACE and MM_OPERATOR_POD_LABELS name exactly the operator's pods, so a
    worker's NetworkPolicy admits its /v1/status reads (and nothing else of the release)."""
    settings = load_settings(env_of(default_objects))
    deployment = one(default_objects, "Deployment")
    assert settings.operator_namespace == deployment["metadata"]["namespace"]
    assert settings.operator_pod_labels == deployment["spec"]["selector"]["matchLabels"]
    assert set(settings.operator_pod_labels.items()) <= set(
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert (settings.logger_ca_bundle, settings.logger_ca_file) == (
        "model-monitor-logger-ca",
        "service-ca.crt",
    )
    values = ["--set", "operator.loggerCABundle.name=kserve-ca"]
    values += ["--set", "operator.loggerCABundle.key=ca.pem"]
    custom = load_settings(env_of(template(*values)))
    assert (custom.logger_ca_bundle, custom.logger_ca_file) == ("kserve-ca", "ca.pem")
