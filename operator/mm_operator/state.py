"""What the operator keeps between events, in one object made at start-up (kopf's memo):
per-monitor locks, the worker Deployment generations it applied, and the resourceVersion of
each status it wrote. Nothing else is remembered; every decision reads the cluster."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .metrics import MONITORS

HEALTH_VALUES = ("Healthy", "Warning", "Critical", "Unknown")


def monitor_key(body: dict[str, Any]) -> str:
    meta = body.get("metadata", {})
    return meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"


@dataclass
class OperatorState:
    # Re-entrant: a refresh holds it while deciding whether to reconcile, and reconcile takes it.
    locks: defaultdict[str, threading.RLock] = field(
        default_factory=lambda: defaultdict(threading.RLock)
    )
    #: Worker Deployment uid -> the metadata.generation this process last applied or saw: an
    #: event with another generation means someone else changed its spec (or it is new).
    worker_generations: dict[str, int] = field(default_factory=dict)
    #: Monitor key -> resourceVersion our last status write produced: a body carrying another
    #: one may predate that write, so the object is read again before deciding.
    written: dict[str, str] = field(default_factory=dict)
    #: Monitor key -> health last written (the operator's own gauge of monitors by health).
    health: dict[str, str] = field(default_factory=dict)

    def lock(self, body: dict[str, Any]) -> threading.RLock:
        return self.locks[monitor_key(body)]

    def worker_spec_changed(self, uid: str, generation: int | None, event_type: str) -> bool:
        """Whether a worker Deployment event calls for applying the children again: it was
        deleted, or its spec generation is not the one last applied or seen."""
        if event_type == "DELETED":
            self.worker_generations.pop(uid, None)
            return True
        changed = self.worker_generations.get(uid) != generation
        if generation is not None:
            self.worker_generations[uid] = generation
        return changed

    def is_current(self, body: dict[str, Any]) -> bool:
        """Whether ``body`` already carries our last status write (or we wrote none)."""
        written = self.written.get(monitor_key(body))
        return written is None or written == body.get("metadata", {}).get("resourceVersion")

    def wrote(self, body: dict[str, Any], resource_version: str | None, health: str) -> None:
        key = monitor_key(body)
        if resource_version:
            self.written[key] = resource_version
        self.health[key] = health
        self._count_health()

    def forget(self, body: dict[str, Any]) -> None:
        key = monitor_key(body)
        for table in (self.written, self.health, self.locks):
            table.pop(key, None)
        self._count_health()

    def _count_health(self) -> None:
        counts = Counter(list(self.health.values()))
        for health in HEALTH_VALUES:
            MONITORS.labels(health=health).set(counts.get(health, 0))
