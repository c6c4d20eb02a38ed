"""The AlertmanagerConfig of a monitor with ``spec.alerts.route`` (pure): the Prometheus
Operator merges it into Alertmanager's configuration, so this monitor's alerts reach the team
that owns the model, and chosen ones a retraining webhook too.

Shape (docs/operator.md#routing):

- the top route matches this monitor's alerts, ``namespace`` and ``modelmonitor`` (the
  Prometheus Operator adds the namespace matcher itself as well, under its default
  ``OnNamespace`` strategy), with the spec's grouping and intervals;
- with ``retrain``: a first child route for the chosen alert names to the ``retrain``
  receiver, ``continue: true``, grouped per monitor; a second child sends everything on to the
  team's receiver, so the team still sees those alerts;
- receivers by reference to Secrets, which the Prometheus Operator reads; this operator never
  does (its role cannot read Secrets)."""

from __future__ import annotations

from typing import Any

from mm_api.alerting import RETRAIN_RECEIVER, AlertRouteSpec, Receiver, SecretKeyRef

from .spec import Monitor

API_VERSION = "monitoring.coreos.com/v1alpha1"
KIND = "AlertmanagerConfig"


def _secret(ref: SecretKeyRef) -> dict[str, str]:
    return {"name": ref.name, "key": ref.key}


def _equal(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value, "matchType": "="}


def render_receiver(r: Receiver) -> dict[str, Any]:
    out: dict[str, Any] = {"name": r.name}
    if r.webhook is not None:
        hook: dict[str, Any] = {
            "urlSecret": _secret(r.webhook.url_secret),
            "sendResolved": r.webhook.send_resolved,
        }
        if r.webhook.max_alerts:
            hook["maxAlerts"] = r.webhook.max_alerts
        out["webhookConfigs"] = [hook]
    if r.slack is not None:
        slack: dict[str, Any] = {
            "apiURL": _secret(r.slack.api_url_secret),
            "sendResolved": r.slack.send_resolved,
        }
        if r.slack.channel:
            slack["channel"] = r.slack.channel
        out["slackConfigs"] = [slack]
    if r.email is not None:
        e = r.email
        email: dict[str, Any] = {"to": e.to, "sendResolved": e.send_resolved}
        for key, value in (
            ("from", e.from_),
            ("smarthost", e.smarthost),
            ("authUsername", e.auth_username),
        ):
            if value:
                email[key] = value
        if e.auth_password_secret is not None:
            email["authPassword"] = _secret(e.auth_password_secret)
        out["emailConfigs"] = [email]
    if r.pagerduty is not None:
        out["pagerdutyConfigs"] = [
            {
                "routingKey": _secret(r.pagerduty.routing_key_secret),
                "sendResolved": r.pagerduty.send_resolved,
            }
        ]
    return out


def render_route(monitor: Monitor, route: AlertRouteSpec) -> dict[str, Any]:
    top: dict[str, Any] = {
        "receiver": route.default_receiver,
        "groupBy": list(route.group_by),
        "groupWait": route.group_wait,
        "groupInterval": route.group_interval,
        "repeatInterval": route.repeat_interval,
        "matchers": [
            _equal("namespace", monitor.namespace),
            _equal("modelmonitor", monitor.name),
        ],
    }
    if route.retrain is not None:
        top["routes"] = [
            {
                "receiver": RETRAIN_RECEIVER,
                "matchers": [
                    {
                        "name": "alertname",
                        "value": "|".join(route.retrain.alerts),
                        "matchType": "=~",
                    }
                ],
                # One notification per monitor: its labels name the model to retrain.
                "groupBy": ["namespace", "modelmonitor"],
                "repeatInterval": route.retrain.repeat_interval,
                "continue": True,
            },
            {"receiver": route.default_receiver},
        ]
    return top


def render_alertmanager_config(monitor: Monitor, meta: dict[str, Any]) -> dict[str, Any]:
    """The AlertmanagerConfig ``mm-<name>``; ``meta`` is the child metadata (name, labels,
    owner) that render.py gives every child."""
    route = monitor.spec.alerts.route
    if route is None:
        raise ValueError("spec.alerts.route is not set")
    receivers = [render_receiver(r) for r in route.receivers]
    if route.retrain is not None:
        receivers.append(
            {
                "name": RETRAIN_RECEIVER,
                "webhookConfigs": [
                    {"urlSecret": _secret(route.retrain.url_secret), "sendResolved": False}
                ],
            }
        )
    metadata = {**meta, "labels": {**meta["labels"], **route.labels}}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {"route": render_route(monitor, route), "receivers": receivers},
    }
