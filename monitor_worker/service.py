"""The worker's state owner: applies batches in order, evaluates the window, answers status,
saves and restores snapshots. No HTTP here (see :mod:`server`); every method that touches
the window runs on the single ingest thread, so the state needs no locks."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mm_api import status as doc
from mm_api.alerts import MonitorRef, alert_definitions
from mm_api.alerts import evaluate as firing
from mm_api.durations import parse_duration
from mm_api.worker_config import WorkerConfig

from .evaluate import Evaluation, evaluate
from .ingest import (
    Batch,
    EventKey,
    KServePairs,
    PayloadError,
    TypedDecoder,
    check_event_body,
    decode_half,
    encode_half,
    event_key,
    event_kind,
    join,
    parse_columns,
    parse_inference_request,
    parse_inference_response,
    parse_labels,
    parse_records,
    response_columns,
)
from .ingest.body import parse_json
from .profile import Profile
from .samples import evaluation_samples, keyed_samples
from .snapshot import pack, read_snapshot, write_snapshot
from .store.shared import SharedPending
from .store.work import FlushResult, FlushWork, StoreUnavailable

if TYPE_CHECKING:
    from .store.redis_store import RedisStore
from .window import Bucket, Totals, WindowState
from .windows import KeyedPending, KeyedWindows, keyed_window_key, window_code

log = logging.getLogger(__name__)


def _json(body: bytes) -> Any:
    return parse_json(body)  # names the field of a NaN or Infinity, refused


class MonitorService:
    def __init__(
        self,
        config: WorkerConfig,
        profile: Profile,
        clock: Callable[[], float] = time.time,
        store: RedisStore | None = None,
    ):
        self.config = config
        self.profile = profile
        self.clock = clock
        #: The shared store of replicas, or None: the state lives in this process alone.
        self.store = store
        self.state = self.new_window(pending=SharedPending(store) if store is not None else None)
        #: The windows of KServe's canary endpoint and of segments (monitor_worker.windows),
        #: in process only; their latest evaluations, and their merged copies to evaluate.
        self.keyed = KeyedWindows(self._keyed_window, config.kserve.segments.max_values)
        self.keyed_evaluations: dict[EventKey, Evaluation] = {}
        self._keyed_summaries: list[tuple[EventKey, Bucket]] = []
        self._keyed_ignored = False
        #: KServe halves waiting for the next flush (shared store only).
        self.halves: list[tuple[str, str, bytes, float]] = []
        self.pairs_refused = 0
        self.alerts = alert_definitions(
            MonitorRef(config.monitor.namespace, config.monitor.name, config.model.name), config
        )
        self.evaluation: Evaluation | None = None
        self.snapshot_at: float | None = None
        self.pairs = KServePairs()
        self._typed = TypedDecoder(profile.schema)
        #: The reference in use and its reloads (:class:`monitor_worker.loader.ReferenceState`),
        #: set by the loader.
        self.reference: Any = None

    def carry_over(self, old: MonitorService) -> None:
        """Take what outlives a new reference from the service it replaces (ingest thread):
        the totals, and the predictions still awaiting labels when their shape is unchanged.
        The window starts fresh: its sketches were binned against the old reference."""
        self.state.totals = old.state.totals
        same_classes = old.profile.class_index == self.profile.class_index
        if self.store is None and old.store is None and same_classes:
            self.state.pending = old.state.pending  # class indices mean the same classes
        self.pairs = old.pairs
        self.halves = old.halves + self.halves
        # Canary and segment windows start fresh too; the segments admitted and the keys of
        # the windows that pending predictions name stay, so their labels find a window.
        self.keyed.values = old.keyed.values
        self.keyed.keys = dict(old.keyed.keys)

    def new_window(self, pending: Any = None, totals: Totals | None = None) -> WindowState:
        """A window with the monitor's profile and bounds (the main one, or a keyed one)."""
        config = self.config
        reservoir = max(config.outliers.sample_size, 1000)
        if self.profile.estimation.dle is not None:  # DLE scores the reservoir's uniform sample
            reservoir = max(reservoir, config.estimation.sample_size)
        return WindowState(
            profile=self.profile,
            size=parse_duration(config.window.size),
            n_buckets=config.window.buckets,
            reservoir_capacity=reservoir,
            label_ttl=parse_duration(config.labels.ttl),
            max_pending=config.labels.max_pending,
            totals=totals if totals is not None else Totals(),
            pending=pending,
        )

    def _keyed_window(self, key: EventKey) -> WindowState:
        """A keyed window: the main window's totals and pending predictions, its own buckets."""
        pending = KeyedPending(self.state.pending, window_code(key))
        return self.new_window(pending=pending, totals=self.state.totals)

    def window_of(self, key: EventKey) -> WindowState:
        return self.state if key.main else self.keyed.window(key)

    # -- ingestion (ingest thread) ------------------------------------------------------------

    def ingest_records(self, body: bytes) -> dict[str, Any]:
        batch = self._typed.decode(body)
        if batch is None:  # not a plain batch: the general parser accepts or names the problem
            parsed = _json(body)
            schema = self.profile.schema
            if isinstance(parsed, dict) and "columns" in parsed:
                batch = parse_columns(parsed, schema)
            else:
                batch = parse_records(parsed, schema)
        self._check_classes(batch)
        self.state.add(batch, self.clock())
        return {"accepted": batch.n}

    def ingest_labels(self, body: bytes) -> dict[str, Any]:
        truth = parse_labels(_json(body), self.profile.schema)
        if self.profile.class_index is not None and not self.profile.class_index.binary:
            self.profile.class_index.indices(truth.labels, "labels[].label")
        # Routed by window code once a keyed window has held a prediction (in process only).
        route = self.keyed.of_code if self.keyed.keys else None
        matched, unmatched = self.state.add_ground_truth(truth, self.clock(), route)
        return {"accepted": len(truth.ids), "matched": matched, "unmatched": unmatched}

    def ingest_cloudevent(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """One half of a KServe payload-logger pair (binary mode); joined on ``ce-id``.
        ``headers``: the ``ce-*`` headers and ``content-type``, lower case. A refused half
        takes its partner with it (:meth:`KServePairs.refuse`). Its ``ce-endpoint`` and
        allow-listed segment (:func:`event_key`) choose its window (monitor_worker.windows)."""
        ce_id, kind = event_kind(headers)
        now = self.clock()
        for key, request in self.pairs.expire(now):
            # its response never came: still the model's inputs
            self.window_of(key).add(request, now)
        schema = self.profile.schema
        half: Any
        try:
            key = event_key(headers, self.config.kserve.segments)
            check_event_body(headers.get("content-type", ""), body)
            parsed = _json(body)
            if kind == "request":
                half = parse_inference_request(parsed, schema)
            else:
                half = parse_inference_response(parsed, schema)
                response_columns(half, schema)  # refused now, not when its request comes
            if self.store is None:  # a segment beyond kserve.segments.maxValues: 422
                self.keyed.admit(key)  # last: a half refused for its body admits nothing
        except PayloadError:
            # In-process pairing drops the waiting partner; with a shared store the partner
            # (on any replica) ages out of the store instead (docs/failure-modes.md).
            self.pairs.refuse(ce_id, now)
            raise
        if self.store is not None:
            if not key.main and not self._keyed_ignored:
                self._keyed_ignored = True
                log.warning(
                    "events of endpoint %s, segment %r go to the main window: keyed windows "
                    "are not kept with a shared store (docs/kserve.md)",
                    key.endpoint,
                    key.segment_label,
                )
            # Paired in the store at the next flush, with a half any replica took.
            self.halves.append(
                (ce_id, "q" if kind == "request" else "r", encode_half(kind, half), now)
            )
            return {"accepted": 1, "joined": False, "queued": True}
        pair = self.pairs.add(ce_id, kind, half, now, key)
        if pair is None:
            return {"accepted": 1, "joined": False}
        request, response, key = pair
        batch = join(ce_id, request, response, schema)
        self._check_classes(batch)
        self.window_of(key).add(batch, now)
        return {"accepted": 1, "joined": True, "records": batch.n}

    def _check_classes(self, batch: Batch) -> None:
        index = self.profile.class_index
        if index is None or index.binary:
            return
        if batch.prediction is not None:
            index.indices(batch.prediction, "prediction")
        if batch.label is not None:
            index.indices(batch.label, "label")

    # -- the shared store (ingest thread, except where noted) -------------------------------

    def backlog(self) -> int:
        """Predictions and halves accepted but not yet in the store."""
        if self.store is None:
            return 0
        return len(self.state.pending.ids) + len(self.halves)

    def take_flush_work(self) -> FlushWork:
        """This replica's changes since the last flush, handed to the store thread."""
        ids, rows = self.state.pending.drain()
        halves, self.halves = self.halves, []
        return FlushWork(
            parts={slot: pack(b.to_dict()) for slot, b in self.state.take_dirty().items()},
            pending_ids=ids,
            pending_rows=rows,
            halves=halves,
            totals=dataclasses.asdict(self.state.totals),
        )

    def return_flush_work(self, work: FlushWork) -> None:
        """A flush failed: keep its work for the next one. Every part of the window is sent
        again then, in case the store lost what it had (restarted without persistence)."""
        self.state.dirty |= set(work.parts) | set(self.state.buckets)
        self.state.pending.restore(work.pending_ids, work.pending_rows)
        self.halves = work.halves + self.halves

    def apply_flush_result(self, result: FlushResult) -> None:
        """Pairs completed in the store, expired requests and predictions, into the window."""
        now = self.clock()
        schema = self.profile.schema
        for ce_id, request, response in result.pairs:
            try:
                batch = join(
                    ce_id,
                    decode_half("request", request, schema),  # type: ignore[arg-type]
                    decode_half("response", response, schema),  # type: ignore[arg-type]
                    schema,
                )
                self._check_classes(batch)
            except (PayloadError, ValueError, KeyError) as e:
                self.pairs_refused += 1
                log.warning("KServe pair %s refused at its join: %s", ce_id, e)
                continue
            self.state.add(batch, now)
        for blob in result.expired_requests:
            self.state.add(decode_half("request", blob, schema), now)  # type: ignore[arg-type]
        pending = self.state.pending
        pending.expired += result.pending_expired
        pending.stored = result.pending_total
        self.state.totals.labels_expired = pending.expired

    def with_other_replicas(self, bucket: Bucket) -> Bucket:
        """``bucket`` (this replica's window) merged with every other replica's parts
        (evaluator thread). Without a store, or while it is unreachable: ``bucket`` alone."""
        if self.store is None:
            return bucket
        now = self.clock()
        slots = range(self.state.oldest_slot(now), self.state.current_slot(now) + 1)
        try:
            parts = self.store.other_parts(slots)
        except StoreUnavailable as e:
            log.warning("evaluating this replica's part of the window only: %s", e)
            return bucket
        for documents in parts.values():
            for d in documents:
                bucket.merge(Bucket.from_dict(d, self.profile))
        return bucket

    # -- evaluation ---------------------------------------------------------------------------

    def window_summary(self) -> Bucket:
        """A merged copy of the window (ingest thread); evaluation can then run elsewhere.
        The keyed windows' copies are kept for :meth:`evaluate` (idle ones are dropped)."""
        now = self.clock()
        self.keyed.drop_idle(now)
        self._keyed_summaries = [(key, w.merged(now)) for key, w in self.keyed]
        return self.state.merged(now)

    def evaluate(self, bucket: Bucket) -> Evaluation:
        """Evaluate the main window's ``bucket``, and the keyed windows' copies taken by the
        last :meth:`window_summary` (their alerts carry ``kserve_endpoint`` and ``segment``)."""
        start = time.perf_counter()
        ev = evaluate(self.config, self.profile, bucket, self.clock())
        ev.violations = firing(self.alerts, evaluation_samples(ev))
        keyed = {}
        for key, summary in self._keyed_summaries:
            kev = evaluate(self.config, self.profile, summary, self.clock())
            kev.violations = firing(self.alerts, keyed_samples(key, kev))
            keyed[key] = kev
        ev.duration = time.perf_counter() - start
        self.evaluation, self.keyed_evaluations = ev, keyed
        return ev

    def status_document(self) -> dict[str, Any]:
        return self.status().to_json_dict()

    def status(self) -> doc.WorkerStatus:
        ev = self.evaluation
        cfg = self.config
        status = doc.WorkerStatus(
            monitor=doc.MonitorIdentity(name=cfg.monitor.name, namespace=cfg.monitor.namespace),
            model=doc.ModelIdentity(name=cfg.model.name, task=cfg.model.task),
            features=[
                doc.FeatureInfo(name=f.name, type=f.type) for f in self.profile.schema.features
            ],
            totals=doc.Totals(**dataclasses.asdict(self.state.totals)),
            pending_labels=len(self.state.pending),
            window=doc.WindowInfo(size=cfg.window.size, records=0, sufficient=False),
        )
        if self.store is not None:
            status.store = self.store_status()
        if self.reference is not None:
            status.reference = doc.ReferenceInfo(**dataclasses.asdict(self.reference))
        rich = self.profile.rich
        if rich is not None and rich.embeddings is not None:
            status.embedder = doc.EmbedderInfo(**rich.embeddings.info())
        if ev is None:
            return status
        status.evaluated_at = ev.at
        status.window = doc.WindowInfo(
            size=cfg.window.size,
            records=ev.records,
            labelled=ev.labelled,
            min_samples=cfg.window.min_samples,
            sufficient=ev.sufficient,
        )
        status.quality = ev.quality

        def figure(r: Any) -> doc.DriftFigure | None:
            return None if r is None else doc.DriftFigure(**dataclasses.asdict(r))

        status.drift = doc.DriftInfo(
            share=ev.drift_share,
            detected=ev.dataset_drift,
            share_threshold=cfg.drift.share_threshold,
            features={k: doc.DriftFigure(**dataclasses.asdict(v)) for k, v in ev.features.items()},
            prediction=figure(ev.prediction_drift),
            score=figure(ev.score_drift),
            multivariate=(
                doc.MultivariateDriftFigure(**dataclasses.asdict(ev.multivariate))
                if ev.multivariate is not None
                else None
            ),
        )
        status.outliers = doc.OutlierInfo(
            ratio=ev.outlier_ratio,
            scored=ev.outliers_scored,
            max_ratio=cfg.outliers.max_ratio,
            method=cfg.outliers.method,
        )
        if ev.measures:
            status.measures = {
                name: doc.MeasureFigure.model_validate({**v, "count": int(v["count"])})
                for name, v in ev.measures.items()
            }
        violations = [*ev.violations]
        for kev in list(self.keyed_evaluations.values()):
            violations += kev.violations
        status.violations = [doc.Violation(**dataclasses.asdict(v)) for v in violations]
        status.evaluation_seconds = ev.duration
        self._estimation_status(status, ev)
        return status

    def _estimation_status(self, status: doc.WorkerStatus, ev: Evaluation) -> None:
        """``estimation`` (on or off, and why) and ``estimatedQuality`` beside ``quality``."""
        est = self.profile.estimation
        if est.method is None:
            status.estimation = doc.EstimationInfo(enabled=False, reason=est.off_reason)
            return
        status.estimation = doc.EstimationInfo(
            enabled=True,
            method=est.method,
            reason=ev.estimation_note,
            scored_records=ev.estimation_records,
        )
        status.estimated_quality = {
            k: doc.EstimatedFigure(**dataclasses.asdict(v)) for k, v in ev.estimated.items()
        }

    def store_status(self) -> doc.StoreInfo | None:
        if self.store is None:
            return None
        return doc.StoreInfo(
            url=self.store.url,
            replica=self.store.replica,
            reachable=self.store.reachable,
            last_error=self.store.last_error,
            last_flush_at=self.store.last_flush,
            backlog=self.backlog(),
        )

    # -- snapshots ----------------------------------------------------------------------------

    def _restore_keyed(self, data: Any) -> tuple[KeyedWindows, dict[EventKey, dict[int, Bucket]]]:
        """The keyed windows of a snapshot: their segments and keys, and their buckets (put in
        their windows once the main window's totals are in place). Raises as restore expects."""
        keyed = KeyedWindows(self._keyed_window, self.config.kserve.segments.max_values)
        buckets: dict[EventKey, dict[int, Bucket]] = {}
        if not data:
            return keyed, buckets
        keyed.values.load(data["segments"])
        for item in data["keys"]:
            key = keyed_window_key(item)
            keyed.keys[window_code(key)] = key
        for w in data["windows"]:
            buckets[keyed_window_key(w["key"])] = {
                int(k): Bucket.from_dict(v, self.profile) for k, v in w["buckets"].items()
            }
        return keyed, buckets

    def snapshot_document(self) -> dict[str, Any]:
        document = {
            "fingerprint": self.profile.fingerprint,
            "buckets": {str(slot): b.to_dict() for slot, b in self.state.buckets.items()},
            "pending": self.state.pending.to_dict(),
            "totals": dataclasses.asdict(self.state.totals),
            "events": self.pairs.to_list(),
        }
        if self.keyed.keys or self.keyed.values.segments():
            document["keyed"] = self.keyed.to_dict()
        return document

    def save(self, directory: Path) -> None:
        """Write a snapshot (on the ingest thread: the arrays are read, not copied)."""
        write_snapshot(directory, self.snapshot_document())
        self.snapshot_at = self.clock()

    def restore(self, directory: Path) -> bool:
        snapshot = read_snapshot(directory, self.profile.fingerprint)
        if snapshot is None:
            return False
        pairs = KServePairs(self.pairs.ttl, self.pairs.max_unpaired)
        try:
            buckets = {
                int(k): Bucket.from_dict(v, self.profile) for k, v in snapshot["buckets"].items()
            }
            capacity = self.state.reservoir_capacity
            if any(b.reservoir.capacity != capacity for b in buckets.values()):
                raise ValueError(f"its samples hold other than {capacity} rows per bucket")
            totals = Totals(**snapshot["totals"])
            pairs.load(snapshot.get("events", []), self.profile.schema)
            keyed, keyed_buckets = self._restore_keyed(snapshot.get("keyed"))
        except (KeyError, TypeError, ValueError) as e:
            log.warning(
                "snapshot in %s does not fit this worker (%s): starting fresh", directory, e
            )
            return False
        try:
            self.state.pending.load(snapshot["pending"])
        except (KeyError, TypeError, ValueError) as e:
            log.warning("pending labels in the snapshot are unusable (%s): dropped", e)
        self.state.buckets, self.state.totals = buckets, totals
        self.pairs = pairs
        self.keyed = keyed
        for key, kept in keyed_buckets.items():  # made after the totals: they share them
            keyed.window(key).buckets = kept
        self.state.expire(self.clock())
        log.info(
            "restored snapshot: %d records so far, %d buckets, %d pending labels",
            totals.records,
            len(buckets),
            len(self.state.pending),
        )
        return True
