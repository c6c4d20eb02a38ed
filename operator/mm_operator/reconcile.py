"""Wiring one ModelMonitor: parse -> observe -> render -> apply -> status -> publish.

kopf handlers and workload events call :func:`reconcile` (spec changed, resumed, target or
worker changed) and :func:`refresh` (timer). Both decide under the monitor's lock from the
freshest copy of the object, and :func:`publish` is the one place that writes status."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import kopf
from kubernetes.client.exceptions import ApiException

from mm_api.durations import parse_duration
from mm_api.spec import API_VERSION, KIND

from .certificates import CA_KEY, TlsRecord, make_issuance, plan
from .conditions import READY, TARGET_FOUND, Reason, now_iso
from .health import HealthReader
from .kube import Kube, NotFound
from .metrics import RECONCILE_SECONDS, RECONCILES, STATUS_REFRESHES
from .observe import check_prerequisites, observe_target, observe_tls, observe_worker, worker_ca
from .render import (
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_CONFIG_API,
    LOGGER_CA_LABEL,
    TOKEN_ROTATION_ANNOTATION,
    WORKER_PORT,
    ClusterFacts,
    Names,
    render_children,
    render_logger_ca_bundle,
    render_tls_secret,
    render_token_secret,
    service_names,
    tls_mode,
)
from .settings import Settings
from .spec import Monitor, SpecError, parse_monitor
from .state import OperatorState
from .status import Event, Observation, compute_status

log = logging.getLogger(__name__)
#: Users change this annotation on a ModelMonitor to rotate its ingestion token.
ROTATE_ANNOTATION = "modelmonitor.io/rotate-token"
Write = Literal["always", "changes"]


@dataclass
class Result:
    status: dict[str, Any]
    events: list[Event]


@dataclass
class Context:
    kube: Kube
    settings: Settings
    health: HealthReader
    state: OperatorState


def _fresh(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """``body``, or the object read again when ``body`` may predate our last status write
    (a watch event in flight while another handler wrote)."""
    if ctx.state.is_current(body):
        return body
    meta = body.get("metadata", {})
    try:
        return ctx.kube.get(API_VERSION, KIND, meta.get("namespace", ""), meta["name"])
    except NotFound:
        return body


def publish(ctx: Context, body: dict[str, Any], result: Result, write: Write = "always") -> None:
    """Write ``result.status`` (a merge patch of the status subresource) and post its events.
    ``write="changes"``: skip the write when conditions and health are unchanged."""
    old = body.get("status") or {}
    new = result.status
    if write == "changes" and (new.get("conditions"), new.get("health")) == (
        old.get("conditions"),
        old.get("health"),
    ):
        return
    meta = body.get("metadata", {})
    try:
        out = ctx.kube.patch_status(meta.get("namespace", ""), meta["name"], new)
    except NotFound:
        return  # deleted meanwhile
    ctx.state.wrote(body, (out or {}).get("metadata", {}).get("resourceVersion"), new["health"])
    owner: Any = body  # a plain dict serves kopf.event as well as a kopf.Body
    for e in result.events:
        kopf.event(owner, type=e.type, reason=e.reason, message=e.message)


def _key_metric(monitor: Monitor) -> str | None:
    thresholds = monitor.spec.quality.thresholds
    if thresholds:
        return thresholds[0].metric
    return {"regression": "rmse"}.get(monitor.spec.model.task, "accuracy")


def _base_observation(monitor: Monitor) -> dict[str, Any]:
    return {
        "generation": monitor.generation,
        "model": monitor.model_name,
        "worker_service": f"{Names(monitor.name).worker}.{monitor.namespace}.svc:{WORKER_PORT}",
        "key_metric": _key_metric(monitor),
        "monitoring_wanted": monitor.spec.prometheus.service_monitor.enabled
        or monitor.spec.prometheus.rule.enabled,
    }


def reconcile(
    ctx: Context, body: dict[str, Any], *, read_health: bool = False, write: Write = "always"
) -> Result:
    """Make the children match the spec, compute the status and publish it. Never raises for
    bad input: an unusable spec or a missing prerequisite becomes a condition, and nothing is
    changed."""
    with ctx.state.lock(body):
        body = _fresh(ctx, body)
        result = _reconcile(ctx, body, read_health)
        if result is not None:
            publish(ctx, body, result, write)
        return result or Result(body.get("status") or {}, [])


def _reconcile(ctx: Context, body: dict[str, Any], read_health: bool) -> Result | None:
    start = time.monotonic()
    previous = body.get("status") or {}
    meta = body.get("metadata", {})
    if meta.get("deletionTimestamp"):
        return None  # going away with its children: nothing to do
    try:
        monitor = parse_monitor(body)
    except SpecError as e:
        RECONCILES.labels(result="invalid").inc()
        obs = Observation(
            generation=int(meta.get("generation", 0)),
            model=(body.get("spec", {}).get("model") or {}).get("name") or meta.get("name", ""),
            spec_error=str(e),
        )
        return Result(*compute_status(obs, previous, now_iso()))

    kube = ctx.kube
    target = observe_target(kube, monitor)
    problems = tuple(check_prerequisites(kube, monitor))
    prometheus_operator = kube.has_api("monitoring.coreos.com/v1", "ServiceMonitor")
    alertmanager_config = kube.has_api(ALERTMANAGER_CONFIG_API, ALERTMANAGER_CONFIG)
    apply_error = None
    applied: tuple[str, ...] = tuple(previous.get("children") or ())
    record = observe_tls(kube, monitor)
    if not problems:
        # Missing prerequisites leave existing children as they were: what already works
        # keeps working until the spec can be satisfied.
        try:
            if tls_mode(monitor) == "operator":
                record = _ensure_certificate(ctx, monitor, record)
            facts = ClusterFacts(
                target.pod_labels,
                prometheus_operator,
                target_gpu=target.gpu,
                alertmanager_config=alertmanager_config,
                tls=record,
                cert_manager=kube.has_api("cert-manager.io/v1", "Certificate"),
            )
            applied = _apply_children(ctx, body, monitor, facts)
        except ApiException as e:
            if _namespace_terminating(e):
                log.debug("%s is being deleted: nothing to apply", monitor.namespace)
                return None
            apply_error = f"{e.status} {e.reason}: {_api_message(e)}"
            log.warning(
                "applying children of %s/%s failed: %s",
                monitor.namespace,
                monitor.name,
                apply_error,
            )
    obs = Observation(
        **_base_observation(monitor),
        problems=problems,
        apply_error=apply_error,
        target=target,
        worker=observe_worker(kube, monitor),
        prometheus_operator=prometheus_operator,
        routing_unavailable=monitor.spec.alerts.route is not None and not alertmanager_config,
        health=_read_health(ctx, monitor, record) if read_health and not problems else None,
        children=applied,
    )
    status, events = compute_status(obs, previous, now_iso())
    RECONCILE_SECONDS.observe(time.monotonic() - start)
    RECONCILES.labels(result="error" if apply_error else "problem" if problems else "ok").inc()
    return Result(status, events)


def _apply_children(
    ctx: Context, body: dict[str, Any], monitor: Monitor, facts: ClusterFacts
) -> tuple[str, ...]:
    kube = ctx.kube
    names = Names(monitor.name)
    rotation = (body.get("metadata", {}).get("annotations") or {}).get(ROTATE_ANNOTATION, "")
    worker = kube.get_or_none("apps/v1", "Deployment", monitor.namespace, names.worker)
    made_for = _token_rotation(worker)
    applied = []
    if monitor.spec.worker.auth.enabled:
        _ensure_token(ctx, monitor, rotation, made_for)
        applied.append(f"Secret/{names.token}")
    if facts.tls is not None:
        applied.append(f"Secret/{names.tls}")
    children = render_children(monitor, ctx.settings, facts, token_rotation=rotation)
    for obj in children.objects:
        out = kube.apply(obj)
        if obj["kind"] == "Deployment":
            meta = out.get("metadata") or {}
            if meta.get("uid") and meta.get("generation") is not None:
                ctx.state.worker_generations[meta["uid"]] = meta["generation"]
        applied.append(f"{obj['kind']}/{obj['metadata']['name']}")
    ca_deleted = False
    for api_version, kind, name in children.absent:
        if kind == "Secret":
            # Secrets cannot be read (RBAC): the worker Deployment records whether a token
            # was made for it, the CA ConfigMap whether a certificate was.
            made = made_for is not None if name == names.token else ca_deleted
            if made:
                kube.delete(api_version, kind, monitor.namespace, name)
            continue
        existing = kube.get_or_none(api_version, kind, monitor.namespace, name)
        if existing is not None and _owned_by(existing, monitor):
            kube.delete(api_version, kind, monitor.namespace, name)
            ca_deleted = ca_deleted or name == names.ca
    if tls_mode(monitor) == "operator" or ca_deleted:
        publish_logger_ca_bundle(ctx, monitor.namespace)
    return tuple(applied)


def _ensure_certificate(ctx: Context, monitor: Monitor, record: TlsRecord | None) -> TlsRecord:
    """Issue what is due (certificates.plan) into the serving certificate's Secret without
    reading it: created when absent (409 otherwise), a slot merge-patched on rotation. The
    record returned goes into the CA ConfigMap with the other children. Keys are never
    logged, put in status or in events."""
    kube, names = ctx.kube, Names(monitor.name)
    tls = monitor.spec.worker.tls
    duration = dt.timedelta(seconds=parse_duration(tls.duration))
    dns = service_names(monitor)
    now = dt.datetime.now(dt.UTC)
    fresh = make_issuance("fresh", None, dns, tls.duration, duration, now)
    created = {k: v for k, v in fresh.secret_data().items() if v is not None}
    if kube.create_if_absent(render_tls_secret(monitor, ctx.settings, created)):
        log.info("%s/%s: issued a certificate (slot a)", monitor.namespace, monitor.name)
        return fresh.record
    due = plan(record, dns, tls.duration, now)
    if due is None:
        assert record is not None
        return record
    issuance = (
        fresh if due == "fresh" else make_issuance(due, record, dns, tls.duration, duration, now)
    )
    data = {
        k: None if v is None else base64.b64encode(v.encode()).decode()
        for k, v in issuance.secret_data().items()
    }
    kube.merge_patch("v1", "Secret", monitor.namespace, names.tls, {"data": data})
    log.info(
        "%s/%s: %s certificate in slot %s, served from %s",
        monitor.namespace, monitor.name, "rotated" if due == "rotate" else "issued a",
        issuance.slot, issuance.issued.not_before.isoformat(timespec="seconds"),
    )  # fmt: skip
    return issuance.record


def publish_logger_ca_bundle(ctx: Context, namespace: str) -> None:
    """The namespace's logger CA bundle from the CA ConfigMaps of its InferenceService
    monitors (labelled LOGGER_CA_LABEL); deleted when none is left. A deleted monitor's CA
    may stay until the next of these: harmless, as its key no longer exists."""
    kube, settings = ctx.kube, ctx.settings
    cas = []
    for cm in sorted(
        kube.list("v1", "ConfigMap", namespace, f"{LOGGER_CA_LABEL}=true"),
        key=lambda c: c["metadata"]["name"],
    ):
        owner = next(
            (o for o in cm["metadata"].get("ownerReferences") or [] if o.get("controller")), None
        )
        pem = (cm.get("data") or {}).get(CA_KEY)
        if owner and pem and not cm["metadata"].get("deletionTimestamp"):
            cas.append((owner, pem))
    if cas:
        kube.apply(render_logger_ca_bundle(namespace, settings, cas))
        return
    existing = kube.get_or_none("v1", "ConfigMap", namespace, settings.logger_ca_bundle)
    labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") == "model-monitor-operator":
        kube.delete("v1", "ConfigMap", namespace, settings.logger_ca_bundle)


def _read_health(ctx: Context, monitor: Monitor, record: TlsRecord | None) -> Any:
    return ctx.health.read(monitor, ca=worker_ca(ctx.kube, monitor, ctx.settings, record))


def _owned_by(obj: dict[str, Any], monitor: Monitor) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == monitor.uid and r.get("controller") for r in refs)


def _token_rotation(worker: dict[str, Any] | None) -> str | None:
    """The rotation the current token was made for, as the worker Deployment records it
    (None: no Deployment, or no token made for it)."""
    if worker is None:
        return None
    return (worker.get("metadata", {}).get("annotations") or {}).get(TOKEN_ROTATION_ANNOTATION)


def _ensure_token(ctx: Context, monitor: Monitor, rotation: str, made_for: str | None) -> None:
    """Create the ingestion token Secret when absent; replace it when the rotate annotation
    differs from the one the worker Deployment records. The operator never reads Secrets
    (its role cannot): creation answers 409 when one exists. The token is random and never
    logged, put in status or in events."""
    secret = render_token_secret(monitor, ctx.settings, secrets.token_urlsafe(32), rotation)
    if ctx.kube.create_if_absent(secret):
        return
    if made_for is not None and made_for != rotation:
        ctx.kube.apply(secret)


def refresh(
    ctx: Context, body: dict[str, Any], *, read_health: bool = True, write: Write = "always"
) -> Result:
    """Status refresh (the timer, and the worker's availability changing). Re-applies
    children only when the last reconcile did not finish (invalid spec fixed elsewhere,
    prerequisite now present, stale generation, target missing); otherwise it only reads the
    target and the worker. It decides under the monitor's lock, so an event that arrives while
    the first reconcile is still applying waits for it instead of applying again."""
    with ctx.state.lock(body):
        body = _fresh(ctx, body)
        status = body.get("status") or {}
        if needs_reconcile(status, body.get("metadata", {}).get("generation")):
            STATUS_REFRESHES.labels(result="reconciled").inc()
            return reconcile(ctx, body, read_health=read_health, write=write)
        try:
            monitor = parse_monitor(body)
        except SpecError:
            STATUS_REFRESHES.labels(result="refreshed").inc()
            return Result(status, [])
        record = observe_tls(ctx.kube, monitor)
        if tls_mode(monitor) == "operator" and certificate_due(monitor, record):
            STATUS_REFRESHES.labels(result="reconciled").inc()
            return reconcile(ctx, body, read_health=read_health, write=write)
        STATUS_REFRESHES.labels(result="refreshed").inc()
        obs = Observation(
            **_base_observation(monitor),
            target=observe_target(ctx.kube, monitor),
            worker=observe_worker(ctx.kube, monitor),
            prometheus_operator=ctx.kube.has_api("monitoring.coreos.com/v1", "ServiceMonitor"),
            routing_unavailable=monitor.spec.alerts.route is not None
            and not ctx.kube.has_api(ALERTMANAGER_CONFIG_API, ALERTMANAGER_CONFIG),
            health=_read_health(ctx, monitor, record) if read_health else None,
            children=tuple(status.get("children") or ()),
        )
        result = Result(*compute_status(obs, status, now_iso()))
        publish(ctx, body, result, write)
        return result


def certificate_due(monitor: Monitor, record: TlsRecord | None) -> bool:
    """Whether the operator-issued certificate must be issued or rotated now."""
    now = dt.datetime.now(dt.UTC)
    return plan(record, service_names(monitor), monitor.spec.worker.tls.duration, now) is not None


def needs_reconcile(status: dict[str, Any], generation: int | None) -> bool:
    """Whether a refresh must apply the children again: the status describes an older spec,
    the last reconcile did not finish (invalid spec, apply failure, missing reference), or
    the target was missing (it may have appeared)."""
    conditions = {c.get("type"): c for c in status.get("conditions", [])}
    stale = status.get("observedGeneration") != generation
    unfinished = conditions.get(READY, {}).get("reason") in Reason.UNFINISHED
    target_missing = conditions.get(TARGET_FOUND, {}).get("status") == "False"
    return stale or unfinished or target_missing


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
