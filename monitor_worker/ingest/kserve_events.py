"""The envelope of KServe's payload-logger events (binary-mode CloudEvents): which half of an
inference an event is, which endpoint and segment it belongs to, and the bodies refused whole
before any of them is parsed. Pure functions of the headers and the body; the bodies
themselves are read by :mod:`.kserve`.

Attributes KServe v0.17.0 sets (``pkg/logger/worker.go``): ``ce-id``, ``ce-type``,
``ce-endpoint`` (the predictor pod's ``endpoint`` label: ``default``, ``canary`` or empty),
``ce-metadata`` (JSON of the allow-listed request headers, ``{"X-Team": ["fraud"]}``) and
``ce-annotations`` (JSON of the allow-listed InferenceService annotations)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from mm_api.sections import SegmentSpec

from .batch import PayloadError

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
ENDPOINTS = ("default", "canary")
MAX_SEGMENT_VALUE_LENGTH = 128

#: Why an event was refused whole, as ``modelmonitor_kserve_events_refused_total{reason}``.
STRUCTURED, BATCHED, BINARY_TENSOR = "structured-mode", "batched", "binary-tensor"
NOT_INFERENCE, PARTNER_REFUSED, SEGMENT_LIMIT, INVALID = (
    "not-inference", "partner-refused", "segment-limit", "invalid",
)  # fmt: skip
REFUSAL_REASONS = (
    STRUCTURED, BATCHED, BINARY_TENSOR, NOT_INFERENCE, PARTNER_REFUSED, SEGMENT_LIMIT, INVALID,
)  # fmt: skip


class EventRefused(PayloadError):
    """A KServe event the worker cannot read, refused whole; ``reason`` is one of
    :data:`REFUSAL_REASONS`. Any other PayloadError of an event counts as ``invalid``."""

    def __init__(self, reason: str, field: str, message: str, status: int = 400) -> None:
        super().__init__(field, message, status)
        self.reason = reason


def refusal_reason(error: PayloadError) -> str:
    return error.reason if isinstance(error, EventRefused) else INVALID


def event_kind(headers: Mapping[str, str]) -> tuple[str, str]:
    """(ce-id, "request" | "response") of a binary-mode CloudEvent's headers (lower case)."""
    ce_id = headers.get("ce-id")
    ce_type = headers.get("ce-type", "")
    if not ce_id:
        raise PayloadError("ce-id", "missing CloudEvents header")
    if ce_type not in (REQUEST_TYPE, RESPONSE_TYPE):
        raise PayloadError("ce-type", f"expected {REQUEST_TYPE} or {RESPONSE_TYPE}")
    return ce_id, "request" if ce_type == REQUEST_TYPE else "response"


def check_event_body(content_type: str, body: bytes) -> None:
    """Refuse, before parsing, what KServe can send but the worker does not read: another
    CloudEvents mode, the binary tensor extension, an empty body (a call that is not an
    inference). What passes is JSON or a JSON error naming ``body``."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/cloudevents+json":
        raise EventRefused(
            STRUCTURED, "content-type",
            "structured-mode CloudEvents are not read: send binary mode (the attributes as "
            "ce-* headers, the payload as the body), as KServe's logger does", 415,
        )  # fmt: skip
    if media == "application/cloudevents-batch+json":
        raise EventRefused(
            BATCHED, "content-type",
            "batched CloudEvents are not read: send one event per request, as KServe's logger "
            "does over http(s)", 415,
        )  # fmt: skip
    if not body.strip():
        raise EventRefused(
            NOT_INFERENCE, "body",
            "empty: not an inference (KServe logs every call through its agent, e.g. "
            "GET /v2/models/<model>)",
        )  # fmt: skip
    if media == "application/octet-stream" or _json_then_bytes(body):
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            raise EventRefused(
                BINARY_TENSOR, "body",
                "the Open Inference Protocol's binary tensor extension is not read (KServe's "
                "logger drops the Inference-Header-Content-Length header, so the JSON header "
                "cannot be told from the tensor bytes): send JSON tensors", 415,
            ) from None  # fmt: skip


def _json_then_bytes(body: bytes) -> bool:
    """A JSON object followed by more bytes, whose tensors declare ``binary_data_size``: the
    binary tensor extension sent with a JSON Content-Type."""
    if not body.lstrip().startswith(b"{") or b"binary_data_size" not in body[:65536]:
        return False
    text = body.decode("utf-8", errors="replace").strip()
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return False
    return end < len(text)


def not_an_inference(field: str, message: str) -> EventRefused:
    return EventRefused(NOT_INFERENCE, field, message)


# -- endpoint and segments -----------------------------------------------------------------------


@dataclass(frozen=True)
class EventKey:
    """What an event's figures are kept apart by: KServe's endpoint (``default`` or
    ``canary``) and the segment, ``(key, value)`` pairs in the order the spec lists the keys
    (headers first, then annotations; a key the event lacks is left out)."""

    endpoint: str = "default"
    segment: tuple[tuple[str, str], ...] = ()

    @property
    def main(self) -> bool:
        """The default endpoint without a segment: the monitor's main window, where records
        sent to ``/v1/records`` go too."""
        return self.endpoint == "default" and not self.segment

    @property
    def segment_label(self) -> str:
        """The segment as one stable text, ``X-Team=fraud,tier=gold`` (keys as the spec names
        them, in its order; ``\\``, ``,`` and ``=`` in a value escaped with ``\\``, so two
        segments never read the same); empty for none."""
        return _label(self.segment)

    def to_json(self) -> list:
        return [self.endpoint, [list(kv) for kv in self.segment]]

    @classmethod
    def from_json(cls, data: list) -> EventKey:
        """Inverse of :meth:`to_json`; raises ValueError for anything else."""
        try:
            endpoint, segment = data
            key = cls(str(endpoint), tuple((str(k), str(v)) for k, v in segment))
        except (TypeError, ValueError):
            raise ValueError(f"not an event key: {str(data)[:80]}") from None
        if key.endpoint not in ENDPOINTS:
            raise ValueError(f"not an endpoint: {key.endpoint[:40]!r}")
        return key


#: The main window's key: the default endpoint, no segment.
MAIN = EventKey()


def event_endpoint(headers: Mapping[str, str]) -> str:
    """``ce-endpoint``: ``default`` or ``canary``. Empty (KServe v0.17 copies the predictor
    pod's ``endpoint`` label, which it does not set itself) means ``default``."""
    value = headers.get("ce-endpoint", "").strip().lower() or "default"
    if value not in ENDPOINTS:
        raise PayloadError(
            "ce-endpoint", f"expected default or canary (KServe's endpoints), got {value[:40]!r}"
        )
    return value


def _json_object(headers: Mapping[str, str], name: str) -> dict:
    raw = headers.get(name)
    if raw is None or raw.strip() == "":
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise PayloadError(name, "expected a JSON object") from None
    if not isinstance(doc, dict):
        raise PayloadError(name, "expected a JSON object")
    return doc


def _segment_value(value: object, field: str) -> str:
    # ce-metadata holds each header as a list of its values (Go's http.Header); the first
    # one is the header's value, as a server reading it would take it.
    if isinstance(value, list):
        value = value[0] if value else ""
    if not isinstance(value, str):
        raise PayloadError(field, "expected a string or a list of strings")
    if len(value) > MAX_SEGMENT_VALUE_LENGTH:
        raise EventRefused(
            SEGMENT_LIMIT, field, f"longer than {MAX_SEGMENT_VALUE_LENGTH} characters", 422
        )
    return value


def event_segment(headers: Mapping[str, str], spec: SegmentSpec) -> tuple[tuple[str, str], ...]:
    """The allow-listed ``ce-metadata`` headers (matched case-insensitively, as HTTP header
    names are) and ``ce-annotations`` keys of an event, as ``(key, value)`` pairs keyed by the
    name the spec gives. Keys the spec does not list are ignored, whatever the event carries."""
    out: list[tuple[str, str]] = []
    if spec.headers:
        metadata = {str(k).lower(): v for k, v in _json_object(headers, "ce-metadata").items()}
        for name in spec.headers:
            if name.lower() in metadata:
                value = _segment_value(metadata[name.lower()], f"ce-metadata.{name}")
                out.append((name, value))
    if spec.annotations:
        annotations = _json_object(headers, "ce-annotations")
        for key in spec.annotations:
            if key in annotations:
                out.append((key, _segment_value(annotations[key], f"ce-annotations.{key}")))
    return tuple(out)


class SegmentValues:
    """The distinct values admitted per segment key, and the distinct segments (combinations
    of values), at most ``max_values`` each, first come first kept. An event bringing one
    more is refused (422) rather than given figures of its own: the number of series stays
    bounded (per endpoint, at most ``max_values`` segments besides the empty one) whatever
    clients put in their headers."""

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self._values: dict[str, dict[str, None]] = {}  # key -> values in order of arrival
        self._segments: dict[tuple[tuple[str, str], ...], None] = {}

    def admit(self, segment: tuple[tuple[str, str], ...]) -> None:
        """Admit every value of ``segment`` and the segment itself, or nothing (a refused
        event leaves nothing behind)."""
        if not segment or segment in self._segments:
            return
        new = []
        for key, value in segment:
            seen = self._values.get(key, {})
            if value in seen:
                continue
            if len(seen) >= self.max_values:
                kept = ", ".join(repr(v) for v in list(seen)[:5])
                raise EventRefused(
                    SEGMENT_LIMIT, key,
                    f"{value[:40]!r} would be value {len(seen) + 1} of this segment; at most "
                    f"kserve.segments.maxValues={self.max_values} are kept ({kept}, ...)", 422,
                )  # fmt: skip
            new.append((key, value))
        if len(self._segments) >= self.max_values:
            raise EventRefused(
                SEGMENT_LIMIT, "segment",
                f"{_label(segment)!r} would be segment {len(self._segments) + 1}; at most "
                f"kserve.segments.maxValues={self.max_values} combinations are kept", 422,
            )  # fmt: skip
        for key, value in new:
            self._values.setdefault(key, {})[value] = None
        self._segments[segment] = None

    def values(self, key: str) -> list[str]:
        return list(self._values.get(key, {}))

    def segments(self) -> list[tuple[tuple[str, str], ...]]:
        return list(self._segments)

    # -- snapshots: without them a restart would admit max_values new values again ------------

    def to_dict(self) -> dict[str, list]:
        return {"segments": [[list(kv) for kv in seg] for seg in self._segments]}

    def load(self, data: dict[str, list]) -> None:
        self._values, self._segments = {}, {}
        for seg in data.get("segments", [])[: self.max_values]:
            segment = tuple((str(k), str(v)) for k, v in seg)
            self._segments[segment] = None
            for key, value in segment:
                self._values.setdefault(key, {})[value] = None


def _label(segment: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{_escaped(k)}={_escaped(v)}" for k, v in segment)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def event_key(
    headers: Mapping[str, str], spec: SegmentSpec, values: SegmentValues | None = None
) -> EventKey:
    """The :class:`EventKey` of an event; with ``values``, its segment is admitted there
    (refused beyond the bound)."""
    key = EventKey(event_endpoint(headers), event_segment(headers, spec))
    if values is not None:
        values.admit(key.segment)
    return key
