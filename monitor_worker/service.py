"""The worker's state owner: applies batches in order, evaluates the window, answers status,
saves and restores snapshots. No HTTP here (see :mod:`server`); every method that touches
the window runs on the single ingest thread, so the state needs no locks."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from mm_api import status as doc
from mm_api.alerts import MonitorRef, alert_definitions
from mm_api.alerts import evaluate as firing
from mm_api.durations import parse_duration
from mm_api.worker_config import WorkerConfig

from .evaluate import Evaluation, evaluate
from .ingest import (
    Batch,
    KServePairs,
    PayloadError,
    TypedDecoder,
    check_event_body,
    event_kind,
    join,
    parse_columns,
    parse_inference_request,
    parse_inference_response,
    parse_labels,
    parse_records,
    response_columns,
)
from .profile import Profile
from .samples import evaluation_samples
from .snapshot import read_snapshot, write_snapshot
from .window import Bucket, Totals, WindowState

log = logging.getLogger(__name__)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise PayloadError("body", f"not valid JSON: {e}") from None


class MonitorService:
    def __init__(
        self, config: WorkerConfig, profile: Profile, clock: Callable[[], float] = time.time
    ):
        self.config = config
        self.profile = profile
        self.clock = clock
        reservoir = max(config.outliers.sample_size, 1000)
        self.state = WindowState(
            profile=profile,
            size=parse_duration(config.window.size),
            n_buckets=config.window.buckets,
            reservoir_capacity=reservoir,
            label_ttl=parse_duration(config.labels.ttl),
            max_pending=config.labels.max_pending,
        )
        self.alerts = alert_definitions(
            MonitorRef(config.monitor.namespace, config.monitor.name, config.model.name), config
        )
        self.evaluation: Evaluation | None = None
        self.snapshot_at: float | None = None
        self.pairs = KServePairs()
        self._typed = TypedDecoder(profile.schema)

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
        matched, unmatched = self.state.add_ground_truth(truth, self.clock())
        return {"accepted": len(truth.ids), "matched": matched, "unmatched": unmatched}

    def ingest_cloudevent(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """One half of a KServe payload-logger pair (binary mode); joined on ``ce-id``.
        ``headers``: the ``ce-*`` headers and ``content-type``, lower case. A refused half
        takes its partner with it (:meth:`KServePairs.refuse`)."""
        ce_id, kind = event_kind(headers)
        now = self.clock()
        for request in self.pairs.expire(now):
            self.state.add(request, now)  # its response never came: still the model's inputs
        schema = self.profile.schema
        half: Any
        try:
            check_event_body(headers.get("content-type", ""), body)
            parsed = _json(body)
            if kind == "request":
                half = parse_inference_request(parsed, schema)
            else:
                half = parse_inference_response(parsed, schema)
                response_columns(half, schema)  # refused now, not when its request comes
        except PayloadError:
            self.pairs.refuse(ce_id, now)
            raise
        pair = self.pairs.add(ce_id, kind, half, now)
        if pair is None:
            return {"accepted": 1, "joined": False}
        batch = join(ce_id, *pair, schema)
        self._check_classes(batch)
        self.state.add(batch, now)
        return {"accepted": 1, "joined": True, "records": batch.n}

    def _check_classes(self, batch: Batch) -> None:
        index = self.profile.class_index
        if index is None or index.binary:
            return
        if batch.prediction is not None:
            index.indices(batch.prediction, "prediction")
        if batch.label is not None:
            index.indices(batch.label, "label")

    # -- evaluation ---------------------------------------------------------------------------

    def window_summary(self) -> Bucket:
        """A merged copy of the window (ingest thread); evaluation can then run elsewhere."""
        return self.state.merged(self.clock())

    def evaluate(self, bucket: Bucket) -> Evaluation:
        start = time.perf_counter()
        ev = evaluate(self.config, self.profile, bucket, self.clock())
        ev.violations = firing(self.alerts, evaluation_samples(ev))
        ev.duration = time.perf_counter() - start
        self.evaluation = ev
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
        )
        status.outliers = doc.OutlierInfo(
            ratio=ev.outlier_ratio,
            scored=ev.outliers_scored,
            max_ratio=cfg.outliers.max_ratio,
            method=cfg.outliers.method,
        )
        status.violations = [doc.Violation(**dataclasses.asdict(v)) for v in ev.violations]
        status.evaluation_seconds = ev.duration
        return status

    # -- snapshots ----------------------------------------------------------------------------

    def snapshot_document(self) -> dict[str, Any]:
        return {
            "fingerprint": self.profile.fingerprint,
            "buckets": {str(slot): b.to_dict() for slot, b in self.state.buckets.items()},
            "pending": self.state.pending.to_dict(),
            "totals": dataclasses.asdict(self.state.totals),
            "events": self.pairs.to_list(),
        }

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
            totals = Totals(**snapshot["totals"])
            pairs.load(snapshot.get("events", []), self.profile.schema)
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
        self.state.expire(self.clock())
        log.info(
            "restored snapshot: %d records so far, %d buckets, %d pending labels",
            totals.records,
            len(buckets),
            len(self.state.pending),
        )
        return True
