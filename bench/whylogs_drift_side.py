"""whylogs' half of ``drift_vs_evidently.py``: profile the reference and the current data and
score drift between the two profiles (whylogs' default: a KS test on its KLL sketches for
numbers), in the whylogs venv (.venv-whylogs, made by ``bench/setup_whylogs_venv.sh``). Not
meant to be run by hand.

Reads reference.npy / current.npy / names.json from a directory, builds DataFrames (not
timed), and times ``why.log(reference).view()`` + ``why.log(current).view()`` +
``calculate_drift_scores(target_view=..., reference_view=..., with_thresholds=True)``.
Writes whylogs.json: the timings, the peak RSS and, per column, the statistic, p-value and
drift category (whylogs' own test: its decisions are reported, not compared)."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

t_import = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import whylogs as why  # noqa: E402
from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - t_import


def main() -> int:
    d = Path(sys.argv[1])
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    names = json.loads((d / "names.json").read_text())
    ref = pd.DataFrame(np.load(d / "reference.npy"), columns=names)
    cur = pd.DataFrame(np.load(d / "current.npy"), columns=names)
    runs, cpu = [], []
    scores: dict = {}
    for i in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        reference_view = why.log(pandas=ref).view()
        current_view = why.log(pandas=cur).view()
        scores = calculate_drift_scores(
            target_view=current_view, reference_view=reference_view, with_thresholds=True
        )
        runs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        print(f"whylogs run {i + 1}/{repeat}: {runs[-1]:.1f}s (CPU {cpu[-1]:.1f}s)", flush=True)
    columns = {
        name: {
            "algorithm": s["algorithm"],
            "statistic": float(s["statistic"]),
            "pvalue": float(s["pvalue"]),
            "category": s["drift_category"],
            "drifted": s["drift_category"] == "DRIFT",
        }
        for name, s in scores.items()
        if s is not None
    }
    out = {
        "whylogs": why.__version__,
        "import_s": IMPORT_SECONDS,
        "run_s": runs,
        "run_cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "columns": columns,
    }
    (d / "whylogs.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
