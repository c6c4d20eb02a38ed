"""Routing to the owning team and silences, for real: the operator (under the chart's RBAC)
writes the monitor's AlertmanagerConfig on the local control plane; the Prometheus Operator's
own conversion (pkg/alertmanager, built from its module: devcluster/monitoring.py) turns it,
with the Secrets it references, into alertmanager.yaml; a real Alertmanager loads that and
delivers the monitor's alerts to a local HTTP receiver (the team's webhook) and the chosen
ones to the retrain hook too. ``kubectl annotate mm ... modelmonitor.io/silence=2h`` makes the
operator create the silence in that Alertmanager; removing the annotation expires it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devcluster.controlplane import PROMETHEUS_OPERATOR_CRDS
from devcluster.monitoring import generate_alertmanager_config
from devcluster.processes import wait_until
from devcluster.prometheus import Alertmanager, http_json
from devcluster.tools import KubectlError
from devcluster.webhook import WebhookReceiver
from tests.support.operator import get_json

pytestmark = pytest.mark.e2e
NAME = "fraud"
#: The Alertmanager's own config Secret, before the Prometheus Operator adds the
#: AlertmanagerConfig routes in front of its routes.
BASE = {
    "route": {
        "receiver": "null",
        "group_by": ["alertname"],
        "group_wait": "1s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    },
    "receivers": [{"name": "null"}],
}


@pytest.fixture(scope="module")
def alertmanagerconfig_crd(cluster):
    """The official AlertmanagerConfig CRD (the control plane installs it at start; applied
    again for a cluster started before it was vendored, MM_TEST_KUBECONFIG)."""
    crd = PROMETHEUS_OPERATOR_CRDS / "monitoring.coreos.com_alertmanagerconfigs.yaml"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/alertmanagerconfigs.monitoring.coreos.com",
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory, operator, alertmanagerconfig_crd):
    """A real Alertmanager with the base config, a local receiver, and the session's operator
    pointed at that Alertmanager (it creates the silences there)."""
    work = tmp_path_factory.mktemp("routing")
    am = Alertmanager(work / "am", config=BASE).start()
    receiver = WebhookReceiver().start()
    operator.reconfigure(MM_ALERTMANAGER_URL=am.url)
    try:
        yield am, receiver
    finally:
        operator.reconfigure(MM_ALERTMANAGER_URL=None)
        receiver.stop()
        am.stop()


def monitor_manifest() -> dict:
    return {
        "apiVersion": "modelmonitor.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": NAME},
        "spec": {
            "model": {
                "name": "fraud-detector",
                "task": "binary-classification",
                "targetRef": {"name": "fraud-detector"},
            },
            "alerts": {
                "labels": {"team": "fraud"},
                "route": {
                    "labels": {"alertmanagerConfig": "ml-teams"},
                    "receivers": [
                        {
                            "name": "team-fraud",
                            "webhook": {"urlSecret": {"name": "fraud-hooks", "key": "team"}},
                        }
                    ],
                    "groupWait": "1s",
                    "groupInterval": "1s",
                    "repeatInterval": "1h",
                    "retrain": {
                        "urlSecret": {"name": "fraud-hooks", "key": "retrain"},
                        "alerts": ["ModelMonitorDataDrift"],
                    },
                },
            },
        },
    }


def fire(am: Alertmanager, namespace: str, alertname: str, monitor: str = NAME) -> None:
    """An alert as Prometheus sends it for the monitor's rules (their labels)."""
    labels = {
        "alertname": alertname,
        "namespace": namespace,
        "modelmonitor": monitor,
        "model": "fraud-detector",
        "severity": "warning",
        "team": "fraud",
    }
    http_json(
        f"{am.url}/api/v2/alerts",
        data=[{"labels": labels, "annotations": {"summary": f"{alertname} of {monitor}"}}],
        method="POST",
    )


def names(bodies: list[dict]) -> set[tuple[str, str]]:
    return {
        (a["labels"]["alertname"], a["labels"]["modelmonitor"]) for b in bodies for a in b["alerts"]
    }


def test_route_reaches_the_team_and_the_retrain_hook_and_silences_work(
    cluster, stack, namespace, tmp_path: Path
):
    am, receiver = stack
    cluster.kubectl(
        "create", "secret", "generic", "fraud-hooks", "-n", namespace,
        f"--from-literal=team={receiver.url}/team",
        f"--from-literal=retrain={receiver.url}/retrain",
    )  # fmt: skip
    cluster.kubectl(
        "create", "deployment", "fraud-detector", "--image=example.invalid/fraud:1", "-n", namespace
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(monitor_manifest()))

    # 1. The operator writes the AlertmanagerConfig, owned by the monitor.
    def amc() -> dict | None:
        out = json.loads(
            cluster.kubectl("get", "alertmanagerconfigs", "-n", namespace, "-o", "json")
        )["items"]
        return out[0] if out else None

    wait_until(lambda: amc() is not None, timeout=60, what="AlertmanagerConfig mm-fraud")
    obj = amc()
    assert obj is not None and obj["metadata"]["name"] == f"mm-{NAME}"
    mm = get_json(cluster.kubeconfig, "modelmonitor", NAME, "-n", namespace)
    assert obj["metadata"]["ownerReferences"][0]["uid"] == mm["metadata"]["uid"]
    assert f"AlertmanagerConfig/mm-{NAME}" in (mm.get("status") or {}).get("children", [])

    # 2. Alertmanager's config as the Prometheus Operator generates it from that object.
    config = generate_alertmanager_config(
        cluster.kubeconfig, [namespace], BASE, tmp_path / "amconfig",
        selector="alertmanagerConfig=ml-teams",
    )  # fmt: skip
    (top,) = [r for r in config["route"]["routes"] if r["receiver"].endswith("/team-fraud")]
    assert f'namespace="{namespace}"' in top["matchers"]  # the operator's OnNamespace enforcer
    assert f'modelmonitor="{NAME}"' in top["matchers"]
    team_receiver = f"{namespace}/mm-{NAME}/team-fraud"
    by_name = {r["name"]: r for r in config["receivers"]}
    # The Secret was read by the conversion, not by us: the URL is inlined.
    assert by_name[team_receiver]["webhook_configs"][0]["url"] == f"{receiver.url}/team"
    am.reload(config)

    # 3. This monitor's alerts reach the team; DataDrift reaches the retrain hook as well;
    #    another monitor's alerts reach neither.
    fire(am, namespace, "ModelMonitorDataDrift")
    fire(am, namespace, "ModelMonitorAccuracyLow")
    fire(am, namespace, "ModelMonitorDataDrift", monitor="churn")
    wanted = {("ModelMonitorDataDrift", NAME), ("ModelMonitorAccuracyLow", NAME)}
    wait_until(
        lambda: names(receiver.at("/team")) >= wanted and receiver.at("/retrain"),
        timeout=30,
        what="notifications at the team's webhook and the retrain hook",
    )
    assert names(receiver.at("/team")) == wanted
    assert names(receiver.at("/retrain")) == {("ModelMonitorDataDrift", NAME)}
    (body, *_) = receiver.at("/retrain")
    # The documented body (docs/operator.md#retrain-hook): Alertmanager's webhook format.
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["receiver"] == f"{namespace}/mm-{NAME}/retrain"
    assert body["groupLabels"] == {"namespace": namespace, "modelmonitor": NAME}
    assert body["commonLabels"]["model"] == "fraud-detector"
    assert body["alerts"][0]["labels"]["alertname"] == "ModelMonitorDataDrift"

    # 4. Silence on request: the operator creates it in this Alertmanager.
    cluster.kubectl(
        "annotate", "mm", NAME, "-n", namespace, "modelmonitor.io/silence=2h",
        "modelmonitor.io/silence-comment=retraining",
    )  # fmt: skip

    def our_silences() -> list[dict]:
        return [
            s
            for s in http_json(f"{am.url}/api/v2/silences")
            if s["status"]["state"] == "active" and s["createdBy"] == "model-monitor-operator"
        ]

    wait_until(lambda: our_silences(), timeout=60, what="the silence in Alertmanager")
    (silence,) = our_silences()
    assert {(m["name"], m["value"]) for m in silence["matchers"]} == {
        ("namespace", namespace),
        ("modelmonitor", NAME),
    }
    assert silence["comment"].endswith("retraining")
    fire(am, namespace, "ModelMonitorOutliersHigh")
    (outliers,) = am.alerts(alertname="ModelMonitorOutliersHigh", namespace=namespace)
    assert outliers["status"]["state"] == "suppressed"
    assert outliers["status"]["silencedBy"] == [silence["id"]]
    events = json.loads(
        cluster.kubectl(
            "get", "events", "-n", namespace,
            "--field-selector", f"involvedObject.name={NAME}", "-o", "json",
        )
    )["items"]  # fmt: skip
    assert any(e["reason"] == "Silenced" and silence["id"] in e["message"] for e in events)

    # 5. Removing the annotation expires it.
    cluster.kubectl("annotate", "mm", NAME, "-n", namespace, "modelmonitor.io/silence-")
    wait_until(lambda: not our_silences(), timeout=60, what="the silence expired")


TEAM = {"name": "team-fraud", "webhook": {"urlSecret": {"name": "fraud-hooks", "key": "team"}}}


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"receivers": [TEAM], "receiver": "nobody"}, "receiver must name one of receivers"),
        ({"receivers": [{"name": "team"}]}, "set at least one of webhook, slack, email or pagerduty"),
        ({"receivers": [{**TEAM, "name": "retrain"}]}, "reserved for the retrain hook"),
        ({"receivers": [TEAM], "retrain": {"urlSecret": {"name": "s", "key": "k"}, "alerts": ["DataDrift"]}},
         "spec.alerts.route.retrain.alerts[0]"),
        ({"receivers": [TEAM], "groupWait": "soon"}, "spec.alerts.route.groupWait"),
    ],
)  # fmt: skip
def test_api_server_refuses_bad_routes_naming_the_field(
    cluster, operator, namespace, route, message
):
    """The CRD's schema and CEL rules (generated from mm_api/alerting.py) refuse at
    ``kubectl apply`` what the Python validators refuse (tests/unit/operator/test_routing.py)."""
    doc = monitor_manifest()
    doc["spec"]["alerts"]["route"] = route
    cmd = ["apply", "--dry-run=server", "-n", namespace, "-f", "-"]
    with pytest.raises(KubectlError) as e:
        cluster.kubectl(*cmd, input=yaml.safe_dump(doc))
    assert message in e.value.stderr
