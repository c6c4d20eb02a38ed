"""Compiled kernels for the worker's hot paths, and whether they are available.

``histogram`` is the C extension ``_histogram`` (monitor_worker/native/_histogram.c), built by
``pip install`` (setup.py); None where it could not be built, and then the numpy code in
:mod:`monitor_worker.stats.sketches` runs instead (tested to give the same results).
``columns`` is ``_columns`` (monitor_worker/native/_columns.c): the column form's numbers
read from the JSON bytes into float64 buffers (:class:`monitor_worker.ingest.TypedDecoder`);
None where not built, and then msgspec reads every column (same Batch, tested).
``MM_NATIVE=0`` forces the Python paths (for comparisons)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def _load(name: str) -> ModuleType | None:
    if os.environ.get("MM_NATIVE", "1") == "0":
        return None
    try:
        return importlib.import_module(f"monitor_worker.native.{name}")
    except ImportError:  # not built here (no C compiler): the Python path
        return None


histogram: ModuleType | None = _load("_histogram")
columns: ModuleType | None = _load("_columns")
