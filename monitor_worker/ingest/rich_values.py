"""Values of text, embedding and serving-measure fields: checked and converted to columns.

Pure functions over decoded JSON values (lists of Python objects), in the style of
:func:`values.numeric_column`: a fast numpy path for well-formed batches, and a
slow path that finds the first bad element and raises :class:`PayloadError` naming its field
path and record index, e.g. ``records[3].features.vec: expected 384 numbers, got 12``.
``index_fmt`` formats the path of element ``i`` (``records[{i}].features.vec`` for rows,
``columns.vec[{i}]`` for columns). Nothing here knows about statistics.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .batch import PayloadError, type_name

_FLOAT_MAX = sys.float_info.max  # a Python float: compared exactly with any int


def text_column(values: Sequence[Any], index_fmt: str) -> list[str | None]:
    """The texts, None for a missing one (JSON null). Anything else than a string or null is
    refused."""
    if all(type(v) is str for v in values):
        return list(values)
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, str):
            raise PayloadError(index_fmt.format(i=i), f"expected a string, got {type_name(v)}")
    return list(values)


def vector_column(values: Sequence[Any], index_fmt: str, dimension: int) -> NDArray[np.float64]:
    """``(n, dimension)`` float64 array of one vector per record. Refused: a record that is not
    a list, a list of another length, an element that is not a number (strings, booleans,
    null), and NaN or infinite elements."""
    n = len(values)
    if n == 0:
        return np.empty((0, dimension), dtype=np.float64)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):  # ragged lists, or mixed nesting
        arr = None
    if (
        arr is not None
        and arr.dtype.kind in "fi"
        and arr.shape == (n, dimension)
        and not _hides_bool(values, arr)
    ):
        out = arr.astype(np.float64, copy=False)
        if arr.dtype.kind == "i" or np.isfinite(out).all():
            return out
    for i, v in enumerate(values):
        _check_vector(v, index_fmt.format(i=i), dimension)
    # Every element is a finite number, yet numpy saw no plain array: integers beyond int64.
    return np.array(values, dtype=np.float64)


def _hides_bool(values: Sequence[Any], arr: NDArray[Any]) -> bool:
    """numpy reads ``true`` as 1 among numbers; only rows holding a 0 or a 1 are looked at."""
    suspect = ((arr == 0) | (arr == 1)).any(axis=1)
    return any(bool in map(type, values[int(i)]) for i in np.flatnonzero(suspect))


def _check_vector(v: Any, field: str, dimension: int) -> None:
    if not isinstance(v, list):
        raise PayloadError(field, f"expected a list of {dimension} numbers, got {type_name(v)}")
    if len(v) != dimension:
        raise PayloadError(field, f"expected {dimension} numbers, got {len(v)}")
    for j, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise PayloadError(f"{field}[{j}]", f"expected a number, got {type_name(x)}")
        _check_finite(x, f"{field}[{j}]")


def _check_finite(x: int | float, field: str) -> None:
    if isinstance(x, float) and not math.isfinite(x):
        raise PayloadError(field, "expected a finite number, got NaN or infinity")
    if isinstance(x, int) and not -_FLOAT_MAX <= x <= _FLOAT_MAX:
        raise PayloadError(field, "expected a number within float64 range")


def measure_column(values: Sequence[Any], index_fmt: str) -> NDArray[np.float64]:
    """One serving measure (``latency_ms``, ``prompt_tokens``...): float64, NaN for a missing
    value (null). Refused: strings, booleans, NaN and infinities."""
    out = np.empty(len(values), dtype=np.float64)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        arr = None
    if arr is not None and arr.dtype.kind in "fi" and arr.ndim == 1:
        suspect = bool(((arr == 0) | (arr == 1)).any())
        if not (suspect and bool in map(type, values)):
            out[:] = arr
            if np.isfinite(out).all():
                return out
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, bool) or not isinstance(v, int | float):
            raise PayloadError(index_fmt.format(i=i), f"expected a number, got {type_name(v)}")
        else:
            _check_finite(v, index_fmt.format(i=i))
            out[i] = v
    return out


def measure_columns(
    values: Sequence[Any], names: Sequence[str], index_fmt: str
) -> dict[str, NDArray[np.float64]]:
    """The ``measures`` objects of a batch (one per record, e.g. ``{"latency_ms": 87,
    "completion_tokens": 212}``) as one column per declared measure; a measure a record leaves
    out is NaN (missing). Refused: a record whose measures are not an object, a name that is
    not declared, and values :func:`measure_column` refuses. ``index_fmt`` is the path of
    record ``i``'s object (``records[{i}].measures``, ``columns.measures[{i}]``)."""
    if not names:
        raise PayloadError(
            index_fmt.format(i=0), "no serving measures are declared (spec.measures)"
        )
    known = set(names)
    for i, v in enumerate(values):
        if type(v) is not dict:
            raise PayloadError(index_fmt.format(i=i), f"expected an object, got {type_name(v)}")
        if not known.issuperset(v):
            name = sorted(set(v) - known)[0]
            raise PayloadError(
                f"{index_fmt.format(i=i)}.{name}",
                f"unknown serving measure (declared: {', '.join(names[:20])})",
            )
    return {
        name: measure_column([v.get(name) for v in values], f"{index_fmt}.{name}") for name in names
    }
