"""Workload events: a target (Deployment, StatefulSet, KServe InferenceService) appearing or
changing, readiness included, or a worker Deployment changing availability, updates the owning
ModelMonitors at once instead of at the next timer tick.

A worker Deployment's status changes several times while its pods start; those events only
re-read the target and the worker (three requests). The children are applied again only when
the worker Deployment's spec changed (its ``metadata.generation``: someone edited or scaled
it) or it was deleted, which puts back what the operator owns."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from mm_api.spec import API_VERSION, KIND

from ..kube import NotFound
from ..reconcile import Context, reconcile, refresh
from ..render import NAME_LABEL
from .transient import retry_transient

log = logging.getLogger(__name__)
MANAGED = {"app.kubernetes.io/managed-by": "model-monitor-operator"}


def _update_monitor(ctx: Context, namespace: str, name: str, *, reapply: bool = True) -> None:
    try:
        body = ctx.kube.get(API_VERSION, KIND, namespace, name)
    except NotFound:
        return
    if reapply:
        reconcile(ctx, body, read_health=False, write="changes")
    else:
        refresh(ctx, body, read_health=False, write="changes")


def _on_workload(
    kind: str,
    namespace: str | None,
    name: str,
    meta: dict,
    memo: kopf.Memo,
    monitors_by_target: kopf.Index,
    event_type: str,
) -> None:
    ctx: Context = memo.ctx
    if namespace is None:
        return
    labels = meta.get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") == MANAGED["app.kubernetes.io/managed-by"]:
        owner = labels.get(NAME_LABEL)
        if kind == "Deployment" and owner:
            reapply = ctx.state.worker_spec_changed(
                str(meta.get("uid") or f"{namespace}/{name}"), meta.get("generation"), event_type
            )
            _update_monitor(ctx, namespace, owner, reapply=reapply)
        return
    # A copy: kopf updates the index while handlers run.
    for monitor in list(monitors_by_target.get((namespace, kind, name), [])):
        _update_monitor(ctx, namespace, monitor)


@kopf.on.event("apps", "v1", "deployments")
def deployment_event(
    namespace: str | None,
    name: str,
    meta: kopf.Meta,
    memo: kopf.Memo,
    type: str,
    **kwargs: Any,
) -> None:
    index = kwargs["monitors_by_target"]
    with retry_transient():
        _on_workload("Deployment", namespace, name, dict(meta), memo, index, type)


@kopf.on.event("apps", "v1", "statefulsets")
def statefulset_event(
    namespace: str | None,
    name: str,
    meta: kopf.Meta,
    memo: kopf.Memo,
    type: str,
    **kwargs: Any,
) -> None:
    index = kwargs["monitors_by_target"]
    with retry_transient():
        _on_workload("StatefulSet", namespace, name, dict(meta), memo, index, type)


@kopf.on.event("serving.kserve.io", "v1beta1", "inferenceservices")
def inferenceservice_event(
    namespace: str | None,
    name: str,
    meta: kopf.Meta,
    memo: kopf.Memo,
    type: str,
    **kwargs: Any,
) -> None:
    """KServe's InferenceServices, when its CRD is installed (kopf starts watching it when it
    appears). Its Ready condition changing reaches the monitor's TargetFound at once."""
    index = kwargs["monitors_by_target"]
    with retry_transient():
        _on_workload("InferenceService", namespace, name, dict(meta), memo, index, type)
