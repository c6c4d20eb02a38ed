"""Request bodies -> JSON values (orjson), and a precise answer for the one invalid JSON that
clients commonly send: Python's ``json.dumps`` writes ``NaN`` and ``Infinity`` for non-finite
floats (an embedding with a NaN, a missing latency), which orjson refuses with a character
position only. Such a body is read again by the standard library just to name the first
non-finite value's field and record (``records[3].features.vec[7]``); it is refused either
way, never accepted through the lenient parser."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from .batch import PayloadError


def parse_json(body: bytes) -> Any:
    """The body's JSON value; a PayloadError naming ``body`` (or the non-finite number)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        if b"NaN" in body or b"Infinity" in body:
            path = _non_finite_path(body)
            if path is not None:
                raise PayloadError(path, "expected a finite number, got NaN or infinity") from None
        raise PayloadError("body", f"not valid JSON: {e}") from None


def _non_finite_path(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # not JSON even to the lenient parser
        return None
    return _find(doc, "")


def _find(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path or "body"
    if isinstance(value, dict):
        for k, v in value.items():
            found = _find(v, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _find(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None
