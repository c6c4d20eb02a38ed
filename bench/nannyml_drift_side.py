"""NannyML's half of ``drift_vs_evidently.py``: univariate drift by Wasserstein distance (the
method Evidently and ours pick for these columns), in the NannyML venv (.venv-nannyml, made by
``bench/setup_nannyml_venv.sh``). Not meant to be run by hand.

Reads reference.npy / current.npy / names.json from a directory, builds DataFrames (not timed),
and times ``UnivariateDriftCalculator(continuous_methods=["wasserstein"], chunk_number=1)``
``.fit(reference)`` + ``.calculate(current)`` (the whole current data as one chunk, as our one
window). Writes nannyml.json: the timings and, per column, NannyML's distance and alert."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

t_import = time.perf_counter()
import nannyml as nml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - t_import


def main() -> int:
    d = Path(sys.argv[1])
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    names = json.loads((d / "names.json").read_text())
    ref = pd.DataFrame(np.load(d / "reference.npy"), columns=names)
    cur = pd.DataFrame(np.load(d / "current.npy"), columns=names)
    runs, cpu = [], []
    result = None
    for i in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        calc = nml.UnivariateDriftCalculator(
            column_names=names, continuous_methods=["wasserstein"], chunk_number=1
        )
        calc.fit(ref)
        result = calc.calculate(cur)
        runs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        print(f"nannyml run {i + 1}/{repeat}: {runs[-1]:.1f}s (CPU {cpu[-1]:.1f}s)", flush=True)
    assert result is not None
    frame = result.filter(period="analysis").to_df()
    columns = {}
    for name in names:
        columns[name] = {
            "value": float(frame[(name, "wasserstein", "value")].iloc[-1]),
            "alert": bool(frame[(name, "wasserstein", "alert")].iloc[-1]),
        }
    out = {
        "nannyml": nml.__version__,
        "import_s": IMPORT_SECONDS,
        "run_s": runs,
        "run_cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "columns": columns,
    }
    (d / "nannyml.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
