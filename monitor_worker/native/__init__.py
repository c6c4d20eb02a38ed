"""Compiled kernels for the worker's hot paths, and whether they are available.

``histogram`` is the C extension ``_histogram`` (monitor_worker/native/_histogram.c), built by
``pip install`` (setup.py); None where it could not be built, and then the numpy code in
:mod:`monitor_worker.stats.sketches` runs instead (tested to give the same results).
``MM_NATIVE=0`` forces the numpy path (for comparisons)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("MM_NATIVE", "1") == "0":
        return None
    try:
        return importlib.import_module("monitor_worker.native._histogram")
    except ImportError:  # not built here (no C compiler): the numpy path
        return None


histogram: ModuleType | None = _load()
