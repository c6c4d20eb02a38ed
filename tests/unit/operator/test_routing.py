"""routing: spec.alerts.route -> the monitor's AlertmanagerConfig (pure), and when it is made
or removed. What Alertmanager does with it is tested for real in tests/e2e/test_alert_routing.py
(the Prometheus Operator's own conversion, a real Alertmanager, a local receiver)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mm_api.spec import ModelMonitorSpec
from mm_operator.render import ClusterFacts, render_children
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor

SETTINGS = Settings()
TEAM = {"name": "team-fraud", "webhook": {"urlSecret": {"name": "fraud-hooks", "key": "team"}}}


def monitor(route=None):
    spec = {"model": {"task": "binary-classification", "targetRef": {"name": "fd"}}}
    if route is not None:
        spec["alerts"] = {"route": route}
    return parse_monitor(
        {
            "metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1", "generation": 1},
            "spec": spec,
        }
    )


def amc(children):
    (obj,) = [o for o in children.objects if o["kind"] == "AlertmanagerConfig"]
    return obj


def test_route_renders_an_owned_alertmanager_config():
    route = {
        "labels": {"alertmanagerConfig": "ml-teams"},
        "receivers": [
            TEAM,
            {
                "name": "oncall",
                "slack": {"apiURLSecret": {"name": "s", "key": "slack"}, "channel": "#fraud"},
                "pagerduty": {"routingKeySecret": {"name": "s", "key": "pd"}},
                "email": {
                    "to": "fraud@example.org",
                    "smarthost": "smtp.example.org:587",
                    "authUsername": "am",
                    "authPasswordSecret": {"name": "s", "key": "smtp"},
                },
            },
        ],
        "receiver": "oncall",
        "groupBy": ["alertname"],
        "groupWait": "10s",
        "groupInterval": "1m",
        "repeatInterval": "2h",
    }
    obj = amc(render_children(monitor(route), SETTINGS, ClusterFacts(alertmanager_config=True)))
    assert obj["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    assert obj["metadata"]["name"] == "mm-fraud" and obj["metadata"]["namespace"] == "ml"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert obj["metadata"]["labels"]["alertmanagerConfig"] == "ml-teams"
    assert obj["spec"]["route"] == {
        "receiver": "oncall",
        "groupBy": ["alertname"],
        "groupWait": "10s",
        "groupInterval": "1m",
        "repeatInterval": "2h",
        "matchers": [
            {"name": "namespace", "value": "ml", "matchType": "="},
            {"name": "modelmonitor", "value": "fraud", "matchType": "="},
        ],
    }
    team, oncall = obj["spec"]["receivers"]
    assert team == {
        "name": "team-fraud",
        "webhookConfigs": [
            {"urlSecret": {"name": "fraud-hooks", "key": "team"}, "sendResolved": True}
        ],
    }
    assert oncall["slackConfigs"] == [
        {"apiURL": {"name": "s", "key": "slack"}, "sendResolved": True, "channel": "#fraud"}
    ]
    assert oncall["pagerdutyConfigs"] == [
        {"routingKey": {"name": "s", "key": "pd"}, "sendResolved": True}
    ]
    assert oncall["emailConfigs"] == [
        {
            "to": "fraud@example.org",
            "sendResolved": False,
            "smarthost": "smtp.example.org:587",
            "authUsername": "am",
            "authPassword": {"name": "s", "key": "smtp"},
        }
    ]


def test_retrain_hook_gets_chosen_alerts_and_the_team_still_gets_them():
    route = {
        "receivers": [TEAM],
        "retrain": {
            "urlSecret": {"name": "fraud-hooks", "key": "retrain"},
            "alerts": ["ModelMonitorDataDrift", "ModelMonitorAccuracyLow"],
        },
    }
    obj = amc(render_children(monitor(route), SETTINGS, ClusterFacts(alertmanager_config=True)))
    retrain_route, rest = obj["spec"]["route"]["routes"]
    assert retrain_route == {
        "receiver": "retrain",
        "matchers": [
            {
                "name": "alertname",
                "value": "ModelMonitorDataDrift|ModelMonitorAccuracyLow",
                "matchType": "=~",
            }
        ],
        "groupBy": ["namespace", "modelmonitor"],
        "repeatInterval": "24h",
        "continue": True,
    }
    assert rest == {"receiver": "team-fraud"}
    assert obj["spec"]["receivers"][-1] == {
        "name": "retrain",
        "webhookConfigs": [
            {"urlSecret": {"name": "fraud-hooks", "key": "retrain"}, "sendResolved": False}
        ],
    }


def test_without_a_route_the_config_is_removed_and_without_the_api_never_made():
    facts = ClusterFacts(alertmanager_config=True)
    children = render_children(monitor(), SETTINGS, facts)
    assert ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "mm-fraud") in children.absent
    children = render_children(monitor({"receivers": [TEAM]}), SETTINGS, ClusterFacts())
    assert all(o["kind"] != "AlertmanagerConfig" for o in children.objects)
    assert all(kind != "AlertmanagerConfig" for _, kind, _ in children.absent)


def test_routing_never_reaches_the_worker_config():
    """A routing change does not change the worker's ConfigMap, so no worker restart."""
    facts = ClusterFacts(alertmanager_config=True)
    plain = render_children(monitor(), SETTINGS, facts).objects[0]
    routed = render_children(monitor({"receivers": [TEAM]}), SETTINGS, facts).objects[0]
    assert plain["kind"] == "ConfigMap" and plain["data"] == routed["data"]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"receivers": []}, "receivers"),
        ({"receivers": [{"name": "team"}]}, "set at least one of webhook, slack, email or pagerduty"),
        ({"receivers": [TEAM], "receiver": "nobody"}, "receiver: 'nobody' is not one of receivers"),
        ({"receivers": [TEAM, TEAM]}, "names must be unique"),
        ({"receivers": [{**TEAM, "name": "retrain"}]}, "reserved for the retrain hook"),
        ({"receivers": [TEAM], "retrain": {"urlSecret": {"name": "s", "key": "k"}, "alerts": ["DataDrift"]}},
         "alerts.route.retrain.alerts.0"),
        ({"receivers": [{"name": "t", "webhook": {"urlSecret": {"name": "s"}}}]}, "key"),
    ],
)  # fmt: skip
def test_bad_routes_are_refused_naming_the_field(route, message):
    with pytest.raises(ValidationError) as e:
        ModelMonitorSpec.model_validate(
            {
                "model": {"task": "regression", "targetRef": {"name": "x"}},
                "alerts": {"route": route},
            }
        )
    assert message in str(e.value)
