"""The row form: ``{"records": [{"id", "features": {...}, "prediction", "score", "label",
"timestamp"}]}`` -> Batch."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from ..schema import DataSchema
from .batch import Batch, PayloadError, type_name
from .values import ROW_FEATURE, check_count, feature_batch, set_extra


def parse_records(doc: Any, schema: DataSchema) -> Batch:
    """``{"records": [...]}`` -> Batch."""
    if not isinstance(doc, dict) or "records" not in doc:
        raise PayloadError("records", 'expected an object with a "records" list')
    extra = set(doc) - {"records"}
    if extra:
        raise PayloadError(sorted(extra)[0], "unknown top-level field")
    records = doc["records"]
    if not isinstance(records, list):
        raise PayloadError("records", "expected a list")
    n = len(records)
    check_count(n, "records")
    try:
        feats = [r["features"] for r in records]
    except (TypeError, KeyError):
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise PayloadError(
                    f"records[{i}]", f"expected an object, got {type_name(r)}"
                ) from None
            if "features" not in r:
                raise PayloadError(f"records[{i}].features", "required") from None
        raise
    batch = feature_batch(n, _feature_columns(feats, schema.names), schema, ROW_FEATURE)
    _row_extras(records, batch, schema)
    return batch


def _feature_columns(feats: list[Any], names: Sequence[str]) -> list[Sequence[Any]]:
    """Rows of feature objects -> one sequence per feature, in ``names`` order.

    Clients serialise every row with the same key order, and orjson hands out the same key
    objects for repeated keys, so the fast path compares each row's keys with the first
    row's and transposes the values in C (zip over ``dict.values``), which reads each dict's
    entries in order instead of hashing 20 lookups a row (measured: 0.9 ms against 1.3 ms
    per 1000 rows of 20 features). Rows in another key order take itemgetter lookups; a
    missing, unknown or mistyped feature is located and named."""
    k = len(names)  # feats is not empty: parse_records checked the count
    try:
        first = tuple(feats[0]) if type(feats[0]) is dict else ()
        if (
            len(first) == k
            and set(first) == set(names)
            and all(map(first.__eq__, map(tuple, feats)))
        ):
            columns = list(zip(*map(dict.values, feats), strict=True))
            at = {key: i for i, key in enumerate(first)}
            return [columns[at[name]] for name in names]
        # Same size and each name found: exactly the declared features, in any order.
        if any(map(k.__ne__, map(len, feats))):
            raise KeyError
        if k == 1:
            return [list(map(itemgetter(names[0]), feats))]
        return list(zip(*map(itemgetter(*names), feats), strict=True))
    except (KeyError, TypeError):
        _locate_feature_problem(feats, names)
        raise


def _locate_feature_problem(feats: list[Any], names: Sequence[str]) -> None:
    known = set(names)
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            raise PayloadError(f"records[{i}].features", f"expected an object, got {type_name(f)}")
        for key in f:
            if key not in known:
                raise PayloadError(
                    f"records[{i}].features.{key}",
                    f"unknown feature (expected: {', '.join(names[:20])})",
                )
        for name in names:
            if name not in f:
                raise PayloadError(
                    f"records[{i}].features.{name}", "required (send null if missing)"
                )
    raise AssertionError("no problem found")  # pragma: no cover


ROW_EXTRAS = ("id", "prediction", "score", "label", "timestamp", "measures")  # in this order
ROW_FIELDS = {"features", *ROW_EXTRAS}


def _row_extras(records: list[dict], batch: Batch, schema: DataSchema) -> None:
    present = set().union(*(r.keys() for r in records[:1]))
    unknown = present - ROW_FIELDS
    if unknown:
        raise PayloadError(f"records[0].{sorted(unknown)[0]}", "unknown field")
    for key in ROW_EXTRAS:
        if key not in present:
            continue
        try:
            values = list(map(itemgetter(key), records))
        except (KeyError, TypeError):
            i = next(i for i, r in enumerate(records) if key not in r)
            raise PayloadError(
                f"records[{i}].{key}", "present in records[0] but missing here"
            ) from None
        set_extra(batch, key, values, schema, f"records[{{i}}].{key}")
    if max(map(len, records)) > len(present):
        i = next(i for i, r in enumerate(records) if set(r) - present)
        raise PayloadError(
            f"records[{i}].{sorted(set(records[i]) - present)[0]}",
            "every record must carry the same fields as records[0]",
        )
