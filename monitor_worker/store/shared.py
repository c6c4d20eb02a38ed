"""The worker-side halves of the shared store: predictions waiting for labels, and KServe
halves, buffered between flushes. They stand in for the in-process
:class:`~monitor_worker.pending.PendingPredictions` and
:class:`~monitor_worker.ingest.KServePairs` when a store is configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .redis_store import RedisStore


class SharedPending:
    """Same verbs as PendingPredictions (``add``, ``take``, ``expire``, ``len``, ``expired``).
    ``add`` only buffers (the store thread writes at the next flush); ``take`` looks in the
    buffer first, then in the store, so a label finds a prediction this replica took a moment
    ago as well as one any replica flushed."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.ids: list[str] = []
        self.rows: list[np.ndarray] = []
        self.expired = 0
        self.stored = 0  # predictions in the store at the last flush (all replicas)

    def __len__(self) -> int:
        return self.stored + len(self.ids)

    def add(
        self,
        ids: list[str],
        predictions: np.ndarray,
        probas: np.ndarray | None,
        now: float | np.ndarray,
    ) -> None:
        if not ids:
            return
        times = np.broadcast_to(np.asarray(now, dtype=np.float64), (len(ids),))
        self.ids += ids
        self.rows.append(self.store.pending_row(times, predictions, probas))

    def expire(self, now: float) -> None:
        """Done by the store at each flush (TTL and maxPending); nothing to do here."""

    def take(self, ids: list[str], now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx_local, rows_local = self._take_buffered(ids)
        rest = [i for i in range(len(ids)) if i not in set(idx_local.tolist())]
        idx_store, preds, probas, stale = self.store.take_pending([ids[i] for i in rest], now)
        self.expired += stale
        fresh_local = rows_local[:, 0] >= now - self.store.label_ttl
        self.expired += int((~fresh_local).sum())
        idx = np.concatenate([idx_local[fresh_local], np.asarray(rest, dtype=np.int64)[idx_store]])
        all_preds = np.concatenate([rows_local[fresh_local, 1], preds])
        all_probas = np.concatenate([rows_local[fresh_local, 2:], probas.reshape(len(preds), -1)])
        order = np.argsort(idx, kind="stable")
        return idx[order], all_preds[order], all_probas[order]

    def _take_buffered(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        width = self.store.row_width
        if not self.ids:
            return np.empty(0, dtype=np.int64), np.empty((0, width))
        rows = np.concatenate(self.rows)
        where = {key: i for i, key in enumerate(self.ids)}  # the newest wins for repeated ids
        hits = [(j, where[key]) for j, key in enumerate(ids) if key in where]
        if not hits:
            return np.empty(0, dtype=np.int64), np.empty((0, width))
        taken = {i for _, i in hits}
        keep = [i for i in range(len(self.ids)) if i not in taken and where[self.ids[i]] == i]
        picked = rows[[i for _, i in hits]]
        self.ids = [self.ids[i] for i in keep]
        self.rows = [rows[keep]] if keep else []
        return np.asarray([j for j, _ in hits], dtype=np.int64), picked

    # -- flush hand-over ------------------------------------------------------------------

    def drain(self) -> tuple[list[str], list[np.ndarray]]:
        ids, rows = self.ids, self.rows
        self.ids, self.rows = [], []
        return ids, rows

    def restore(self, ids: list[str], rows: list[np.ndarray]) -> None:
        """Put back what a failed flush did not write, in front of what came since."""
        self.ids = ids + self.ids
        self.rows = rows + self.rows
