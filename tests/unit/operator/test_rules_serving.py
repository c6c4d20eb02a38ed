"""The serving-health group of the PrometheusRule: present by default, gone when opted out,
GPU rules only when the target's pods request GPUs (or forced), and the target's pods named
by kind. The rules' behaviour on series is tested with promtool
(tests/prometheus/test_serving_rules_promtool.py)."""

from __future__ import annotations

import pytest

from mm_api.alerts import SERVING_GPU_MEMORY_NEAR_LIMIT, SERVING_GPU_SATURATED, TARGET_PODS
from mm_operator.render import ClusterFacts, render_children
from mm_operator.rules import render_rule_groups
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor

GPU_ALERTS = {SERVING_GPU_SATURATED, SERVING_GPU_MEMORY_NEAR_LIMIT}


def monitor(kind="Deployment", **alerts):
    spec = {
        "model": {"task": "regression", "targetRef": {"kind": kind, "name": "fd"}},
        "alerts": alerts,
    }
    return parse_monitor({"metadata": {"name": "m", "namespace": "ml"}, "spec": spec})


def serving(groups):
    return [g for g in groups if g["name"] == "modelmonitor.ml.m.serving"]


def alert_names(groups) -> set[str]:
    return {r["alert"] for g in serving(groups) for r in g["rules"] if "alert" in r}


def test_serving_group_by_default_with_the_pod_set_first():
    (group,) = serving(render_rule_groups(monitor(), Settings()))
    assert group["rules"][0]["record"] == TARGET_PODS
    assert group["rules"][0]["labels"] == {"modelmonitor": "m", "model": "m"}
    assert len(alert_names([group])) == 8  # no GPU rules without GPUs


@pytest.mark.parametrize("off", [{"servingHealth": {"enabled": False}}, {"enabled": False}])
def test_opt_out(off):
    assert serving(render_rule_groups(monitor(**off), Settings())) == []


@pytest.mark.parametrize(
    ("gpu", "requested", "expected"),
    [
        ("auto", False, False),
        ("auto", True, True),
        ("enabled", False, True),
        ("disabled", True, False),
    ],
)
def test_gpu_rules_follow_the_target(gpu, requested, expected):
    groups = render_rule_groups(
        monitor(servingHealth={"gpu": gpu}), Settings(), target_gpu=requested
    )
    assert (alert_names(groups) >= GPU_ALERTS) is expected
    assert bool(GPU_ALERTS & alert_names(groups)) is expected


def test_the_rule_follows_the_observed_gpu_request():
    facts = ClusterFacts(target_gpu=True)
    (rule,) = [
        o
        for o in render_children(monitor(), Settings(), facts).objects
        if o["kind"] == "PrometheusRule"
    ]
    assert alert_names(rule["spec"]["groups"]) >= GPU_ALERTS


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("Deployment", ['owner_kind="Deployment", owner_name="fd"', 'kube_pod_owner{namespace="ml", owner_kind="ReplicaSet"}']),
        ("StatefulSet", ['kube_pod_owner{namespace="ml", owner_kind="StatefulSet", owner_name="fd"}']),
        ("InferenceService", ['owner_name=~"fd-predictor|fd-predictor-[0-9]+-deployment"']),
    ],
)  # fmt: skip
def test_target_pods_by_kind(kind, needles):
    (group,) = serving(render_rule_groups(monitor(kind), Settings()))
    expr = group["rules"][0]["expr"]
    for needle in needles:
        assert needle in expr
