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

import time

t_import = time.perf_counter()
import whylogs as why  # noqa: E402
from peer_side import frames, timed, write  # noqa: E402
from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - t_import


def main() -> int:
    d, repeat, _, ref, cur = frames()

    def run():
        reference_view = why.log(pandas=ref).view()
        current_view = why.log(pandas=cur).view()
        return calculate_drift_scores(
            target_view=current_view, reference_view=reference_view, with_thresholds=True
        )

    runs, cpu, scores = timed("whylogs", repeat, run)
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
    write(d, "whylogs", {"whylogs": why.__version__, "import_s": IMPORT_SECONDS, "run_s": runs,
                         "run_cpu_s": cpu, "columns": columns})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
