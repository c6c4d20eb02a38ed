"""ModelMonitor handlers: reconcile on create, spec update and resume; refresh on a timer."""

from __future__ import annotations

from typing import Any

import kopf

from ..reconcile import ROTATE_ANNOTATION, Context, Result, forget, reconcile, refresh
from ..settings import load_settings
from ..spec import GROUP, PLURAL, VERSION
from .transient import retry_transient

RESOURCE = (GROUP, VERSION, PLURAL)
_interval = load_settings().status_interval


def _publish(result: Result, body: kopf.Body, patch: kopf.Patch) -> None:
    patch.status.update(result.status)
    for e in result.events:
        kopf.event(body, type=e.type, reason=e.reason, message=e.message)


@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.update(*RESOURCE, field=("metadata", "annotations", ROTATE_ANNOTATION))
@kopf.on.resume(*RESOURCE)
def reconcile_monitor(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    ctx: Context = memo.ctx
    with retry_transient():
        _publish(reconcile(ctx, dict(body)), body, patch)


@kopf.timer(*RESOURCE, interval=_interval, initial_delay=_interval / 3, sharp=False)
def refresh_monitor(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    ctx: Context = memo.ctx
    with retry_transient():
        _publish(refresh(ctx, dict(body)), body, patch)


@kopf.index(*RESOURCE)
def monitors_by_target(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict:
    """(namespace, kind, target name) -> names of the ModelMonitors that watch it."""
    ref = (spec.get("model") or {}).get("targetRef") or {}
    return {(namespace, ref.get("kind", "Deployment"), ref.get("name")): name}


@kopf.on.delete(*RESOURCE, optional=True)
def monitor_deleted(body: kopf.Body, **_: Any) -> None:
    """Children go with the owner (garbage collection); only in-memory state is dropped.
    ``optional=True``: no finalizer, so a deletion never waits for the operator."""
    forget(dict(body))
