"""Where the worker's state lives between replicas and restarts.

One replica without a store keeps everything in its own process (window buckets, predictions
waiting for labels in :class:`~monitor_worker.pending.PendingPredictions`, unpaired KServe
halves in :class:`~monitor_worker.ingest.KServePairs`), and snapshots it to a directory (on a
PersistentVolumeClaim when ``spec.worker.persistence`` is set) so a new process restores it.

With ``store.url`` set, N replicas share one Redis-protocol store (Valkey or Redis,
standalone): :class:`~monitor_worker.store.redis_store.RedisStore`. Each replica ingests into
its own part of each time bucket and flushes the parts it changed every
``store.flushInterval``; an evaluation merges every replica's parts (the sketches merge
exactly). Predictions waiting for labels and unpaired KServe halves are shared, so a label or
a half reaching any replica finds its partner from any other. See docs/scaling.md."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from mm_api.durations import parse_duration
from mm_api.worker_config import WorkerConfig

from ..ingest.kserve import HALF_TTL, MAX_UNPAIRED
from .work import FlushResult, FlushWork, StoreUnavailable

if TYPE_CHECKING:
    from ..profile import Profile
    from .redis_store import RedisStore

__all__ = ["FlushResult", "FlushWork", "StoreUnavailable", "open_store", "replica_id"]


def replica_id() -> str:
    """This process among the replicas: the pod's name (or host), and a random suffix, so a
    container restarted in the same pod never overwrites the parts its predecessor flushed."""
    host = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{host}-{secrets.token_hex(4)}"


def store_password(config: WorkerConfig) -> str | None:
    spec = config.store
    assert spec is not None
    if spec.password_file:
        try:
            return Path(spec.password_file).read_text().strip() or None
        except OSError as e:
            raise StoreUnavailable(
                f"store password file {spec.password_file}: {e.strerror}"
            ) from None
    return os.environ.get(spec.password_env) or None


def open_store(config: WorkerConfig, profile: Profile) -> RedisStore:
    """The shared store of ``config``, checked (raises StoreUnavailable naming it)."""
    from .redis_store import RedisStore  # redis is imported only when a store is configured

    spec = config.store
    assert spec is not None
    index = profile.class_index
    store = RedisStore(
        spec.url,
        password=store_password(config),
        namespace=config.monitor.namespace,
        monitor=config.monitor.name,
        fingerprint=profile.fingerprint,
        replica=replica_id(),
        window_seconds=parse_duration(config.window.size),
        n_buckets=config.window.buckets,
        label_ttl=parse_duration(config.labels.ttl),
        max_pending=config.labels.max_pending,
        half_ttl=HALF_TTL,
        max_halves=MAX_UNPAIRED,
        proba_width=0 if index is None else (1 if index.binary else len(index.classes)),
    )
    store.check()
    return store
