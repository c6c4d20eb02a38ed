"""Ingestion payloads -> columns. Knows the JSON shapes, nothing of statistics.

Every rejection is a :class:`PayloadError` naming the field and, for row data, the record
index, e.g. ``records[17].features.amount: expected a number, got "12,5"``. A batch is
accepted or rejected whole, so a 4xx never leaves half a batch behind.

One module per form (see docs/ingestion.md and ``/openapi.json``):
- :mod:`.rows`: ``{"records": [{"id", "features": {...}, "prediction", "score", "label", "timestamp"}]}``
- :mod:`.columns`: ``{"columns": {"<feature>": [...], "prediction": [...], "score": [...], ...}}``
- :mod:`.typed`: both of those decoded straight from bytes when they are well formed
- :mod:`.labels`: ``{"labels": [{"id": ..., "label": ...}]}`` (late ground truth)
- :mod:`.kserve`: KServe payload-logger CloudEvents (v1 ``instances`` / ``predictions`` and v2
  Open Inference Protocol ``inputs`` / ``outputs``), and the store that pairs their halves;
  :mod:`.kserve_events` their envelope: half, endpoint, segment, and bodies refused whole.
:mod:`.values` turns JSON lists into typed numpy columns for all of them; :mod:`.rich_values`
does the same for texts, vectors and serving measures.
"""

from .batch import MAX_RECORDS_PER_BATCH, RESERVED_COLUMNS, Batch, GroundTruth, PayloadError
from .columns import parse_columns
from .kserve import (
    KServePairs,
    decode_half,
    encode_half,
    join,
    parse_inference_request,
    parse_inference_response,
    response_columns,
)
from .kserve_events import (
    MAIN,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    EventKey,
    EventRefused,
    SegmentValues,
    check_event_body,
    event_key,
    event_kind,
    refusal_reason,
)
from .labels import parse_labels
from .rows import parse_records
from .typed import TypedDecoder
from .values import (
    categorical_column,
    class_column,
    id_column,
    numeric_column,
    score_column,
    target_column,
    timestamp_column,
)

__all__ = [
    "MAIN",
    "MAX_RECORDS_PER_BATCH",
    "REQUEST_TYPE",
    "RESERVED_COLUMNS",
    "RESPONSE_TYPE",
    "Batch",
    "EventKey",
    "EventRefused",
    "GroundTruth",
    "KServePairs",
    "PayloadError",
    "SegmentValues",
    "TypedDecoder",
    "categorical_column",
    "check_event_body",
    "class_column",
    "decode_half",
    "encode_half",
    "event_key",
    "event_kind",
    "id_column",
    "join",
    "numeric_column",
    "parse_columns",
    "parse_inference_request",
    "parse_inference_response",
    "parse_labels",
    "parse_records",
    "refusal_reason",
    "response_columns",
    "score_column",
    "target_column",
    "timestamp_column",
]
