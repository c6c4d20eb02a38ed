"""Workload events: a target appearing or changing, or a worker Deployment changing
availability, updates the owning ModelMonitors at once instead of at the next timer tick."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..kube import NotFound
from ..reconcile import Context, reconcile
from ..render import NAME_LABEL
from ..spec import API_VERSION, KIND
from .transient import retry_transient

log = logging.getLogger(__name__)
MANAGED = {"app.kubernetes.io/managed-by": "model-monitor-operator"}


def _update_monitor(ctx: Context, namespace: str, name: str) -> None:
    try:
        body = ctx.kube.get(API_VERSION, KIND, namespace, name)
    except NotFound:
        return
    result = reconcile(ctx, body, read_health=False)
    old = body.get("status") or {}
    if result.status.get("conditions") == old.get("conditions") and result.status.get(
        "health"
    ) == old.get("health"):
        return  # nothing new to say: no write
    try:
        ctx.kube.patch_status(namespace, name, result.status)
    except NotFound:
        return  # deleted meanwhile
    owner: Any = body  # a plain dict serves kopf.event as well as a kopf.Body
    for e in result.events:
        kopf.event(owner, type=e.type, reason=e.reason, message=e.message)


def _on_workload(
    kind: str,
    namespace: str | None,
    name: str,
    labels: dict,
    memo: kopf.Memo,
    monitors_by_target: kopf.Index,
    event_type: str,
) -> None:
    ctx: Context = memo.ctx
    if namespace is None:
        return
    if labels.get("app.kubernetes.io/managed-by") == MANAGED["app.kubernetes.io/managed-by"]:
        owner = labels.get(NAME_LABEL)
        if kind == "Deployment" and owner and event_type != "DELETED":
            _update_monitor(ctx, namespace, owner)
        return
    for monitor in monitors_by_target.get((namespace, kind, name), []):
        _update_monitor(ctx, namespace, monitor)


@kopf.on.event("apps", "v1", "deployments")
def deployment_event(
    namespace: str | None,
    name: str,
    labels: kopf.Labels,
    memo: kopf.Memo,
    type: str,
    **kwargs: Any,
) -> None:
    index = kwargs["monitors_by_target"]
    with retry_transient():
        _on_workload("Deployment", namespace, name, dict(labels), memo, index, type)


@kopf.on.event("apps", "v1", "statefulsets")
def statefulset_event(
    namespace: str | None,
    name: str,
    labels: kopf.Labels,
    memo: kopf.Memo,
    type: str,
    **kwargs: Any,
) -> None:
    index = kwargs["monitors_by_target"]
    with retry_transient():
        _on_workload("StatefulSet", namespace, name, dict(labels), memo, index, type)
