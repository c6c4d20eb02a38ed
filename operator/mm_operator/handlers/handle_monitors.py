"""ModelMonitor handlers: reconcile on create, spec update and resume; refresh on a timer.
Each only calls the reconcile module, which publishes the status itself (one writer)."""

from __future__ import annotations

from typing import Any

import kopf

from mm_api.spec import GROUP, PLURAL, VERSION

from ..reconcile import ROTATE_ANNOTATION, Context, reconcile, refresh
from ..settings import load_settings
from .transient import retry_transient

RESOURCE = (GROUP, VERSION, PLURAL)
_interval = load_settings().status_interval


@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.update(*RESOURCE, field=("metadata", "annotations", ROTATE_ANNOTATION))
@kopf.on.resume(*RESOURCE)
def reconcile_monitor(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctx: Context = memo.ctx
    with retry_transient():
        reconcile(ctx, dict(body))


@kopf.timer(*RESOURCE, interval=_interval, initial_delay=_interval / 3, sharp=False)
def refresh_monitor(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctx: Context = memo.ctx
    with retry_transient():
        refresh(ctx, dict(body))


@kopf.index(*RESOURCE)
def monitors_by_target(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict:
    """(namespace, kind, target name) -> names of the ModelMonitors that watch it."""
    ref = (spec.get("model") or {}).get("targetRef") or {}
    return {(namespace, ref.get("kind", "Deployment"), ref.get("name")): name}


@kopf.on.delete(*RESOURCE, optional=True)
def monitor_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Children go with the owner (garbage collection); only in-memory state is dropped.
    ``optional=True``: no finalizer, so a deletion never waits for the operator."""
    ctx: Context = memo.ctx
    ctx.state.forget(dict(body))
