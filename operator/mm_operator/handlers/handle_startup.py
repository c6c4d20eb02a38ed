"""kopf settings, set once at start-up, and the shared context every handler uses."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..health import HealthReader
from ..kube import Kube
from ..reconcile import Context
from ..settings import load_settings
from ..state import OperatorState

KOPF_PREFIX = "kopf.modelmonitor.io"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Progress and diff-base in annotations under a prefix of kopf's own: status stays ours
    # alone. Not plain "modelmonitor.io": kopf leaves every annotation under its storage
    # prefix out of the diff, and users set modelmonitor.io/rotate-token to rotate the token.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # One active replica (the chart's Deployment uses the Recreate strategy).
    settings.peering.standalone = True
    # Only warnings and errors from handlers become Kubernetes Events; transitions are
    # posted explicitly by the handlers.
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = 16
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # Retry a failed handler soon, then back off (409/429 are retried inside the client too).
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    config = load_settings()
    memo.ctx = Context(
        kube=Kube.from_environment(),
        settings=config,
        health=HealthReader(config),
        state=OperatorState(),
    )
