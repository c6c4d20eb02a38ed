"""The windows of KServe's endpoints and segments, kept apart from the monitor's main window.

An event of the ``canary`` endpoint, or one with an allow-listed segment (``kserve.segments``),
goes to a window of its own, keyed by its :class:`~monitor_worker.ingest.EventKey`, so a
canary's drift is never averaged into the default's. Every keyed window is a
:class:`~monitor_worker.window.WindowState` with the monitor's profile and bounds, made by the
service (:meth:`MonitorService.new_window`), and shares with the main window its totals (the
monitor's counters) and its predictions waiting for labels: one ``labels.maxPending`` for all
windows, each pending prediction marked with its window's :func:`window_code`, so a label
joins its prediction in the window that holds it.

How many windows there can be is bounded by the segments admitted
(:class:`~monitor_worker.ingest.SegmentValues`: at most ``kserve.segments.maxValues``
segments), per endpoint one more for the events without a segment: at most
``2 * (maxValues + 1)`` windows, the main one included.

Kept in the worker's process only: with a shared store (``worker.store``) every event goes to
the main window (docs/kserve.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson

from .ingest import MAIN, EventKey, SegmentValues
from .window import WindowState


def window_code(key: EventKey) -> int:
    """0 for the main window, else a stable 48-bit code of the key (the same across restarts,
    so pending predictions in a snapshot find their window again)."""
    if key.main:
        return 0
    digest = hashlib.blake2b(orjson.dumps(key.to_json()), digest_size=6).digest()
    return int.from_bytes(digest, "big") or 1


class KeyedPending:
    """A keyed window's view of the main window's pending predictions: what it adds carries
    the window's code; expiry (a scan of the whole ring) and the expired count stay with the
    main window, and its length is counted there, once."""

    def __init__(self, shared: Any, code: int) -> None:
        self.shared = shared
        self.code = code

    def __len__(self) -> int:
        return 0

    @property
    def expired(self) -> int:
        return int(self.shared.expired)

    def add(
        self,
        ids: list[str],
        predictions: np.ndarray,
        probas: np.ndarray | None,
        now: float | np.ndarray,
    ) -> None:
        self.shared.add(ids, predictions, probas, now, window=self.code)

    def expire(self, now: float) -> None:
        """The main window expires the shared predictions."""


class KeyedWindows:
    """The windows other than the main one, by key, made on first use through ``make``; the
    segments admitted so far; and every key seen, by code (pending predictions name their
    window by code)."""

    def __init__(self, make: Callable[[EventKey], WindowState], max_values: int) -> None:
        self.make = make
        self.values = SegmentValues(max_values)
        self.windows: dict[EventKey, WindowState] = {}
        self.keys: dict[int, EventKey] = {}

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self) -> Iterator[tuple[EventKey, WindowState]]:
        return iter(list(self.windows.items()))

    def admit(self, key: EventKey) -> None:
        """Admit ``key``'s segment (raises EventRefused, ``segment-limit``, beyond the bound)."""
        if not key.main:
            self.values.admit(key.segment)

    def window(self, key: EventKey) -> WindowState:
        """The window of an admitted ``key`` (made on first use)."""
        state = self.windows.get(key)
        if state is None:
            state = self.windows[key] = self.make(key)
            self.keys[window_code(key)] = key
        return state

    def of_code(self, code: int) -> WindowState | None:
        """The window of ``code`` (made again if it went idle), None for a code never seen."""
        key = self.keys.get(code)
        return None if key is None else self.window(key)

    def drop_idle(self, now: float) -> None:
        """Forget windows that hold no bucket any more: a finished canary's series disappear.
        Its key stays known (a late label makes the window again)."""
        for key, state in list(self.windows.items()):
            state.expire(now)
            if not state.buckets:
                del self.windows[key]

    # -- snapshots ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "segments": self.values.to_dict(),
            "keys": [key.to_json() for key in self.keys.values()],
            "windows": [
                {
                    "key": key.to_json(),
                    "buckets": {str(s): b.to_dict() for s, b in w.buckets.items()},
                }
                for key, w in self.windows.items()
            ],
        }


def keyed_window_key(data: Any) -> EventKey:
    """The key of a keyed window in a snapshot (ValueError when it is the main one)."""
    key = EventKey.from_json(data)
    if key == MAIN:
        raise ValueError("a keyed window with the main window's key")
    return key
