"""The worker's state owner: applies batches in order, evaluates the window, answers status,
saves and restores snapshots. No HTTP here (see :mod:`server`); every method that touches
the window runs on the single ingest thread, so the state needs no locks."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .config import WorkerConfig, parse_duration
from .evaluate import Evaluation, evaluate
from .payload import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    Batch,
    PayloadError,
    TypedDecoder,
    parse_columns,
    parse_inference_request,
    parse_inference_response,
    parse_labels,
    parse_records,
    score_column,
    target_column,
)
from .profile import Profile
from .snapshot import read_snapshot, write_snapshot
from .window import Bucket, Totals, WindowState

log = logging.getLogger(__name__)
CE_TTL = 300.0  # seconds a half of a KServe request/response pair waits for the other
CE_MAX_PENDING = 10_000


@dataclass
class _HalfEvent:
    kind: str  # "request" | "response"
    payload: Any
    at: float


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
        self.evaluation: Evaluation | None = None
        self.snapshot_at: float | None = None
        self._events: OrderedDict[str, _HalfEvent] = OrderedDict()
        self._typed = TypedDecoder(profile.schema)

    # -- ingestion (ingest thread) ------------------------------------------------------------

    def ingest_records(self, body: bytes) -> dict[str, Any]:
        batch = self._typed.decode(body)
        if batch is None:  # not a plain batch: the general parser accepts or names the problem
            doc = _json(body)
            schema = self.profile.schema
            if isinstance(doc, dict) and "columns" in doc:
                batch = parse_columns(doc, schema)
            else:
                batch = parse_records(doc, schema)
        self._check_classes(batch)
        self.state.add(batch, self.clock())
        return {"accepted": batch.n}

    def ingest_labels(self, body: bytes) -> dict[str, Any]:
        labels = parse_labels(_json(body), self.profile.schema)
        if self.profile.class_index is not None and not self.profile.class_index.binary:
            self.profile.class_index.indices(labels.labels, "labels[].label")
        matched, unmatched = self.state.add_labels(labels, self.clock())
        return {"accepted": len(labels.ids), "matched": matched, "unmatched": unmatched}

    def ingest_cloudevent(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """One half of a KServe payload-logger pair (binary mode); joined on ``ce-id``."""
        ce_id = headers.get("ce-id")
        ce_type = headers.get("ce-type", "")
        if not ce_id:
            raise PayloadError("ce-id", "missing CloudEvents header")
        if ce_type not in (REQUEST_TYPE, RESPONSE_TYPE):
            raise PayloadError("ce-type", f"expected {REQUEST_TYPE} or {RESPONSE_TYPE}")
        doc = _json(body)
        now = self.clock()
        self._expire_events(now)
        schema = self.profile.schema
        if ce_type == REQUEST_TYPE:
            half = _HalfEvent("request", parse_inference_request(doc, schema), now)
        else:
            answer = parse_inference_response(doc, schema)
            self._response_columns(*answer)  # refused now, not when its request comes
            half = _HalfEvent("response", answer, now)
        other = self._events.pop(ce_id, None)
        if other is None or other.kind == half.kind:
            self._events[ce_id] = half
            return {"accepted": 1, "joined": False}
        request, response = (half, other) if half.kind == "request" else (other, half)
        batch = self._join(ce_id, request.payload, response.payload)
        self._check_classes(batch)
        self.state.add(batch, now)
        return {"accepted": 1, "joined": True, "records": batch.n}

    def _join(
        self, ce_id: str, batch: Batch, response: tuple[list[Any], list[Any] | None]
    ) -> Batch:
        preds, scores = response
        if len(preds) != batch.n:
            raise PayloadError(
                "predictions", f"{len(preds)} predictions for {batch.n} instances (ce-id {ce_id})"
            )
        batch.prediction, batch.score = self._response_columns(preds, scores)
        batch.ids = [ce_id] if batch.n == 1 else [f"{ce_id}/{i}" for i in range(batch.n)]
        return batch

    def _response_columns(
        self, preds: list[Any], scores: list[Any] | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, scores) of a response half as columns; raises PayloadError."""
        schema = self.profile.schema
        prediction = target_column(preds, schema, "predictions[{i}]")
        score = None
        if scores is not None:
            if schema.multiclass:
                score = score_column(scores, schema, "predictions[{i}]")
            elif scores and isinstance(scores[0], list) and len(scores[0]) == 2:
                score = score_column([s[1] for s in scores], schema, "predictions[{i}]")
        return prediction, score

    def _expire_events(self, now: float) -> None:
        while self._events:
            _key, half = next(iter(self._events.items()))
            if now - half.at < CE_TTL and len(self._events) <= CE_MAX_PENDING:
                break
            self._events.popitem(last=False)
            if half.kind == "request":
                # A request whose response never came still describes the inputs: keep it.
                self.state.add(half.payload, now)

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
        ev.duration = time.perf_counter() - start
        self.evaluation = ev
        return ev

    def status_document(self) -> dict[str, Any]:
        ev = self.evaluation
        cfg = self.config
        doc: dict[str, Any] = {
            "monitor": {"name": cfg.monitor.name, "namespace": cfg.monitor.namespace},
            "model": {"name": cfg.model.name, "task": cfg.model.task},
            "features": [dataclasses.asdict(f) for f in self.profile.schema.features],
            "totals": _camel(dataclasses.asdict(self.state.totals)),
            "pendingLabels": len(self.state.pending),
        }
        if ev is None:
            doc["window"] = {"size": cfg.window.size, "records": 0, "sufficient": False}
            return doc
        doc["evaluatedAt"] = ev.at
        doc["window"] = {
            "size": cfg.window.size,
            "records": ev.records,
            "labelled": ev.labelled,
            "minSamples": cfg.window.min_samples,
            "sufficient": ev.sufficient,
        }
        doc["quality"] = ev.quality
        doc["drift"] = {
            "share": ev.drift_share,
            "detected": ev.dataset_drift,
            "shareThreshold": cfg.drift.share_threshold,
            "features": {k: dataclasses.asdict(v) for k, v in ev.features.items()},
            "prediction": dataclasses.asdict(ev.prediction_drift) if ev.prediction_drift else None,
            "score": dataclasses.asdict(ev.score_drift) if ev.score_drift else None,
        }
        doc["outliers"] = {
            "ratio": ev.outlier_ratio,
            "scored": ev.outliers_scored,
            "maxRatio": cfg.outliers.max_ratio,
            "method": cfg.outliers.method,
        }
        doc["violations"] = [dataclasses.asdict(v) for v in ev.violations]
        doc["evaluationSeconds"] = ev.duration
        return doc

    # -- snapshots ----------------------------------------------------------------------------

    def snapshot_document(self) -> dict[str, Any]:
        return {
            "fingerprint": self.profile.fingerprint,
            "buckets": {str(slot): b.to_dict() for slot, b in self.state.buckets.items()},
            "pending": self.state.pending.to_dict(),
            "totals": dataclasses.asdict(self.state.totals),
            "events": [[key, h.kind, _encode_half(h), h.at] for key, h in self._events.items()],
        }

    def save(self, directory: Path) -> None:
        """Write a snapshot (on the ingest thread: the arrays are read, not copied)."""
        self.saved(write_snapshot(directory, self.snapshot_document()))

    def saved(self, _path: Path) -> None:
        self.snapshot_at = self.clock()

    def restore(self, directory: Path) -> bool:
        doc = read_snapshot(directory, self.profile.fingerprint)
        if doc is None:
            return False
        try:
            buckets = {int(k): Bucket.from_dict(v, self.profile) for k, v in doc["buckets"].items()}
            totals = Totals(**doc["totals"])
            events = OrderedDict(
                (key, _HalfEvent(kind, _decode_half(kind, payload, self), at))
                for key, kind, payload, at in doc.get("events", [])
            )
        except (KeyError, TypeError, ValueError) as e:
            log.warning(
                "snapshot in %s does not fit this worker (%s): starting fresh", directory, e
            )
            return False
        try:
            self.state.pending.load(doc["pending"])
        except (KeyError, TypeError, ValueError) as e:
            log.warning("pending labels in the snapshot are unusable (%s): dropped", e)
        self.state.buckets, self.state.totals = buckets, totals
        self._events = events
        self.state.expire(self.clock())
        log.info(
            "restored snapshot: %d records so far, %d buckets, %d pending labels",
            totals.records,
            len(buckets),
            len(self.state.pending),
        )
        return True


def _encode_half(h: _HalfEvent) -> Any:
    if h.kind == "response":
        return list(h.payload)
    b: Batch = h.payload
    return {
        "numeric": {k: v.tolist() for k, v in b.numeric.items()},
        "categorical": {
            k: [
                None if m else s
                for s, m in zip(v.tolist(), b.categorical_missing[k].tolist(), strict=True)
            ]
            for k, v in b.categorical.items()
        },
    }


def _decode_half(kind: str, payload: Any, service: MonitorService) -> Any:
    if kind == "response":
        return (payload[0], payload[1])
    columns = {**payload["numeric"], **payload["categorical"]}
    return parse_columns({"columns": columns}, service.profile.schema)


def _camel(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        head, *rest = k.split("_")
        out[head + "".join(w.capitalize() for w in rest)] = v
    return out
