"""kopf settings, set once at start-up, and the shared context every handler uses."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..health import HealthReader
from ..kube import Kube
from ..reconcile import Context
from ..settings import load_settings


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Progress and diff-base in annotations under our own prefix: status stays ours alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="modelmonitor.io"
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="modelmonitor.io", key="last-handled-configuration"
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
    memo.ctx = Context(kube=Kube.from_environment(), settings=config, health=HealthReader(config))
