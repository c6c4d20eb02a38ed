"""What the peers' side scripts of ``drift_vs_evidently.py`` share (``nannyml_drift_side.py``,
``whylogs_drift_side.py``), importable from each peer's own venv (numpy and pandas only):
the data as DataFrames, the timed runs, the result file."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

T = TypeVar("T")


def frames() -> tuple[Path, int, list[str], pd.DataFrame, pd.DataFrame]:
    """(directory, repeat, names, reference, current) from the command line and the files
    ``drift_vs_evidently.py`` wrote (reference.npy, current.npy, names.json)."""
    d = Path(sys.argv[1])
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    names = json.loads((d / "names.json").read_text())
    ref = pd.DataFrame(np.load(d / "reference.npy"), columns=names)
    cur = pd.DataFrame(np.load(d / "current.npy"), columns=names)
    return d, repeat, names, ref, cur


def timed(label: str, repeat: int, run: Callable[[], T]) -> tuple[list[float], list[float], T]:
    """``run()`` ``repeat`` times: (wall seconds, CPU seconds, the last result)."""
    runs, cpu = [], []
    result: Any = None
    for i in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        result = run()
        runs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        print(f"{label} run {i + 1}/{repeat}: {runs[-1]:.1f}s (CPU {cpu[-1]:.1f}s)", flush=True)
    return runs, cpu, result


def write(d: Path, name: str, out: dict[str, Any]) -> None:
    """``<d>/<name>.json``: ``out`` with this process's peak RSS."""
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (d / f"{name}.json").write_text(json.dumps(out, indent=2))
