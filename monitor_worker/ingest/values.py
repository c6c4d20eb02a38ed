"""JSON values -> typed numpy columns, one function per role (numbers, categories, classes,
scores, ids, timestamps). Each rejects with a :class:`PayloadError` whose field path names
the record or element index (``index_fmt`` formats it)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from ..schema import DataSchema
from .batch import MAX_RECORDS_PER_BATCH, Batch, PayloadError, type_name
from .rich_values import measure_columns, text_column, vector_column


def numeric_column(values: Sequence[Any], index_fmt: str) -> np.ndarray:
    """float64 array; null -> NaN. Rejects strings, booleans and non-finite numbers.

    ``index_fmt`` formats the field path of element i (e.g. ``records[{i}].features.x``)."""
    arr = _as_array(values)
    if arr is not None and arr.dtype.kind in "fi" and arr.ndim == 1 and not _has_bool(values, arr):
        out = arr.astype(np.float64, copy=False)
        if arr.dtype.kind == "f" and not np.isfinite(out).all():
            bad = int(np.flatnonzero(~np.isfinite(out))[0])
            raise PayloadError(index_fmt.format(i=bad), "expected a finite number")
        return out
    # Slow path: nulls, mixed types, or a bad element to locate.
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            if isinstance(v, float) and not math.isfinite(v):
                raise PayloadError(index_fmt.format(i=i), "expected a finite number")
            out[i] = v
        else:
            raise PayloadError(index_fmt.format(i=i), f"expected a number, got {type_name(v)}")
    return out


def _has_bool(values: Sequence[Any], arr: np.ndarray) -> bool:
    """numpy reads ``true`` as 1 among numbers (``[true, 2.5]`` -> ``[1.0, 2.5]``), so a
    numeric array may hide booleans. Only when some element equals 0 or 1 are the types
    looked at."""
    suspect = arr == 0
    suspect |= arr == 1
    return bool(suspect.any()) and bool in map(type, values)


def _as_array(values: Sequence[Any]) -> np.ndarray | None:
    """numpy's view of a JSON list, or None when it has no regular shape (nested lists...)."""
    try:
        return np.asarray(values)
    except (ValueError, TypeError):
        return None


def categorical_column(
    values: Sequence[Any], index_fmt: str, *, booleans: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(str array, missing mask). Strings, integers (and, for features, booleans) are
    categories; null is missing."""
    arr = _as_array(values)
    # numpy turns mixed lists into strings (["a", true, 1.5] -> ["a", "True", "1.5"]) and
    # booleans among integers into 0/1: the quick answers are taken only for pure lists.
    if (
        arr is not None
        and arr.dtype.kind == "U"
        and arr.ndim == 1
        and all(map(isinstance, values, repeat(str)))
    ):
        return arr, np.zeros(len(arr), dtype=bool)
    if arr is not None and arr.dtype.kind == "i" and arr.ndim == 1 and not _has_bool(values, arr):
        # Spell each distinct integer once: astype(str) of 1000 integers takes 0.4 ms.
        uniques, inverse = np.unique(arr, return_inverse=True)
        return uniques.astype(str)[inverse], np.zeros(len(arr), dtype=bool)
    out = []
    missing = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            missing[i] = True
            out.append("")
        elif isinstance(v, bool):
            if not booleans:
                raise PayloadError(
                    index_fmt.format(i=i), "expected a class (string or integer), got a boolean"
                )
            out.append("true" if v else "false")
        elif isinstance(v, str):
            out.append(v)
        elif isinstance(v, int):
            out.append(str(v))
        else:
            raise PayloadError(
                index_fmt.format(i=i),
                f"expected a category (string or integer), got {type_name(v)}",
            )
    return np.asarray(out, dtype=str), missing


def class_column(values: Sequence[Any], index_fmt: str) -> np.ndarray:
    """Predictions or labels of a classifier as class strings (nulls not allowed)."""
    arr, missing = categorical_column(values, index_fmt, booleans=False)
    if missing.any():
        raise PayloadError(index_fmt.format(i=int(np.flatnonzero(missing)[0])), "must not be null")
    return arr


def target_column(values: Sequence[Any], schema: DataSchema, index_fmt: str) -> np.ndarray:
    if schema.regression:
        out = numeric_column(values, index_fmt)
        if np.isnan(out).any():
            bad = int(np.flatnonzero(np.isnan(out))[0])
            raise PayloadError(index_fmt.format(i=bad), "must not be null")
        return out
    return class_column(values, index_fmt)


def score_column(values: Sequence[Any], schema: DataSchema, index_fmt: str) -> np.ndarray:
    """Binary: the positive class's probability in [0, 1]. Multiclass: a probability vector
    per record (a list in class order, or an object keyed by class)."""
    if not schema.multiclass:
        out = numeric_column(values, index_fmt)
        if np.isnan(out).any() or (out < 0).any() or (out > 1).any():
            bad = int(np.flatnonzero(np.isnan(out) | (out < 0) | (out > 1))[0])
            raise PayloadError(index_fmt.format(i=bad), "expected a probability in [0, 1]")
        return out
    classes = schema.classes
    if not classes:
        raise PayloadError(
            index_fmt.format(i=0), "multiclass scores need model.classes in the config"
        )
    rows = []
    for i, v in enumerate(values):
        if isinstance(v, dict):
            try:
                v = [v[c] for c in classes]
            except KeyError as e:
                raise PayloadError(index_fmt.format(i=i), f"missing class {e.args[0]!r}") from None
        if not isinstance(v, list) or len(v) != len(classes):
            raise PayloadError(
                index_fmt.format(i=i), f"expected {len(classes)} class probabilities"
            )
        rows.append(v)
    width = len(classes)
    try:
        arr = numeric_column([x for r in rows for x in r], "{i}")
    except PayloadError as e:
        flat = int(e.field)
        raise PayloadError(
            f"{index_fmt.format(i=flat // width)}[{flat % width}]", e.message
        ) from None
    out = arr.reshape(len(rows), width)
    if (out < 0).any() or (out > 1).any() or np.isnan(out).any():
        bad = int(np.flatnonzero(((out < 0) | (out > 1) | np.isnan(out)).any(axis=1))[0])
        raise PayloadError(index_fmt.format(i=bad), "probabilities must be in [0, 1]")
    return out


def id_column(values: Sequence[Any], index_fmt: str) -> list[str]:
    if all(map(isinstance, values, repeat(str))) and "" not in values:
        return list(values)
    ids = []
    for i, v in enumerate(values):
        if isinstance(v, str) and v:
            ids.append(v)
        elif isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63:
            ids.append(str(v))
        else:
            raise PayloadError(
                index_fmt.format(i=i), "expected a non-empty string or a 64-bit integer id"
            )
    return ids


def timestamp_column(values: Sequence[Any], index_fmt: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[i] = float(v)
        elif isinstance(v, str):
            try:
                out[i] = dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise PayloadError(
                    index_fmt.format(i=i), "expected RFC 3339 or epoch seconds"
                ) from None
        else:
            raise PayloadError(index_fmt.format(i=i), f"expected a timestamp, got {type_name(v)}")
    return out


def check_count(n: int, field: str) -> None:
    if n == 0:
        raise PayloadError(field, "must not be empty")
    if n > MAX_RECORDS_PER_BATCH:
        raise PayloadError(field, f"at most {MAX_RECORDS_PER_BATCH} records per request", 413)


def feature_batch(
    n: int, columns: Iterable[Sequence[Any]], schema: DataSchema, path: str, *, typed: bool = False
) -> Batch:
    """A Batch of the feature columns of ``n`` records: one sequence per feature, in
    ``schema.names`` order (taken one at a time, so a lazy iterable may raise for a feature
    at its turn). ``path`` is the field path of a value, ``{}`` standing for the feature and
    ``{{i}}`` for the index. ``typed``: numerical values are already floats or None
    (:class:`TypedDecoder`), so they need no check."""
    numeric, categorical, missing = {}, {}, {}
    texts, vectors = {}, {}
    for feature, values in zip(schema.features, columns, strict=True):
        name = feature.name
        if feature.type == "categorical":
            categorical[name], missing[name] = categorical_column(values, path.format(name))
        elif feature.type == "text":
            texts[name] = np.array(text_column(values, path.format(name)), dtype=object)
        elif feature.type == "embedding":
            assert feature.dimension is not None
            vectors[name] = vector_column(values, path.format(name), feature.dimension)
        elif typed:
            numeric[name] = np.asarray(values, dtype=np.float64)  # null -> NaN
        else:
            numeric[name] = numeric_column(values, path.format(name))
    return Batch(n, numeric, categorical, missing, texts=texts, vectors=vectors)


ROW_FEATURE = "records[{{i}}].features.{}"
COLUMN_FEATURE = "columns.{}[{{i}}]"


def set_extra(batch: Batch, key: str, values: Sequence[Any], schema: DataSchema, fmt: str) -> None:
    if key == "id":
        batch.ids = id_column(values, fmt)
    elif key == "prediction":
        batch.prediction = target_column(values, schema, fmt)
    elif key == "label":
        batch.label = target_column(values, schema, fmt)
    elif key == "score":
        batch.score = score_column(values, schema, fmt)
    elif key == "timestamp":
        batch.timestamps = timestamp_column(values, fmt)
    elif key == "measures":
        batch.measures = measure_columns(values, schema.measures, fmt)
