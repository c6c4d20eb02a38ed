"""Evidently's half of ``drift_vs_evidently.py``; runs in the bench venv (.venv-bench), never
in the project's .venv. Not meant to be run by hand.

Reads reference.npy / current.npy / names.json from a directory, builds pandas DataFrames,
times ``Report([DataDriftPreset()]).run(current_data=..., reference_data=...)`` with
Evidently's defaults (per-column test chosen by Evidently), and writes evidently.json: the
timings and, per column, the method, threshold, drift score and decision.

The decision is Evidently's rule applied to the reported score and threshold (distances drift
at ``score >= threshold``, p-values at ``score < threshold``, K-S at ``<=``); the
DriftedColumnsCount metric of the same report is Evidently's own count of drifted columns and
is checked against it.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

t_import = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - t_import
P_VALUE_TESTS = ("p_value", "p-value", "p value")


def drifted(method: str, score: float, threshold: float) -> bool:
    name = method.lower()
    if any(t in name for t in P_VALUE_TESTS):
        return score <= threshold if name.startswith("k-s") else score < threshold
    return score >= threshold


def main() -> int:
    d = Path(sys.argv[1])
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    names = json.loads((d / "names.json").read_text())
    t = time.perf_counter()
    ref = pd.DataFrame(np.load(d / "reference.npy"), columns=names)
    cur = pd.DataFrame(np.load(d / "current.npy"), columns=names)
    frames = time.perf_counter() - t
    runs, cpu = [], []
    snapshot = None
    for i in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
        runs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        print(f"evidently run {i + 1}/{repeat}: {runs[-1]:.1f}s (CPU {cpu[-1]:.1f}s)", flush=True)
    assert snapshot is not None
    t = time.perf_counter()
    doc = snapshot.dict()
    to_dict = time.perf_counter() - t
    columns = {}
    count = None
    for m in doc["metrics"]:
        cfg = m.get("config", {})
        kind = cfg.get("type", "")
        if kind.endswith("ValueDrift"):
            score = float(m["value"])
            method, threshold = cfg["method"], float(cfg["threshold"])
            columns[cfg["column"]] = {
                "method": method,
                "threshold": threshold,
                "score": score,
                "drifted": drifted(method, score, threshold),
            }
        elif kind.endswith("DriftedColumnsCount"):
            count = m["value"]
    import evidently

    out = {
        "evidently": evidently.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "import_s": IMPORT_SECONDS,
        "dataframes_s": frames,
        "run_s": runs,
        "run_cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "snapshot_dict_s": to_dict,
        "columns": columns,
        "drifted_columns_count": count,
    }
    (d / "evidently.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
