"""The drift kernel alone: nanoseconds per value of the compiled histogram update, on the drift
benchmark's data, against numpy's uniform-bin histogram (what NannyML's Wasserstein runs).

Data: ``drift_vs_evidently.make_data`` (reference 100k, current 1M, 20 features, the same seed).
Per feature, the reference's binning (``NumericBinning.from_reference``, ~1000 quantile edges,
the kernel's lookup table), then the 1M current values through ``NumericHistogram.update_parts``
in flush-sized calls (``FLUSH_ROWS`` values, 1000-value batches as the window holds them):

* ``as stored``: the values as they lie in memory (read from DRAM: what the worker does);
* ``in cache``: one flush of them repeated, so the values come from cache (what the kernel
  costs once the values are there);
* ``sorted``: the same values sorted (runs of one slot, as with a slowly moving feature: the
  kernel counts each run once);
* ``np.histogram 10k uniform``: ``np.histogram(x, bins=edges)`` with NannyML's 10,000 uniform
  bins over the reference's range (counts only: no gap sums, moments or extremes).

Best of ``--repeat`` per feature, pinned to one core. Run: ``.venv/bin/python bench/kernel.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import WORKER_CORE, log, pin, save_result, table, unpin
from drift_vs_evidently import make_data


def best_ns(fn, args: tuple[Any, ...], n_values: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best * 1e9 / n_values


def flushes(values: np.ndarray, flush_rows: int) -> list[list[np.ndarray]]:
    """The values as the window hands them to the kernel: 1000-value batches, a flush's at once."""
    n = values.size
    return [
        [values[b : min(b + 1000, s + flush_rows, n)] for b in range(s, min(s + flush_rows, n), 1000)]
        for s in range(0, n, flush_rows)
    ]  # fmt: skip


def run(binning, calls: list[list[np.ndarray]]) -> None:
    from monitor_worker.stats.sketches import NumericHistogram

    h = NumericHistogram(binning)
    for parts in calls:
        h.update_parts(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--current-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from monitor_worker import native
    from monitor_worker.stats.sketches import NumericBinning
    from monitor_worker.window import FLUSH_ROWS

    if native.histogram is None:
        log("the compiled kernel is not built (make setup): nothing to measure")
        return 1
    ref, cur, desc = make_data(100_000, args.current_rows, args.seed)
    core = pin(WORKER_CORE)
    log(f"pinned to core {core}; {cur.shape[1]} features, {cur.shape[0]:,} values each")
    rows: list[list[Any]] = []
    sums = {"as_stored": 0.0, "in_cache": 0.0, "sorted": 0.0, "np_histogram": 0.0}
    for j in range(cur.shape[1]):
        binning = NumericBinning.from_reference(ref[:, j])
        x = np.ascontiguousarray(cur[:, j])
        n = x.size

        stored = flushes(x, FLUSH_ROWS)
        cached = [stored[0]] * max(n // FLUSH_ROWS, 1)
        ordered = flushes(np.sort(x), FLUSH_ROWS)
        uniform = np.linspace(ref[:, j].min(), ref[:, j].max(), 10_001)
        f = {
            "as_stored": best_ns(run, (binning, stored), n, args.repeat),
            "in_cache": best_ns(
                run, (binning, cached), sum(p.size for p in stored[0]) * len(cached), args.repeat
            ),
            "sorted": best_ns(run, (binning, ordered), n, args.repeat),
            "np_histogram": best_ns(np.histogram, (x, uniform), n, args.repeat),
        }
        for k in sums:
            sums[k] += f[k]
        rows.append([f"f{j:02d}", desc[j], binning.edges.size, *(round(f[k], 2) for k in sums)])
        log(f"f{j:02d} {desc[j]}: " + ", ".join(f"{k} {v:.2f}" for k, v in f.items()))
    unpin()
    k = cur.shape[1]
    mean = {key: v / k for key, v in sums.items()}
    rows.append(["mean", "", "", *(round(mean[key], 2) for key in sums)])
    headers = [
        "feature",
        "data",
        "edges",
        "as stored",
        "in cache",
        "sorted",
        "np.histogram 10k uniform",
    ]
    text = table(headers, rows)
    print(text)
    log(
        f"{k} features x {cur.shape[0]:,} values as stored: {mean['as_stored'] * k * cur.shape[0] / 1e9:.3f} s"
    )
    save_result(
        "kernel",
        {"current_rows": cur.shape[0], "flush_rows": FLUSH_ROWS, "mean_ns": mean, "table": text},
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
