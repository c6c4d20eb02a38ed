"""The operator when things go wrong, on the real control plane: killed mid-reconcile, API
server restarted, throttled with real 429s (API Priority and Fairness), churn, token
rotation, and the optional NetworkPolicy."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
import yaml

from devcluster.processes import wait_until
from tests.cluster.test_operator import (
    apply,
    condition,
    monitor,
    reference_configmap,
    status,
    target_deployment,
)
from tests.support.operator import OPERATOR_NAMESPACE, OPERATOR_SA, get_json

pytestmark = pytest.mark.cluster
KINDS = ("deployment", "configmap", "service", "secret", "servicemonitor", "prometheusrule")


def all_ready(cluster, ns: str, names: list[str]) -> bool:
    items = get_json(cluster.kubeconfig, "modelmonitors", "-n", ns)["items"]
    ready = {
        m["metadata"]["name"]
        for m in items
        if condition(m.get("status") or {}, "Ready").get("status") == "True"
        and m.get("status", {}).get("observedGeneration") == m["metadata"]["generation"]
    }
    return set(names) <= ready


def children(cluster, ns: str) -> dict[str, list[str]]:
    out = {}
    for kind in KINDS:
        items = get_json(
            cluster.kubeconfig,
            kind,
            "-n",
            ns,
            "-l",
            "app.kubernetes.io/managed-by=model-monitor-operator",
        )["items"]
        out[kind] = sorted(i["metadata"]["name"] for i in items)
        for i in items:
            assert len(i["metadata"].get("ownerReferences", [])) == 1, (kind, i["metadata"]["name"])
    return out


def expected_children(names: list[str]) -> dict[str, list[str]]:
    return {
        "deployment": sorted(f"mm-{n}" for n in names),
        "configmap": sorted(f"mm-{n}-config" for n in names),
        "service": sorted(f"mm-{n}" for n in names),
        "secret": sorted(f"mm-{n}-token" for n in names),
        "servicemonitor": sorted(f"mm-{n}" for n in names),
        "prometheusrule": sorted(f"mm-{n}" for n in names),
    }


def test_killed_mid_reconcile_converges_without_duplicates(cluster, operator, namespace):
    names = [f"m{i:02d}" for i in range(20)]
    apply(cluster, namespace, reference_configmap(), target_deployment())
    apply(cluster, namespace, *[monitor(n) for n in names])
    time.sleep(0.5)  # some children made, most not
    operator.kill()
    operator.start()
    wait_until(
        lambda: all_ready(cluster, namespace, names),
        timeout=180,
        what="20 monitors Ready",
        interval=1,
    )
    assert children(cluster, namespace) == expected_children(names)


THROTTLE = [
    {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": "mm-test-throttle"},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 1,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Reject"},
            },
        },
    },
    {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": "mm-test-throttle"},
        "spec": {
            "priorityLevelConfiguration": {"name": "mm-test-throttle"},
            "matchingPrecedence": 100,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "serviceAccount": {
                                "name": OPERATOR_SA,
                                "namespace": OPERATOR_NAMESPACE,
                            },
                        }
                    ],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "namespaces": ["*"],
                            "clusterScope": True,
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    },
]


def _rejected(cluster) -> float:
    metrics = cluster.kubectl("get", "--raw", "/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("apiserver_flowcontrol_rejected_requests_total{")
        and 'priority_level="mm-test-throttle"' in line
    )


def test_throttled_with_429s_still_converges(cluster, operator, namespace):
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(THROTTLE))
    log_before = len(operator.log())
    retries_before = operator.metric_value("modelmonitor_operator_api_retries_total")
    try:
        names = [f"t{i:02d}" for i in range(30)]
        apply(cluster, namespace, reference_configmap(), target_deployment())
        apply(cluster, namespace, *[monitor(n) for n in names])
        wait_until(
            lambda: all_ready(cluster, namespace, names),
            timeout=300,
            what="30 monitors Ready under throttling",
            interval=2,
        )
        rejected = _rejected(cluster)
        retried = operator.metric_value("modelmonitor_operator_api_retries_total") - retries_before
    finally:
        cluster.kubectl(
            "delete", "flowschema,prioritylevelconfiguration", "mm-test-throttle", check=False
        )
    assert rejected > 0, "the API server never answered 429: the test did not throttle"
    assert children(cluster, namespace) == expected_children(names)
    new_log = operator.log()[log_before:]
    assert "Traceback" not in new_log
    print(f"\n429s from the API server: {rejected:.0f}; retried by our client: {retried:.0f}")


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_churn_leaves_nothing_behind(cluster, operator, namespace):
    apply(cluster, namespace, reference_configmap(), target_deployment())
    rss = []
    for round_ in range(3):
        names = [f"c{round_}-{i:02d}" for i in range(15)]
        apply(cluster, namespace, *[monitor(n) for n in names])
        wait_until(
            lambda n=names: all_ready(cluster, namespace, n),
            timeout=180,
            what="created",
            interval=1,
        )
        apply(cluster, namespace, *[monitor(n, window={"size": "30m"}) for n in names])
        wait_until(
            lambda n=names: all_ready(cluster, namespace, n),
            timeout=180,
            what="updated",
            interval=1,
        )
        cluster.kubectl("delete", "modelmonitors", "--all", "-n", namespace)
        wait_until(
            lambda: all(v == [] for v in children(cluster, namespace).values()),
            timeout=180,
            what="children garbage-collected",
            interval=1,
        )
        rss.append(_rss_kb(operator.process.pid))
    monitors = get_json(cluster.kubeconfig, "modelmonitors", "-n", namespace)["items"]
    assert monitors == []  # no finalizer holds a deleted monitor
    assert rss[-1] - rss[0] < 30_000, f"operator RSS grew {rss} kB over churn rounds"


def test_token_rotation_by_annotation(cluster, operator, namespace):
    apply(cluster, namespace, reference_configmap(), target_deployment(), monitor("fraud"))
    wait_until(lambda: all_ready(cluster, namespace, ["fraud"]), timeout=60, what="Ready")

    def token() -> str:
        data = get_json(cluster.kubeconfig, "secret", "mm-fraud-token", "-n", namespace)["data"][
            "token"
        ]
        return base64.b64decode(data).decode()

    first = token()
    assert len(first) >= 32
    cluster.kubectl(
        "annotate",
        "modelmonitor",
        "fraud",
        "-n",
        namespace,
        "modelmonitor.io/rotate-token=2026-11-24",
    )
    wait_until(lambda: token() != first, timeout=60, what="a new token")
    second = token()
    # Re-applying the same annotation does not rotate again.
    apply(cluster, namespace, monitor("fraud", window={"size": "2h"}))
    wait_until(
        lambda: status(cluster, namespace, "fraud").get("observedGeneration") == 2,
        timeout=60,
        what="gen 2",
    )
    assert token() == second
    visible = json.dumps(get_json(cluster.kubeconfig, "modelmonitor", "fraud", "-n", namespace))
    visible += cluster.kubectl("get", "events", "-n", namespace, "-o", "json") + operator.log()
    assert first not in visible and second not in visible


def test_network_policy_limits_ingress_to_model_and_prometheus(cluster, operator, namespace):
    np_spec = {
        "enabled": True,
        "prometheusNamespaceSelector": {"kubernetes.io/metadata.name": "monitoring"},
        "prometheusPodSelector": {"app.kubernetes.io/name": "prometheus"},
    }
    apply(
        cluster,
        namespace,
        reference_configmap(),
        target_deployment(),
        monitor("fraud", worker={"networkPolicy": np_spec}),
    )
    wait_until(lambda: all_ready(cluster, namespace, ["fraud"]), timeout=60, what="Ready")
    policy = get_json(cluster.kubeconfig, "networkpolicy", "mm-fraud", "-n", namespace)["spec"]
    assert policy["podSelector"]["matchLabels"]["modelmonitor.io/name"] == "fraud"
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert {"podSelector": {"matchLabels": {"app": "fraud-detector"}}} in rule["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    } in rule["from"]
    # Turned off again, the policy goes away.
    apply(cluster, namespace, monitor("fraud"))
    wait_until(
        lambda: (
            cluster.kubectl("get", "networkpolicy", "mm-fraud", "-n", namespace, check=False) == ""
        ),
        timeout=60,
        what="NetworkPolicy removed",
    )


def test_apiserver_restart_is_survived(cluster, operator, namespace):
    if cluster.control_plane is None:
        pytest.skip("restarts the suite's own API server: unset MM_TEST_KUBECONFIG")
    apply(cluster, namespace, reference_configmap(), target_deployment(), monitor("before"))
    wait_until(lambda: all_ready(cluster, namespace, ["before"]), timeout=60, what="Ready before")
    downtime = cluster.control_plane.restart_apiserver(down_for=3)
    assert operator.process.alive()
    # Watches resume: a new monitor and a spec change are both picked up.
    apply(cluster, namespace, monitor("after"), monitor("before", window={"size": "2h"}))
    wait_until(
        lambda: all_ready(cluster, namespace, ["before", "after"]),
        timeout=120,
        what="reconciled after the restart",
        interval=1,
    )
    assert status(cluster, namespace, "before")["observedGeneration"] == 2
    print(f"\nAPI server down for {downtime:.1f}s; operator reconciled afterwards")
