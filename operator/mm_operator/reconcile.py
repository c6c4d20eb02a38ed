"""Wiring one ModelMonitor: parse -> observe -> render -> apply -> status. kopf handlers call
:func:`reconcile` (spec changed, resumed, target appeared) and :func:`refresh` (timer)."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from .conditions import now_iso
from .health import HealthReader
from .kube import Kube
from .metrics import MONITORS, RECONCILE_SECONDS, RECONCILES, STATUS_REFRESHES
from .observe import check_prerequisites, observe_target, observe_worker
from .render import TOKEN_KEY, WORKER_PORT, Names, Observed, labels, render_children
from .settings import Settings
from .spec import Monitor, SpecError, parse_monitor
from .status import Event, Observation, compute_status

log = logging.getLogger(__name__)
ROTATE_ANNOTATION = "modelmonitor.io/rotate-token"
# Re-entrant: a refresh holds it while deciding whether to reconcile, and reconcile takes it.
_locks: defaultdict[str, threading.RLock] = defaultdict(threading.RLock)
# The last status this process published per monitor: handlers running on an older copy of
# the object diff against it, so one transition yields one event.
_published: dict[str, dict[str, Any]] = {}
# Worker Deployment uid -> the metadata.generation this process last applied or saw: a worker
# event with another generation means its spec was changed by someone else (or it is new).
_worker_generation: dict[str, int] = {}


def worker_spec_changed(uid: str, generation: int | None, event_type: str) -> bool:
    """Whether a worker Deployment event calls for applying the children again: it was
    deleted, or its spec generation is not the one last applied or seen."""
    if event_type == "DELETED":
        _worker_generation.pop(uid, None)
        return True
    changed = _worker_generation.get(uid) != generation
    if generation is not None:
        _worker_generation[uid] = generation
    return changed


@dataclass
class Result:
    status: dict[str, Any]
    events: list[Event]


@dataclass
class Context:
    kube: Kube
    settings: Settings
    health: HealthReader


def _key(body: dict[str, Any]) -> str:
    meta = body.get("metadata", {})
    return meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"


def _previous(body: dict[str, Any]) -> dict[str, Any]:
    return _published.get(_key(body)) or body.get("status") or {}


def _remember(body: dict[str, Any], result: Result) -> Result:
    _published[_key(body)] = result.status
    _count_health()
    return result


def _count_health() -> None:
    counts = Counter(s.get("health", "Unknown") for s in list(_published.values()))
    for health in ("Healthy", "Warning", "Critical", "Unknown"):
        MONITORS.labels(health=health).set(counts.get(health, 0))


def forget(body: dict[str, Any]) -> None:
    """Drop what is remembered of a deleted monitor."""
    _published.pop(_key(body), None)
    _locks.pop(_key(body), None)
    _count_health()


def _key_metric(monitor: Monitor) -> str | None:
    thresholds = monitor.spec.quality.thresholds
    if thresholds:
        return thresholds[0].metric
    return {"regression": "rmse"}.get(monitor.spec.model.task, "accuracy")


def _base_observation(body: dict[str, Any], monitor: Monitor) -> dict[str, Any]:
    return {
        "generation": monitor.generation,
        "model": monitor.model_name,
        "worker_service": f"{Names(monitor.name).worker}.{monitor.namespace}.svc:{WORKER_PORT}",
        "key_metric": _key_metric(monitor),
        "monitoring_wanted": monitor.spec.prometheus.service_monitor.enabled
        or monitor.spec.prometheus.rule.enabled,
    }


def reconcile(ctx: Context, body: dict[str, Any], *, read_health: bool = False) -> Result:
    """Make the children match the spec and compute the status. Never raises for bad input:
    an unusable spec or a missing prerequisite becomes a condition, and nothing is changed."""
    with _locks[_key(body)]:
        start = time.monotonic()
        previous = _previous(body)
        meta = body.get("metadata", {})
        if meta.get("deletionTimestamp"):
            return Result(previous, [])  # going away with its children: nothing to do
        try:
            monitor = parse_monitor(body)
        except SpecError as e:
            RECONCILES.labels(result="invalid").inc()
            obs = Observation(
                generation=int(meta.get("generation", 0)),
                model=(body.get("spec", {}).get("model") or {}).get("name") or meta.get("name", ""),
                spec_error=str(e),
            )
            return _remember(body, Result(*compute_status(obs, previous, now_iso())))

        kube = ctx.kube
        base = _base_observation(body, monitor)
        target = observe_target(kube, monitor)
        problems = tuple(check_prerequisites(kube, monitor))
        prometheus_operator = kube.has_api("monitoring.coreos.com/v1", "ServiceMonitor")
        apply_error = None
        applied: tuple[str, ...] = tuple(previous.get("children") or ())
        if not problems:
            # Missing prerequisites leave existing children as they were: what already
            # works keeps working until the spec can be satisfied.
            try:
                applied = _apply_children(
                    ctx, body, monitor, target.pod_labels, prometheus_operator
                )
            except ApiException as e:
                if _namespace_terminating(e):
                    log.debug("%s is being deleted: nothing to apply", monitor.namespace)
                    return Result(previous, [])
                apply_error = f"{e.status} {e.reason}: {_api_message(e)}"
                log.warning(
                    "applying children of %s/%s failed: %s",
                    monitor.namespace,
                    monitor.name,
                    apply_error,
                )
        worker = observe_worker(kube, monitor)
        health = ctx.health.read(monitor) if read_health and not problems else None
        obs = Observation(
            **base,
            problems=problems,
            apply_error=apply_error,
            target=target,
            worker=worker,
            prometheus_operator=prometheus_operator,
            health=health,
            children=applied,
        )
        status, events = compute_status(obs, previous, now_iso())
        RECONCILE_SECONDS.observe(time.monotonic() - start)
        RECONCILES.labels(result="error" if apply_error else "problem" if problems else "ok").inc()
        return _remember(body, Result(status, events))


def _apply_children(
    ctx: Context,
    body: dict[str, Any],
    monitor: Monitor,
    target_pod_labels: dict[str, str] | None,
    prometheus_operator: bool,
) -> tuple[str, ...]:
    kube = ctx.kube
    children = render_children(
        monitor, ctx.settings, Observed(target_pod_labels, prometheus_operator)
    )
    applied = []
    if monitor.spec.worker.auth.enabled:
        _ensure_token(ctx, body, monitor)
        applied.append(f"Secret/{Names(monitor.name).token}")
    for obj in children.objects:
        out = kube.apply(obj)
        if obj["kind"] == "Deployment":
            meta = out.get("metadata") or {}
            if meta.get("uid") and meta.get("generation") is not None:
                _worker_generation[meta["uid"]] = meta["generation"]
        applied.append(f"{obj['kind']}/{obj['metadata']['name']}")
    previous = set((body.get("status") or {}).get("children") or ())
    for api_version, kind, name in children.absent:
        # Only delete what this operator applied before (recorded in status.children).
        if f"{kind}/{name}" in previous:
            kube.delete(api_version, kind, monitor.namespace, name)
    return tuple(applied)


def _ensure_token(ctx: Context, body: dict[str, Any], monitor: Monitor) -> None:
    """Create the ingestion token Secret once; rotate it when the rotate annotation changes.
    The token is random and never logged, put in status or in events."""
    name = Names(monitor.name).token
    rotate = (body.get("metadata", {}).get("annotations") or {}).get(ROTATE_ANNOTATION, "")
    existing = ctx.kube.get_or_none("v1", "Secret", monitor.namespace, name)
    if existing is not None:
        seen = (existing.get("metadata", {}).get("annotations") or {}).get(ROTATE_ANNOTATION, "")
        if seen == rotate:
            return
    token = secrets.token_urlsafe(32)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": monitor.namespace,
            "labels": labels(monitor, ctx.settings),
            "annotations": {ROTATE_ANNOTATION: rotate},
            "ownerReferences": [monitor.owner_reference()],
        },
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }
    ctx.kube.apply(secret)


def refresh(ctx: Context, body: dict[str, Any], *, read_health: bool = True) -> Result:
    """Status refresh (the timer, and the worker's availability changing). Re-applies children
    only when the last reconcile did not finish (invalid spec fixed elsewhere, prerequisite now
    present, stale generation); otherwise it only reads the target and the worker. It decides
    under the monitor's lock, so an event that arrives while the first reconcile is still
    applying waits for it instead of applying everything a second time."""
    with _locks[_key(body)]:
        status = _previous(body)
        meta = body.get("metadata", {})
        conditions = {c.get("type"): c for c in status.get("conditions", [])}
        ready = conditions.get("Ready", {})
        stale = status.get("observedGeneration") != meta.get("generation")
        unfinished = ready.get("reason") in (
            None,
            "ApplyFailed",
            "ReferenceNotFound",
            "InvalidSpec",
        )
        target_missing = conditions.get("TargetFound", {}).get("status") == "False"
        if stale or unfinished or target_missing:
            STATUS_REFRESHES.labels(result="reconciled").inc()
            return reconcile(ctx, body, read_health=read_health)
        STATUS_REFRESHES.labels(result="refreshed").inc()
        try:
            monitor = parse_monitor(body)
        except SpecError:
            return Result(status, [])
        obs = Observation(
            **_base_observation(body, monitor),
            target=observe_target(ctx.kube, monitor),
            worker=observe_worker(ctx.kube, monitor),
            prometheus_operator=ctx.kube.has_api("monitoring.coreos.com/v1", "ServiceMonitor"),
            health=ctx.health.read(monitor) if read_health else None,
            children=tuple(status.get("children") or ()),
        )
        return _remember(body, Result(*compute_status(obs, status, now_iso())))


def _namespace_terminating(e: ApiException) -> bool:
    """The namespace is being deleted: the API server forbids new objects in it (403 with the
    cause ``NamespaceTerminating``). Its monitors are going away with it."""
    if e.status != 403:
        return False
    try:
        causes = (json.loads(e.body or "{}").get("details") or {}).get("causes") or []
    except ValueError:
        return False
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


def _api_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message", ""))[:500]
    except ValueError:
        return str(e.body or "")[:500]
