"""Predictions waiting for their late labels: a bounded ring (numpy arrays) plus one dict
from id to ring slot. Memory is fixed by ``labels.maxPending``; an entry leaves when its
label arrives, when it is older than ``labels.ttl``, or when newer predictions need its slot
(both counted as *expired*). No Python object per record: inserting a 1000-record batch is a
handful of numpy operations and one ``dict.update``.

One ring serves every window of a monitor (``labels.maxPending`` bounds them together): each
entry remembers the window its prediction came from (``window``: 0 for the main one, else
the code of a KServe endpoint's or segment's window), so its label joins it there."""

from __future__ import annotations

from collections import deque
from itertools import repeat
from typing import Any

import numpy as np


class PendingPredictions:
    def __init__(self, capacity: int, ttl: float, proba_width: int) -> None:
        self.capacity = int(capacity)
        self.ttl = float(ttl)
        self.proba_width = int(proba_width)
        cap = max(self.capacity, 1)
        self.keys: np.ndarray = np.full(cap, None, dtype=object)
        self.times = np.zeros(cap, dtype=np.float64)
        self.predictions = np.zeros(cap, dtype=np.float64)  # class index or value
        self.probas = np.full((cap, max(self.proba_width, 1)), np.nan, dtype=np.float64)
        self.windows = np.zeros(cap, dtype=np.int64)
        self.slots: dict[str, int] = {}
        self.head = 0  # next slot to write; entries age from head (newest) backwards
        self.expired = 0

    def __len__(self) -> int:
        return len(self.slots)

    def add(
        self,
        ids: list[str],
        predictions: np.ndarray,
        probas: np.ndarray | None,
        now: float | np.ndarray,
        window: int | np.ndarray = 0,
    ) -> None:
        """Remember predictions (class indices or values) by id; ``now`` and ``window`` may be
        per row."""
        if self.capacity == 0 or not ids:
            return
        n = len(ids)
        if n > self.capacity:  # only the newest fit; the others expire at once
            self.expired += n - self.capacity
            ids, predictions = ids[-self.capacity :], predictions[-self.capacity :]
            probas = None if probas is None else probas[-self.capacity :]
            if isinstance(now, np.ndarray):
                now = now[-self.capacity :]
            if isinstance(window, np.ndarray):
                window = window[-self.capacity :]
            n = self.capacity
        slots = (self.head + np.arange(n)) % self.capacity
        self._evict(slots)
        self.slots.update(zip(ids, slots.tolist(), strict=True))
        self.keys[slots] = ids
        self.times[slots] = now
        self.predictions[slots] = predictions
        self.windows[slots] = window
        if probas is None:
            self.probas[slots] = np.nan
        else:
            self.probas[slots] = probas.reshape(n, -1)
        self.head = int((self.head + n) % self.capacity)

    def _evict(self, slots: np.ndarray) -> None:
        """Free ``slots``; a live entry still waiting there counts as expired (an id sent
        again since then lives in its newer slot and stays)."""
        keys = self.keys[slots]
        live = keys != None  # noqa: E711 (elementwise)
        if live.any():
            keys, slots = keys[live], slots[live]
            # Where each id lives now, looked up in C (map over dict.get); ids still
            # pointing at a freed slot are dropped. A Python loop here was 1.3 ms a batch.
            now_at = np.fromiter(
                map(self.slots.get, keys.tolist(), repeat(-1)), dtype=np.int64, count=keys.size
            )
            stale = keys[now_at == slots].tolist()
            deque(map(self.slots.__delitem__, stale), maxlen=0)
            self.expired += len(stale)
        self.keys[slots] = None

    def expire(self, now: float) -> None:
        """Drop entries older than the TTL (they are the oldest in ring order)."""
        if not self.slots:
            return
        cutoff = now - self.ttl
        old = np.flatnonzero((self.times < cutoff) & (self.keys != None))  # noqa: E711
        if old.size:
            self._evict(old)

    def take(self, ids: list[str], now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remove and return the pending predictions for ``ids``:
        (indices into ``ids`` that matched, predictions, probabilities)."""
        return self.take_keyed(ids, now)[:3]

    def take_keyed(
        self, ids: list[str], now: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`take`, and the window of each prediction taken."""
        cutoff = now - self.ttl
        found = [self.slots.pop(k, -1) for k in ids]
        idx = np.flatnonzero(np.asarray(found) >= 0)
        slots = np.asarray(found, dtype=np.int64)[idx]
        fresh = self.times[slots] >= cutoff
        if not fresh.all():
            self.expired += int((~fresh).sum())
            idx, slots = idx[fresh], slots[fresh]
        self.keys[slots] = None
        return idx, self.predictions[slots], self.probas[slots], self.windows[slots]

    # -- snapshots -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        slots = np.asarray(list(self.slots.values()), dtype=np.int64)
        return {
            "ids": list(self.slots.keys()),
            "times": self.times[slots],
            "predictions": self.predictions[slots],
            "probas": self.probas[slots],  # NaN (no score) is written as null
            "windows": self.windows[slots],
            "expired": self.expired,
        }

    def load(self, d: dict[str, Any]) -> None:
        times = np.asarray(d["times"], dtype=np.float64)
        order = np.argsort(times, kind="stable")
        ids = [d["ids"][i] for i in order.tolist()]
        if ids:
            probas = np.asarray(d["probas"], dtype=np.float64).reshape(len(ids), -1)[order]
            preds = np.asarray(d["predictions"], dtype=np.float64)[order]
            windows = np.asarray(d.get("windows", np.zeros(len(ids))), dtype=np.int64)[order]
            self.add(ids, preds, probas, times[order], windows)
        self.expired = int(d.get("expired", 0))
