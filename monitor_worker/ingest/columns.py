"""The column form: ``{"columns": {"<feature>": [...], "prediction": [...], ...}}`` -> Batch."""

from __future__ import annotations

from typing import Any

from ..schema import DataSchema
from .batch import RESERVED_COLUMNS, Batch, PayloadError
from .values import COLUMN_FEATURE, check_count, feature_batch, set_extra


def parse_columns(doc: Any, schema: DataSchema) -> Batch:
    """``{"columns": {"<feature>": [...], "prediction": [...], ...}}`` -> Batch."""
    if not isinstance(doc, dict) or "columns" not in doc:
        raise PayloadError("columns", 'expected an object with a "columns" object')
    extra = set(doc) - {"columns"}
    if extra:
        raise PayloadError(sorted(extra)[0], "unknown top-level field")
    cols = doc["columns"]
    if not isinstance(cols, dict):
        raise PayloadError("columns", "expected an object of equal-length lists")
    for key, v in cols.items():
        if not isinstance(v, list):
            raise PayloadError(f"columns.{key}", "expected a list")
        if key not in schema.names and key not in RESERVED_COLUMNS:
            raise PayloadError(
                f"columns.{key}", "unknown column (not a feature nor a reserved name)"
            )
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise PayloadError("columns", f"lists differ in length ({sorted(lengths)})")
    n = lengths.pop() if lengths else 0
    check_count(n, "columns")

    def required(name: str) -> list[Any]:
        if name not in cols:
            raise PayloadError(f"columns.{name}", "required feature column")
        return cols[name]

    batch = feature_batch(n, map(required, schema.names), schema, COLUMN_FEATURE)
    for key in RESERVED_COLUMNS:
        if key in cols:
            set_extra(batch, key, cols[key], schema, f"columns.{key}[{{i}}]")
    return batch
