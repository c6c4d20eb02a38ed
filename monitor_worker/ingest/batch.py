"""What every form of ingestion produces: a :class:`Batch` of typed columns (or a
:class:`GroundTruth` batch of late labels), or a :class:`PayloadError` naming the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_RECORDS_PER_BATCH = 100_000
RESERVED_COLUMNS = ("id", "timestamp", "prediction", "score", "label", "measures")


class PayloadError(ValueError):
    """A client error: ``status`` is the HTTP status, ``field`` the offending path."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field}


@dataclass
class Batch:
    """One accepted batch, as columns."""

    n: int
    numeric: dict[str, np.ndarray]  # float64, NaN for missing
    categorical: dict[str, np.ndarray]  # str ("" never used), None-free; missing -> mask
    categorical_missing: dict[str, np.ndarray]  # bool masks
    prediction: np.ndarray | None = None  # float64 (regression) or str (classification)
    score: np.ndarray | None = None  # (n,) positive-class probability or (n, C)
    label: np.ndarray | None = None
    ids: list[str] | None = None
    timestamps: np.ndarray | None = None  # epoch seconds
    # Texts, vectors and serving measures (ingest/rich_values.py; monitor_worker/rich).
    texts: dict[str, np.ndarray] = field(default_factory=dict)  # object arrays: str or None
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # (n, dimension) float64
    measures: dict[str, np.ndarray] = field(default_factory=dict)  # float64, NaN when absent
    #: Text descriptor columns by series (``review.chars``), computed once by the window.
    descriptors: dict[str, np.ndarray] | None = None


@dataclass
class GroundTruth:
    ids: list[str]
    labels: np.ndarray


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return f"the string {v[:40]!r}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__
