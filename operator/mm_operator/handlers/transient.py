"""Transient API failures (server down, 5xx, 429 after our own retries) become kopf's
TemporaryError: a one-line log and a retry in seconds, instead of a traceback and kopf's
default 60 s backoff for a handler that failed with an unexpected exception."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

RETRY_DELAY = 5.0
FORBIDDEN_DELAY = 30.0


@contextlib.contextmanager
def retry_transient() -> Iterator[None]:
    try:
        yield
    except HTTPError as e:
        raise kopf.TemporaryError(
            f"Kubernetes API unreachable: {type(e).__name__}", delay=RETRY_DELAY
        ) from None
    except ApiException as e:
        if e.status in (429, 500, 502, 503, 504):
            raise kopf.TemporaryError(
                f"Kubernetes API answered {e.status} {e.reason}", delay=RETRY_DELAY
            ) from None
        if e.status == 403:
            # Missing RBAC, or an API server that just restarted and has not synced its
            # authorisation caches yet: say which request, retry slowly.
            raise kopf.TemporaryError(f"forbidden: {_message(e)}", delay=FORBIDDEN_DELAY) from None
        raise


def _message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message", e.reason))
    except ValueError:
        return str(e.reason)
