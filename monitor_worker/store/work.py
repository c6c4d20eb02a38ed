"""What a replica hands to the shared store at a flush and what it gets back (no Redis here:
the serving process imports redis only when a store is configured)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class StoreUnavailable(RuntimeError):
    """The store cannot be reached (or refuses our password); the message names it."""


@dataclass
class FlushWork:
    """What one replica hands to the store at a flush: its changed bucket parts (packed),
    predictions waiting for labels, and KServe halves waiting for their partner."""

    parts: dict[int, bytes] = field(default_factory=dict)
    pending_ids: list[str] = field(default_factory=list)
    pending_rows: list[np.ndarray] = field(default_factory=list)  # (n, 2 + width) float64
    halves: list[tuple[str, str, bytes, float]] = field(default_factory=list)  # id, kind, blob, at
    totals: dict[str, Any] | None = None

    def __len__(self) -> int:
        """Predictions and halves in it (what ``store.maxBuffered`` bounds)."""
        return len(self.pending_ids) + len(self.halves)

    def absorb(self, newer: FlushWork) -> None:
        """Put this (older, failed) work in front of ``newer``'s queues; newer parts win."""
        self.parts.update(newer.parts)
        self.pending_ids += newer.pending_ids
        self.pending_rows += newer.pending_rows
        self.halves += newer.halves
        self.totals = newer.totals or self.totals


@dataclass
class FlushResult:
    """What a flush brings back: pairs completed with halves of other replicas (ce-id,
    request blob, response blob), requests whose response never came, and predictions that
    left the store unlabelled (TTL or maxPending)."""

    pairs: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    expired_requests: list[bytes] = field(default_factory=list)
    pending_expired: int = 0
    pending_total: int = 0
    at: float = 0.0
