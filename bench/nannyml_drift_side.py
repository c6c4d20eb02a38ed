"""NannyML's half of ``drift_vs_evidently.py``: univariate drift by Wasserstein distance (the
method Evidently and ours pick for these columns), in the NannyML venv (.venv-nannyml, made by
``bench/setup_nannyml_venv.sh``). Not meant to be run by hand.

Reads reference.npy / current.npy / names.json from a directory, builds DataFrames (not timed),
and times ``UnivariateDriftCalculator(continuous_methods=["wasserstein"], chunk_number=1)``
``.fit(reference)`` + ``.calculate(current)`` (the whole current data as one chunk, as our one
window). Writes nannyml.json: the timings, the peak RSS and, per column, NannyML's distance and
alert."""

from __future__ import annotations

import time

t_import = time.perf_counter()
import nannyml as nml  # noqa: E402
from peer_side import frames, timed, write  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - t_import


def main() -> int:
    d, repeat, names, ref, cur = frames()

    def run():
        calc = nml.UnivariateDriftCalculator(
            column_names=names, continuous_methods=["wasserstein"], chunk_number=1
        )
        calc.fit(ref)
        return calc.calculate(cur)

    runs, cpu, result = timed("nannyml", repeat, run)
    frame = result.filter(period="analysis").to_df()
    columns = {
        name: {
            "value": float(frame[(name, "wasserstein", "value")].iloc[-1]),
            "alert": bool(frame[(name, "wasserstein", "alert")].iloc[-1]),
        }
        for name in names
    }
    write(d, "nannyml", {"nannyml": nml.__version__, "import_s": IMPORT_SECONDS, "run_s": runs,
                         "run_cpu_s": cpu, "columns": columns})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
