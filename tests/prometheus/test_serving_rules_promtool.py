"""Serving-health rules, each unit-tested with ``promtool test rules``: the series the
exporters really publish (names and labels as in mm_api/exporters.py) in, the alert with its
labels and readable annotations out. Every test also feeds the same series for the pods of
another Deployment (``fd-v2``) and of a Job (``fd-migrate``, whose pod a name pattern for
``fd`` would match) and requires them to stay silent: the pod set comes from
kube-state-metrics' ownership join, not from a name pattern."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mm_api.alerts import TARGET_PODS
from mm_operator.rules import render_rule_groups
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor
from tests.prometheus.test_rules_promtool import promtool

pytestmark = pytest.mark.prometheus
SETTINGS = Settings(docs_url="https://docs.example.org/alerts")
NS = "ml"
POD, OTHER, JOB_POD = "fd-7c9d8f-abcde", "fd-v2-5f6b7c-xyz12", "fd-migrate-x7k2p"
RULE_LABELS = {"namespace": NS, "modelmonitor": "fraud", "model": "fraud-detector", "team": "fraud"}
DASHBOARD = "https://grafana.example.org/d/model-monitor"


def monitor(kind: str = "Deployment", name: str = "fd", **serving) -> object:
    body = {
        "metadata": {"name": "fraud", "namespace": NS, "uid": "u", "generation": 1},
        "spec": {
            "model": {
                "name": "fraud-detector",
                "task": "binary-classification",
                "targetRef": {"kind": kind, "name": name},
            },
            "alerts": {
                "for": "5m",
                "labels": {"team": "fraud"},
                "runbookURL": "https://runbooks.example.org/mm",
                "dashboardURL": DASHBOARD,
                "servingHealth": serving,
            },
        },
    }
    return parse_monitor(body)


def s(name: str, values: str, **labels: str) -> dict:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def ownership(n: int = 200) -> list[dict]:
    """kube-state-metrics' view: POD belongs to Deployment fd, OTHER to Deployment fd-v2,
    JOB_POD to Job fd-migrate."""
    ksm = {"job": "kube-state-metrics", "instance": "10.0.0.9:8080"}
    out = []
    for pod, rs, deploy in ((POD, "fd-7c9d8f", "fd"), (OTHER, "fd-v2-5f6b7c", "fd-v2")):
        out.append(
            s("kube_pod_owner", f"1x{n}", namespace=NS, pod=pod, uid=f"uid-{pod}",
              owner_kind="ReplicaSet", owner_name=rs, owner_is_controller="true", **ksm)
        )  # fmt: skip
        out.append(
            s("kube_replicaset_owner", f"1x{n}", namespace=NS, replicaset=rs,
              owner_kind="Deployment", owner_name=deploy, owner_is_controller="true", **ksm)
        )  # fmt: skip
    out.append(
        s("kube_pod_owner", f"1x{n}", namespace=NS, pod=JOB_POD, uid="uid-job", owner_kind="Job",
          owner_name="fd-migrate", owner_is_controller="true", **ksm)
    )  # fmt: skip
    return out


def both_pods(name: str, values: str, **labels: str) -> list[dict]:
    return [s(name, values, namespace=NS, pod=p, **labels) for p in (POD, OTHER, JOB_POD)]


def expected(alert: str, labels: dict, summary: str, description: str) -> dict:
    panel = {
        "ModelMonitorServingCpuThrottled": 36,
        "ModelMonitorServingCpuNearLimit": 37,
        "ModelMonitorServingMemoryNearLimit": 38,
        "ModelMonitorServingOOMKilled": 39,
        "ModelMonitorServingRestarting": 39,
        "ModelMonitorServingReplicasUnavailable": 40,
        "ModelMonitorServingGpuSaturated": 41,
        "ModelMonitorServingGpuMemoryNearLimit": 42,
        "ModelMonitorServingErrorsHigh": 44,
        "ModelMonitorServingLatencyHigh": 45,
    }[alert]
    return {
        "exp_labels": {**RULE_LABELS, "severity": "warning", **labels},
        "exp_annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"https://runbooks.example.org/mm#{alert.lower()}",
            "dashboard_url": (
                f"{DASHBOARD}?var-namespace={NS}&var-modelmonitor=fraud&viewPanel={panel}"
            ),
        },
    }


def run(tmp_path: Path, m, tests: list[dict], *, target_gpu: bool = False) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        yaml.safe_dump({"groups": render_rule_groups(m, SETTINGS, target_gpu=target_gpu)})
    )
    check = subprocess.run(
        [promtool(), "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    spec = tmp_path / "tests.yml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests})
    )
    r = subprocess.run(
        [promtool(), "test", "rules", str(spec)], capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout + r.stderr


def case(series: list[dict], alert: str, eval_time: str, alerts: list[dict]) -> dict:
    return {
        "interval": "1m",
        "input_series": ownership() + series,
        "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": alerts}],
    }


CONTAINER = {"container": "model"}


def test_cpu_throttled(tmp_path):
    series = both_pods("container_cpu_cfs_periods_total", "0+600x30", **CONTAINER)
    series += both_pods("container_cpu_cfs_throttled_periods_total", "0+300x30", **CONTAINER)
    # The pod's own cgroup (container="") is not a container: never alerted on.
    series.append(s("container_cpu_cfs_periods_total", "0+600x30", namespace=NS, pod=POD, container=""))  # fmt: skip
    series.append(s("container_cpu_cfs_throttled_periods_total", "0+600x30", namespace=NS, pod=POD, container=""))  # fmt: skip
    name = "ModelMonitorServingCpuThrottled"
    alert = expected(
        name, {"pod": POD, **CONTAINER}, "Model fraud-detector is CPU-throttled",
        f"Container model of pod {POD} of model fraud-detector was throttled in 50% of its CPU "
        "periods over 5m; the threshold is 25%. Raise its CPU limit or scale out.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "4m", []), case(series, name, "15m", [alert])])


def test_cpu_near_limit(tmp_path):
    series = both_pods("container_cpu_usage_seconds_total", "0+57x30", cpu="total", **CONTAINER)
    for pod in (POD, OTHER, JOB_POD):
        series.append(
            s("kube_pod_container_resource_limits", "1x30", namespace=NS, pod=pod, uid="u",
              node="n1", resource="cpu", unit="core", **CONTAINER)
        )  # fmt: skip
    name = "ModelMonitorServingCpuNearLimit"
    alert = expected(
        name, {"pod": POD, **CONTAINER}, "Model fraud-detector uses its CPU limit",
        f"Container model of pod {POD} of model fraud-detector uses 95% of its CPU limit over "
        "5m; the threshold is 90%.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "15m", [alert])])


def test_cpu_below_the_threshold_is_silent(tmp_path):
    series = both_pods("container_cpu_usage_seconds_total", "0+30x30", cpu="total", **CONTAINER)
    series.append(
        s("kube_pod_container_resource_limits", "1x30", namespace=NS, pod=POD, uid="u",
          node="n1", resource="cpu", unit="core", **CONTAINER)
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, "ModelMonitorServingCpuNearLimit", "15m", [])])


def test_memory_near_limit(tmp_path):
    series = both_pods("container_memory_working_set_bytes", "950000000x30", **CONTAINER)
    for pod in (POD, OTHER, JOB_POD):
        series.append(
            s("kube_pod_container_resource_limits", "1000000000x30", namespace=NS, pod=pod,
              uid="u", node="n1", resource="memory", unit="byte", **CONTAINER)
        )  # fmt: skip
    name = "ModelMonitorServingMemoryNearLimit"
    alert = expected(
        name, {"pod": POD, **CONTAINER}, "Model fraud-detector is near its memory limit",
        f"Container model of pod {POD} of model fraud-detector has a working set of 95% of its "
        "memory limit; the threshold is 90%. At the limit the kernel OOM-kills it.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "15m", [alert])])


def test_oom_killed_fires_at_once_and_clears_after_the_window(tmp_path):
    series = both_pods("kube_pod_container_status_restarts_total", "0 0 0 1x90", uid="u", **CONTAINER)  # fmt: skip
    series += both_pods(
        "kube_pod_container_status_last_terminated_reason", "_ _ _ 1x90", uid="u",
        reason="OOMKilled", **CONTAINER,
    )  # fmt: skip
    name = "ModelMonitorServingOOMKilled"
    alert = expected(
        name, {"pod": POD, **CONTAINER}, "Model fraud-detector was OOM-killed",
        f"Container model of pod {POD} of model fraud-detector was killed for running out of "
        "memory (OOMKilled) and restarted within the last 1h.",
    )  # fmt: skip
    run(
        tmp_path,
        monitor(),
        [
            case(series, name, "2m", []),
            case(series, name, "4m", [alert]),  # no for: the kill is the event
            case(series, name, "80m", []),  # restarted over an hour ago
        ],
    )


def test_restarting(tmp_path):
    series = both_pods("kube_pod_container_status_restarts_total", "0+1x120", uid="u", **CONTAINER)
    name = "ModelMonitorServingRestarting"
    alert = expected(
        name, {"pod": POD, **CONTAINER}, "Model fraud-detector keeps restarting",
        f"Container model of pod {POD} of model fraud-detector restarted 60 times in 1h; the "
        "threshold is 3.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "90m", [alert])])


def test_replicas_unavailable(tmp_path):
    series = [
        s("kube_deployment_status_replicas_unavailable", "0 0 2x10", namespace=NS, deployment="fd"),
        s("kube_deployment_status_replicas_unavailable", "3x12", namespace=NS, deployment="fd-v2"),
    ]
    name = "ModelMonitorServingReplicasUnavailable"
    alert = expected(
        name, {"deployment": "fd"}, "Replicas of model fraud-detector are unavailable",
        "2 replica(s) of Deployment fd serving model fraud-detector (ml) are unavailable.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "5m", []), case(series, name, "8m", [alert])])


def test_statefulset_replicas_unavailable(tmp_path):
    sel = {"namespace": NS, "statefulset": "fd"}
    series = [
        s("kube_statefulset_replicas", "3x12", **sel),
        s("kube_statefulset_status_replicas_ready", "3 3 1x10", **sel),
    ]
    name = "ModelMonitorServingReplicasUnavailable"
    alert = expected(
        name, {"statefulset": "fd"}, "Replicas of model fraud-detector are unavailable",
        "2 replica(s) of StatefulSet fd serving model fraud-detector (ml) are unavailable.",
    )  # fmt: skip
    run(tmp_path, monitor("StatefulSet"), [case(series, name, "8m", [alert])])


def dcgm(name: str, values: str, gpu: str, pod: str, honored: bool) -> dict:
    """A DCGM exporter series for a GPU used by ``pod``; ``honored``: scraped with
    honorLabels: true (the exporter's namespace/pod kept), else renamed exported_*."""
    base = {"gpu": gpu, "UUID": f"GPU-{gpu}", "modelName": "NVIDIA H200", "Hostname": "n1",
            "device": f"nvidia{gpu}"}  # fmt: skip
    if honored:
        return s(name, values, namespace=NS, pod=pod, container="model", **base)
    return s(
        name, values, namespace="gpu-operator", pod="nvidia-dcgm-exporter-q2w3e",
        container="nvidia-dcgm-exporter", exported_namespace=NS, exported_pod=pod,
        exported_container="model", **base,
    )  # fmt: skip


def test_gpu_saturated_with_either_label_scheme(tmp_path):
    series = [
        dcgm("DCGM_FI_DEV_GPU_UTIL", "98x20", "0", POD, honored=False),
        dcgm("DCGM_FI_DEV_GPU_UTIL", "97x20", "1", POD, honored=True),
        dcgm("DCGM_FI_DEV_GPU_UTIL", "99x20", "2", OTHER, honored=False),
        dcgm("DCGM_FI_DEV_GPU_UTIL", "40x20", "3", POD, honored=True),  # below 95%
    ]
    name = "ModelMonitorServingGpuSaturated"
    alerts = [
        expected(
            name,
            {"pod": POD, "gpu": gpu},
            "A GPU of model fraud-detector is saturated",
            f"GPU {gpu} of pod {POD} (model fraud-detector) is {value}% busy; the threshold is 95%.",
        )
        for gpu, value in (("0", 98), ("1", 97))
    ]
    run(tmp_path, monitor(), [case(series, name, "10m", alerts)], target_gpu=True)


def test_gpu_memory_near_limit(tmp_path):
    series = [
        dcgm("DCGM_FI_DEV_FB_USED", "76000x20", "0", POD, honored=False),
        dcgm("DCGM_FI_DEV_FB_FREE", "4000x20", "0", POD, honored=False),
        dcgm("DCGM_FI_DEV_FB_USED", "79000x20", "1", OTHER, honored=False),
        dcgm("DCGM_FI_DEV_FB_FREE", "1000x20", "1", OTHER, honored=False),
    ]
    name = "ModelMonitorServingGpuMemoryNearLimit"
    alert = expected(
        name, {"pod": POD, "gpu": "0"}, "GPU memory of model fraud-detector is nearly full",
        f"GPU 0 of pod {POD} (model fraud-detector) has 95% of its framebuffer in use; the "
        "threshold is 90%.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "10m", [alert])], target_gpu=True)


def mlserver_buckets(pod: str, per_minute: dict[str, int], path: str) -> list[dict]:
    labels = {"app_name": "mlserver", "method": "POST", "path": path, "status_code": "200"}
    return [
        s("rest_server_request_duration_seconds_bucket", f"0+{n}x30", namespace=NS, pod=pod,
          le=le, **labels)
        for le, n in per_minute.items()
    ]  # fmt: skip


SLOW = {"0.5": 0, "1.0": 10, "2.5": 100, "+Inf": 100}  # 90% of requests take 1-2.5 s
FAST = {"0.5": 100, "1.0": 100, "2.5": 100, "+Inf": 100}


def test_mlserver_latency(tmp_path):
    series = mlserver_buckets(POD, SLOW, "/v2/models/{model_name}/infer")
    # Slow health checks and another Deployment's slow pod do not count.
    series += mlserver_buckets(POD, {"0.5": 0, "+Inf": 100}, "/v2/health/ready")
    series += mlserver_buckets(OTHER, {"0.5": 0, "+Inf": 500}, "/v2/models/{model_name}/infer")
    name = "ModelMonitorServingLatencyHigh"
    # p95: 1 s + 1.5 s * (95 - 10) / (100 - 10) = 2.4167 s
    alert = expected(
        name, {}, "Model fraud-detector answers slowly",
        "The 95% quantile of inference latency of model fraud-detector (ml/fraud) is 2.417s "
        "over 5m; the threshold is 1s.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "15m", [alert])])


def test_fast_mlserver_is_silent(tmp_path):
    series = mlserver_buckets(POD, FAST, "/v2/models/{model_name}/infer")
    run(tmp_path, monitor(), [case(series, "ModelMonitorServingLatencyHigh", "15m", [])])


def test_kserve_predict_latency(tmp_path):
    series = [
        s("request_predict_seconds_bucket", f"0+{n}x30", namespace=NS, pod=POD,
          model_name="fraud-detector", le=le)
        for le, n in SLOW.items()
    ]  # fmt: skip
    name = "ModelMonitorServingLatencyHigh"
    alert = expected(
        name, {}, "Model fraud-detector answers slowly",
        "The 95% quantile of inference latency of model fraud-detector (ml/fraud) is 2.417s "
        "over 5m; the threshold is 1s.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "15m", [alert])])


def test_mlserver_errors(tmp_path):
    labels = {"model": "fraud-detector", "version": "v1"}
    series = both_pods("model_infer_request_success_total", "0+90x30", **labels)
    series.append(s("model_infer_request_failure_total", "0+10x30", namespace=NS, pod=POD, **labels))  # fmt: skip
    series.append(s("model_infer_request_failure_total", "0+90x30", namespace=NS, pod=OTHER, **labels))  # fmt: skip
    name = "ModelMonitorServingErrorsHigh"
    alert = expected(
        name, {}, "Model fraud-detector fails inference requests",
        "10% of the inference requests to model fraud-detector (ml/fraud) failed over 5m; the "
        "threshold is 5%.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "4m", []), case(series, name, "15m", [alert])])


def test_a_model_that_only_fails_is_alerted(tmp_path):
    """No success series at all (MLServer creates a counter child on first use)."""
    labels = {"model": "fraud-detector", "version": "v1"}
    series = [s("model_infer_request_failure_total", "0+5x30", namespace=NS, pod=POD, **labels)]
    name = "ModelMonitorServingErrorsHigh"
    alert = expected(
        name, {}, "Model fraud-detector fails inference requests",
        "100% of the inference requests to model fraud-detector (ml/fraud) failed over 5m; the "
        "threshold is 5%.",
    )  # fmt: skip
    run(tmp_path, monitor(), [case(series, name, "15m", [alert])])


def pod_set_test(m, series: list[dict], pods: list[str]) -> dict:
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": f'{TARGET_PODS}{{namespace="{NS}", modelmonitor="fraud"}}',
                "eval_time": "2m",
                "exp_samples": [
                    {"labels": f'{TARGET_PODS}{{namespace="{NS}", pod="{p}", modelmonitor="fraud", '
                               'model="fraud-detector"}', "value": 1}
                    for p in pods
                ],
            }
        ],
    }  # fmt: skip


def test_target_pods_of_each_kind(tmp_path):
    ksm = {"job": "kube-state-metrics"}
    statefulset = [
        s("kube_pod_owner", "1x5", namespace=NS, pod="fd-0", uid="a", owner_kind="StatefulSet",
          owner_name="fd", owner_is_controller="true", **ksm),
        s("kube_pod_owner", "1x5", namespace=NS, pod="fd-v2-0", uid="b", owner_kind="StatefulSet",
          owner_name="fd-v2", owner_is_controller="true", **ksm),
    ]  # fmt: skip
    for sub in ("sts", "isvc", "deploy"):
        (tmp_path / sub).mkdir()
    sts = monitor("StatefulSet")
    run(tmp_path / "sts", sts, [pod_set_test(sts, statefulset, ["fd-0"])])
    isvc = []
    for pod, rs, deploy in (
        ("sk-predictor-6d5f-aaaaa", "sk-predictor-6d5f", "sk-predictor"),  # raw deployment
        ("sk-predictor-00001-deployment-7c-bbbbb", "sk-predictor-00001-deployment-7c",
         "sk-predictor-00001-deployment"),  # serverless (Knative revision)
        ("sk-transformer-5b-ccccc", "sk-transformer-5b", "sk-transformer"),  # not the model
    ):  # fmt: skip
        isvc.append(s("kube_pod_owner", "1x5", namespace=NS, pod=pod, uid=pod,
                      owner_kind="ReplicaSet", owner_name=rs, owner_is_controller="true", **ksm))  # fmt: skip
        isvc.append(s("kube_replicaset_owner", "1x5", namespace=NS, replicaset=rs,
                      owner_kind="Deployment", owner_name=deploy, owner_is_controller="true", **ksm))  # fmt: skip
    m = monitor("InferenceService", "sk")
    run(tmp_path / "isvc", m, [pod_set_test(m, isvc, ["sk-predictor-00001-deployment-7c-bbbbb",
                                                      "sk-predictor-6d5f-aaaaa"])])  # fmt: skip
    run(tmp_path / "deploy", monitor(), [pod_set_test(monitor(), ownership(5), [POD])])
