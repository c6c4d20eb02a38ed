"""Silences on request: the ``modelmonitor.io/silence`` annotation of a ModelMonitor set,
changed or removed (and set at creation) -> :func:`mm_operator.silences.sync` against
Alertmanager, and an event saying what was done. Driven by the annotation's changes only, so
a silence that ran out is not made again while the annotation stays."""

from __future__ import annotations

from typing import Any

import kopf

from mm_api.spec import GROUP, PLURAL, VERSION

from ..reconcile import Context
from ..silences import SILENCE_ANNOTATION, AlertmanagerSilences, SilenceError, sync

RESOURCE = (GROUP, VERSION, PLURAL)
RETRY_DELAY = 10.0


def _apply(body: kopf.Body, memo: kopf.Memo) -> None:
    ctx: Context = memo.ctx
    meta = body.get("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    owner: Any = body
    url = ctx.settings.alertmanager_url
    if not url:
        if annotations.get(SILENCE_ANNOTATION):
            kopf.event(
                owner,
                type="Warning",
                reason="SilenceNotCreated",
                message=f"{SILENCE_ANNOTATION}: MM_ALERTMANAGER_URL is not set, so the operator "
                "cannot reach Alertmanager",
            )
        return
    try:
        outcome = sync(
            AlertmanagerSilences(url),
            meta.get("namespace", ""),
            meta["name"],
            meta.get("uid", ""),
            annotations,
        )
    except SilenceError as e:
        kopf.event(owner, type="Warning", reason="SilenceNotCreated", message=str(e))
        return
    except OSError as e:  # unreachable, or an error status (urllib's HTTPError is an OSError)
        raise kopf.TemporaryError(f"Alertmanager {url}: {e}", delay=RETRY_DELAY) from None
    if outcome is not None:
        kopf.event(owner, type=outcome.type, reason=outcome.reason, message=outcome.message)


@kopf.on.create(*RESOURCE)
def silence_on_create(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if (body.get("metadata", {}).get("annotations") or {}).get(SILENCE_ANNOTATION):
        _apply(body, memo)


@kopf.on.update(*RESOURCE, field=("metadata", "annotations", SILENCE_ANNOTATION))
def silence_on_change(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _apply(body, memo)
