"""Window state: a sliding window made of time buckets, each a mergeable summary of the
records that arrived in its time slot, and the bounded store of predictions that wait for
late labels. Memory is features x bins x buckets (+ the pending-label store), never records.

A record lands in the bucket of its ``timestamp`` when it has one inside the window, else of
its arrival time; records older than the window are counted as ``late`` and not added.
Quality is attributed to the time a prediction is *joined with its label* (inline labels:
arrival), so labels that arrive hours later still count, in the window they arrive in."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ingest import Batch, GroundTruth
from .pending import PendingPredictions
from .profile import Profile, category_codes
from .rich import RichBucket
from .stats import (
    CategoricalCounts,
    ClassificationState,
    NumericHistogram,
    RegressionState,
    Reservoir,
)
from .stats.cbpe import CBPEState
from .stats.reconstruction import ReconstructionState

log = logging.getLogger(__name__)

# Sketch updates are buffered per bucket and applied in chunks of this many rows: per-call
# overhead, not the arithmetic, dominates updates of 1000-row batches, and each feature's
# tables (edges, lookup table, counts) come back into cache once per flush. The buffer holds
# the batches themselves (copies only where an index array picks rows), so its memory grows
# with the rows times the features: 32768 rows made the drift benchmark's ingest 8 ms (of
# ~100) faster but the worker's RSS after 10M records 10 MB larger (bench/memory.py, 20
# features; a wider model more), which is why it stays at 8192.
FLUSH_ROWS = 8192


@dataclass
class Bucket:
    """Summary of one time slot; buckets add up to the window."""

    start: float
    n: int
    numeric: dict[str, NumericHistogram]
    categorical: dict[str, CategoricalCounts]
    reservoir: Reservoir
    quality: ClassificationState | RegressionState
    prediction: NumericHistogram | CategoricalCounts | None
    score: NumericHistogram | None
    labelled: int = 0
    #: Label-free estimation (CBPE) and PCA reconstruction error of the bucket's records, when
    #: on; DLE's state is the reservoir, whose last column is then the prediction.
    cbpe: CBPEState | None = None
    reconstruction: ReconstructionState | None = None
    #: Texts, embeddings and serving measures (monitor_worker/rich), when the schema has any.
    rich: RichBucket | None = None
    _buffer: list[tuple[Batch, slice | np.ndarray]] = field(default_factory=list, repr=False)
    _buffered: int = 0
    #: Batches' reservoir columns waiting for the flush (Reservoir.update_parts).
    _reservoir_buffer: list[tuple[list[np.ndarray], int]] = field(default_factory=list, repr=False)
    #: (feature rows, predicted class indices, scores) waiting for the estimation states.
    _estimation_buffer: list[tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]] = (
        field(default_factory=list, repr=False)
    )

    @classmethod
    def empty(cls, profile: Profile, start: float, capacity: int) -> Bucket:
        quality: ClassificationState | RegressionState
        if profile.class_index is None:
            quality = RegressionState()
        else:
            quality = ClassificationState(len(profile.class_index.classes))
        prediction: NumericHistogram | CategoricalCounts | None = None
        if profile.prediction_binning is not None:
            prediction = NumericHistogram(profile.prediction_binning)
        elif profile.prediction_vocabulary is not None:
            prediction = CategoricalCounts(profile.prediction_vocabulary)
        est = profile.estimation
        return cls(
            start=start,
            n=0,
            numeric={n: NumericHistogram(b) for n, b in profile.binnings.items()},
            categorical={n: CategoricalCounts(v) for n, v in profile.vocabularies.items()},
            reservoir=Reservoir(reservoir_width(profile), capacity, seed=int(start) & 0xFFFFFFFF),
            quality=quality,
            prediction=prediction,
            score=NumericHistogram(profile.score_binning) if profile.score_binning else None,
            cbpe=CBPEState(est.cbpe) if est.cbpe is not None else None,
            reconstruction=_reconstruction_state(profile),
            rich=RichBucket.empty(profile.rich, start, capacity) if profile.rich else None,
        )

    def merge(self, other: Bucket) -> Bucket:
        self.flush()
        other.flush()
        self.n += other.n
        for name, h in other.numeric.items():
            self.numeric[name].merge(h)
        for name, c in other.categorical.items():
            self.categorical[name].merge(c)
        self.reservoir.merge(other.reservoir)
        self.quality.merge(other.quality)  # type: ignore[arg-type]
        if self.prediction is not None and other.prediction is not None:
            self.prediction.merge(other.prediction)  # type: ignore[arg-type]
        if self.score is not None and other.score is not None:
            self.score.merge(other.score)
        self.labelled += other.labelled
        if self.cbpe is not None and other.cbpe is not None:
            self.cbpe.merge(other.cbpe)
        if self.reconstruction is not None and other.reconstruction is not None:
            self.reconstruction.merge(other.reconstruction)
        if self.rich is not None and other.rich is not None:
            self.rich.merge(other.rich)
        return self

    def copy(self) -> Bucket:
        self.flush()
        return Bucket(
            start=self.start,
            n=self.n,
            numeric={k: v.copy() for k, v in self.numeric.items()},
            categorical={k: v.copy() for k, v in self.categorical.items()},
            reservoir=self.reservoir.copy(),
            quality=self.quality.copy(),
            prediction=self.prediction.copy() if self.prediction is not None else None,
            score=self.score.copy() if self.score is not None else None,
            labelled=self.labelled,
            cbpe=self.cbpe.copy() if self.cbpe is not None else None,
            reconstruction=self.reconstruction.copy() if self.reconstruction is not None else None,
            rich=self.rich.copy() if self.rich is not None else None,
        )

    # -- updates -----------------------------------------------------------------------------

    def add_rows(
        self,
        profile: Profile,
        batch: Batch,
        rows: slice | np.ndarray,
        predicted: np.ndarray | None = None,
    ) -> None:
        """Add the selected rows of ``batch`` (features, predictions, scores; ``predicted``:
        the batch's predicted class indices, for CBPE). The sketches and the reservoir take
        them when the buffer is full or the bucket is read (the reconstruction state's
        reservoir at once)."""
        n = _count(rows, batch.n)
        if n == 0:
            return
        self.n += n
        columns = [batch.numeric[name][rows] for name in profile.schema.numerical]
        for name in profile.schema.categorical:
            if name in self.categorical:
                strings = batch.categorical[name][rows]
                codes = category_codes(profile.vocabularies[name], strings)
                missing = batch.categorical_missing[name][rows]
                if missing.any():
                    codes[missing] = np.nan
                columns.append(codes)
            else:
                columns.append(np.full(n, np.nan))
        if profile.estimation.dle is not None:  # DLE scores the reservoir: the prediction too
            columns.append(
                batch.prediction[rows] if batch.prediction is not None else np.full(n, np.nan)
            )
        matrix: np.ndarray | None = None
        if self.reconstruction is not None:  # every row goes to the reconstruction state
            matrix = np.column_stack(columns)
            self.reservoir.update(matrix)
        elif columns:  # at the flush, with the sketches: only the rows taken are assembled
            self._reservoir_buffer.append((columns, n))
        else:  # no tabular feature (texts, embeddings only)
            self.reservoir.update(np.empty((n, 0)))
        if self.rich is not None and profile.rich is not None:
            self.rich.add(profile.rich, batch, rows)
        self._buffer.append((batch, rows))
        self._buffer_estimation(profile, batch, rows, matrix, predicted)
        self._buffered += n
        if self._buffered >= FLUSH_ROWS:
            self.flush()

    def _buffer_estimation(
        self,
        profile: Profile,
        batch: Batch,
        rows: slice | np.ndarray,
        matrix: np.ndarray | None,
        predicted: np.ndarray | None,
    ) -> None:
        scored = self.cbpe is not None and predicted is not None and batch.score is not None
        if self.reconstruction is None and not scored:
            return
        self._estimation_buffer.append(
            (
                matrix[:, : profile.schema.tabular_width] if matrix is not None else None,
                predicted[rows] if scored else None,  # type: ignore[index]
                batch.score[rows] if scored else None,  # type: ignore[index]
            )
        )

    def _flush_estimation(self) -> None:
        parts, self._estimation_buffer = self._estimation_buffer, []
        if self.reconstruction is not None:
            self.reconstruction.update(np.concatenate([m for m, _, _ in parts if m is not None]))
        scored = [(p, s) for _, p, s in parts if p is not None]
        if self.cbpe is not None and scored:
            self.cbpe.update(
                np.concatenate([p for p, _ in scored]), np.concatenate([s for _, s in scored])
            )

    def flush(self) -> None:
        """Apply buffered rows to the sketches."""
        if self._estimation_buffer:
            self._flush_estimation()
        if self._reservoir_buffer:
            pending, self._reservoir_buffer = self._reservoir_buffer, []
            self.reservoir.update_parts(pending)
        if not self._buffer:
            return
        parts, self._buffer, self._buffered = self._buffer, [], 0

        def gather(get) -> np.ndarray:
            return np.concatenate([get(b)[r] for b, r in parts])

        for name, hist in self.numeric.items():
            hist.update_parts([b.numeric[name][r] for b, r in parts])
        for name, counts in self.categorical.items():
            strings = gather(lambda b, name=name: b.categorical[name])
            missing = gather(lambda b, name=name: b.categorical_missing[name])
            counts.update(strings[~missing] if missing.any() else strings)
        predictions = [b.prediction[r] for b, r in parts if b.prediction is not None]
        if predictions and self.prediction is not None:
            self.prediction.update(np.concatenate(predictions))
        scores = [b.score[r] for b, r in parts if b.score is not None and b.score.ndim == 1]
        if scores and self.score is not None:
            self.score.update(np.concatenate(scores))

    def add_classified(
        self, t_idx: np.ndarray, p_idx: np.ndarray, proba: np.ndarray | None
    ) -> None:
        assert isinstance(self.quality, ClassificationState)
        if t_idx.size == 0:
            return
        self.quality.update(t_idx, p_idx, proba)
        self.labelled += int(t_idx.size)

    def add_regression(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        assert isinstance(self.quality, RegressionState)
        if y_true.size == 0:
            return
        self.quality.update(y_true, y_pred)
        self.labelled += int(y_true.size)

    # -- snapshots -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        self.flush()
        return {
            "start": self.start,
            "n": self.n,
            "numeric": {k: v.to_dict() for k, v in self.numeric.items()},
            "categorical": {k: v.to_dict() for k, v in self.categorical.items()},
            "reservoir": self.reservoir.to_dict(),
            "quality": self.quality.to_dict(),
            "prediction": self.prediction.to_dict() if self.prediction is not None else None,
            "score": self.score.to_dict() if self.score is not None else None,
            "labelled": self.labelled,
            "cbpe": self.cbpe.to_dict() if self.cbpe is not None else None,
            "reconstruction": (
                self.reconstruction.to_dict() if self.reconstruction is not None else None
            ),
            "rich": self.rich.to_dict() if self.rich is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], profile: Profile) -> Bucket:
        quality: ClassificationState | RegressionState
        if profile.class_index is None:
            quality = RegressionState.from_dict(d["quality"])
        else:
            quality = ClassificationState.from_dict(d["quality"])
        prediction: NumericHistogram | CategoricalCounts | None = None
        if d.get("prediction") is not None:
            if profile.prediction_binning is not None:
                prediction = NumericHistogram.from_dict(d["prediction"], profile.prediction_binning)
            elif profile.prediction_vocabulary is not None:
                prediction = CategoricalCounts.from_dict(
                    d["prediction"], profile.prediction_vocabulary
                )
        score = None
        if d.get("score") is not None and profile.score_binning is not None:
            score = NumericHistogram.from_dict(d["score"], profile.score_binning)
        est = profile.estimation
        return cls(
            start=float(d["start"]),
            n=int(d["n"]),
            numeric={
                k: NumericHistogram.from_dict(v, profile.binnings[k])
                for k, v in d["numeric"].items()
            },
            categorical={
                k: CategoricalCounts.from_dict(v, profile.vocabularies[k])
                for k, v in d["categorical"].items()
            },
            reservoir=Reservoir.from_dict(_with_width(d["reservoir"], reservoir_width(profile))),
            quality=quality,
            prediction=prediction,
            score=score,
            labelled=int(d.get("labelled", 0)),
            cbpe=(_restored(CBPEState, d.get("cbpe"), est.cbpe) if est.cbpe is not None else None),
            reconstruction=(
                _restored(ReconstructionState, d.get("reconstruction"), est.reconstruction)
                if _reconstruction_state(profile) is not None
                else None
            ),
            rich=_rich_from_dict(d, profile),
        )


def reservoir_width(profile: Profile) -> int:
    """Columns of a bucket's reservoir: the tabular features (numerical, then categorical),
    and the prediction when DLE scores it."""
    schema = profile.schema
    return len(schema.numerical) + len(schema.categorical) + (profile.estimation.dle is not None)


def _reconstruction_state(profile: Profile) -> ReconstructionState | None:
    est = profile.estimation
    if est.multivariate != "pca-reconstruction" or est.reconstruction is None:
        return None
    return ReconstructionState(est.reconstruction)


def _with_width(d: dict[str, Any], width: int) -> dict[str, Any]:
    """A stored reservoir made with or without the prediction column, fitted to ``width`` (a
    restart that turned DLE on or off keeps the sample)."""
    have = int(d["n_features"])
    if have == width:
        return d
    rows = np.asarray(d["rows"], dtype=np.float64).reshape(-1, have)
    if width < have:
        rows = rows[:, :width]
    else:
        rows = np.column_stack([rows, np.full((rows.shape[0], width - have), np.nan)])
    return {**d, "n_features": width, "rows": rows}


def _restored(cls: Any, d: dict[str, Any] | None, model: Any) -> Any:
    """A stored estimation state, or an empty one when there is none or it was made by a
    model of another shape (the estimate then covers the records counted since)."""
    if d is not None:
        try:
            return cls.from_dict(d, model)
        except (KeyError, TypeError, ValueError):
            pass
    return cls(model)


def _rich_from_dict(d: dict[str, Any], profile: Profile) -> RichBucket | None:
    if profile.rich is None:
        return None
    if d.get("rich") is None:  # written before this profile had texts or measures
        raise ValueError("bucket has no texts, embeddings or measures for this profile")
    return RichBucket.from_dict(d["rich"], profile.rich)


def _count(rows: slice | np.ndarray, n: int) -> int:
    if isinstance(rows, slice):
        return len(range(*rows.indices(n)))
    return int(rows.sum()) if rows.dtype == bool else int(rows.size)


@dataclass
class Totals:
    """Monotonic counters (exported as *_total); survive restarts through snapshots."""

    records: int = 0
    late_records: int = 0
    labels_matched: int = 0
    labels_unmatched: int = 0
    labels_expired: int = 0
    labels_inline: int = 0
    labelled: int = 0
    correct: int = 0
    last_record_at: float = 0.0
    last_label_at: float = 0.0
    texts_truncated: dict[str, int] = field(default_factory=dict)  # by text feature


@dataclass
class WindowState:
    """The window (buckets by slot index), the pending predictions, and the totals."""

    profile: Profile
    size: float
    n_buckets: int
    reservoir_capacity: int
    label_ttl: float
    max_pending: int
    buckets: dict[int, Bucket] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)
    #: Predictions waiting for labels: in process, or shared (monitor_worker.store.shared).
    pending: Any = None
    #: Slots written since the last :meth:`take_dirty` (what a shared store must be sent).
    dirty: set[int] = field(default_factory=set)
    _pending_checked: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        if self.pending is None:
            self.pending = PendingPredictions(self.max_pending, self.label_ttl, self.proba_width)

    @property
    def proba_width(self) -> int:
        index = self.profile.class_index
        return 0 if index is None else (1 if index.binary else len(index.classes))

    def take_dirty(self) -> dict[int, Bucket]:
        """The buckets written since the last call (still in the window)."""
        out = {s: self.buckets[s] for s in self.dirty if s in self.buckets}
        self.dirty = set()
        return out

    def oldest_slot(self, now: float) -> int:
        return self._slot(now) - self.n_buckets + 1

    def current_slot(self, now: float) -> int:
        return self._slot(now)

    @property
    def width(self) -> float:
        return self.size / self.n_buckets

    def _slot(self, t: float) -> int:
        return math.floor(t / self.width)

    def _bucket(self, slot: int) -> Bucket:
        """The bucket of ``slot``, to write to (it is marked dirty)."""
        self.dirty.add(slot)
        b = self.buckets.get(slot)
        if b is None:
            b = Bucket.empty(self.profile, slot * self.width, self.reservoir_capacity)
            self.buckets[slot] = b
        return b

    def expire(self, now: float) -> None:
        oldest = self._slot(now) - self.n_buckets + 1
        for slot in [s for s in self.buckets if s < oldest]:
            del self.buckets[slot]
        if abs(now - self._pending_checked) >= 1.0:  # a scan of the ring: once a second
            self._pending_checked = now
            self.pending.expire(now)
            self.totals.labels_expired = self.pending.expired

    # -- ingestion -----------------------------------------------------------------------------

    def add(self, batch: Batch, now: float) -> None:
        self.expire(now)
        if self.profile.rich is not None:  # text descriptors, once per batch
            self.profile.rich.describe(batch, self.totals.texts_truncated)
        self.totals.records += batch.n
        self.totals.last_record_at = now
        current = self._slot(now)
        index = self.profile.class_index
        predicted = (
            None
            if index is None or batch.prediction is None
            else index.indices(batch.prediction, "prediction")
        )
        if batch.timestamps is None:
            self._bucket(current).add_rows(self.profile, batch, slice(None), predicted)
        else:
            slots = np.floor(batch.timestamps / self.width).astype(np.int64)
            slots = np.minimum(slots, current)  # clocks ahead of ours count as now
            late = slots <= current - self.n_buckets
            self.totals.late_records += int(late.sum())
            for slot in np.unique(slots[~late]):
                self._bucket(int(slot)).add_rows(self.profile, batch, slots == slot, predicted)
        self._quality_and_pending(batch, now, predicted)

    def _quality_and_pending(self, batch: Batch, now: float, predicted: np.ndarray | None) -> None:
        if batch.prediction is None:
            return
        index = self.profile.class_index
        predictions = predicted if predicted is not None else batch.prediction
        if batch.label is not None:
            bucket = self._bucket(self._slot(now))
            if index is not None:
                truth = index.indices(batch.label, "label")
                bucket.add_classified(truth, predictions, batch.score)
                self.totals.correct += int((truth == predictions).sum())
            else:
                bucket.add_regression(batch.label, predictions)
            self.totals.labels_inline += batch.n
            self.totals.labelled += batch.n
            self.totals.last_label_at = now
        elif batch.ids is not None:
            self.pending.add(batch.ids, predictions, batch.score, now)
            self.totals.labels_expired = self.pending.expired

    def add_ground_truth(
        self,
        truth: GroundTruth,
        now: float,
        route: Callable[[int], WindowState | None] | None = None,
    ) -> tuple[int, int]:
        """Join late labels to pending predictions by id. Returns (matched, unmatched).
        ``route``: the window of a pending prediction's window code (monitor_worker.windows),
        when other windows share these pending predictions; code 0 is this window. A label
        joins the quality of the window that holds its prediction, in its current bucket."""
        self.expire(now)
        if route is None:  # no other window: the store's pending predictions have no codes
            idx, predictions, probas = self.pending.take(truth.ids, now)
            codes = np.zeros(idx.size, dtype=np.int64)
        else:
            idx, predictions, probas, codes = self.pending.take_keyed(truth.ids, now)
        matched = int(idx.size)
        unmatched = len(truth.ids) - matched
        self.totals.labels_matched += matched
        self.totals.labels_unmatched += unmatched
        self.totals.labels_expired = self.pending.expired
        if not matched:
            return matched, unmatched
        if route is None or not codes.any():
            self.add_joined(truth.labels[idx], predictions, probas, now)
            return matched, unmatched
        for code in np.unique(codes).tolist():
            target = self if code == 0 else route(int(code))
            mine = codes == code
            if target is None:  # its window's key is unknown here: the quality is lost
                log.warning("%d labels joined predictions of an unknown window", mine.sum())
                continue
            target.add_joined(truth.labels[idx[mine]], predictions[mine], probas[mine], now)
        return matched, unmatched

    def add_joined(
        self, labels: np.ndarray, predictions: np.ndarray, probas: np.ndarray, now: float
    ) -> None:
        """Labels joined with their pending predictions (taken from :attr:`pending`, here or
        by the service for the window they came from) into the quality of the current bucket."""
        bucket = self._bucket(self._slot(now))
        index = self.profile.class_index
        if index is not None:
            t_idx = index.indices(labels, "labels[].label")
            p_idx = predictions.astype(np.int64)
            proba = probas if np.isfinite(probas).all() else None
            if proba is not None and index.binary:
                proba = proba[:, 0]
            bucket.add_classified(t_idx, p_idx, proba)
            self.totals.correct += int((t_idx == p_idx).sum())
        else:
            bucket.add_regression(labels, predictions)
        self.totals.labelled += int(labels.size)
        self.totals.last_label_at = now

    # -- reading -------------------------------------------------------------------------------

    def merged(self, now: float) -> Bucket:
        """The whole window as one bucket (a new object; the buckets are not changed)."""
        self.expire(now)
        total = Bucket.empty(
            self.profile,
            (self._slot(now) - self.n_buckets + 1) * self.width,
            self.reservoir_capacity,
        )
        for slot in sorted(self.buckets):
            total.merge(self.buckets[slot])
        return total
