"""Serving-measure quantiles: this project's numpy DDSketch against the ``ddsketch`` package.

Both at relative accuracy 1 %, on seeded lognormal latencies: time to add ``--values`` values
(ours: one vectorised ``update`` per batch of 1000, as a worker's batch; ddsketch: one ``add``
per value, its only way), time to merge 60 bucket sketches (a 1 h window of 1 min buckets) and
read p50/p95/p99, the state size, and the largest relative difference between the two and
from the exact (``numpy.quantile(method="lower")``) quantiles.

    .venv-text/bin/python bench/quantiles.py [--values 1000000] [--out ...]

(``ddsketch`` is installed in .venv-text by scripts/setup-text.sh; pinned to core 0.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import benchlib
import numpy as np
from benchlib import log, table

from monitor_worker.stats.quantiles import QuantileSketch

QS = [0.5, 0.95, 0.99]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--values", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    try:
        from ddsketch import DDSketch
    except ImportError:
        print("ddsketch is not installed (scripts/setup-text.sh puts it in .venv-text)")
        return 1
    benchlib.pin(benchlib.WORKER_CORE)
    data = np.random.default_rng(0).lognormal(4.0, 1.0, args.values)
    batches = np.array_split(data, max(1, args.values // 1000))
    exact = np.quantile(data, QS, method="lower")

    t = time.process_time()
    ours = QuantileSketch(0.01)
    for b in batches:
        ours.update(b)
    ours_add = time.process_time() - t
    log(f"ours: {ours_add:.3f} CPU s for {args.values:,} values")

    t = time.process_time()
    theirs = DDSketch(0.01)
    for v in data.tolist():
        theirs.add(v)
    theirs_add = time.process_time() - t
    log(f"ddsketch: {theirs_add:.3f} CPU s")

    buckets = [QuantileSketch(0.01) for _ in range(60)]
    their_buckets = [DDSketch(0.01) for _ in range(60)]
    for i, b in enumerate(np.array_split(data[:120_000], 60)):
        buckets[i].update(b)
        for v in b.tolist():
            their_buckets[i].add(v)
    t = time.process_time()
    for _ in range(10):
        window = QuantileSketch(0.01)
        for b in buckets:
            window.merge(b)
        window.quantiles()
    ours_merge = (time.process_time() - t) / 10
    t = time.process_time()
    for _ in range(10):
        w2 = DDSketch(0.01)
        for tb in their_buckets:
            w2.merge(tb)
        [w2.get_quantile_value(q) for q in QS]
    theirs_merge = (time.process_time() - t) / 10

    got_ours = ours.quantile(QS)
    got_theirs = np.array([theirs.get_quantile_value(q) for q in QS])
    rows = [
        [
            "numpy DDSketch (this project)",
            args.values / ours_add,
            ours_merge * 1000,
            ours.positive.counts.size,
            float(np.max(np.abs(got_ours / exact - 1))),
        ],
        [
            "ddsketch 3.0.1",
            args.values / theirs_add,
            theirs_merge * 1000,
            len(theirs._store.bins),
            float(np.max(np.abs(got_theirs / exact - 1))),
        ],
    ]
    print(
        table(
            ["sketch", "values/CPU-s", "merge 60 + read ms", "buckets", "max rel. error vs exact"],
            rows,
        )
    )
    same = float(np.max(np.abs(got_ours / got_theirs - 1)))
    print(
        f"largest relative difference between the two: {same:.2e}; speed-up {theirs_add / ours_add:.0f}x"
    )
    benchlib.save_result(
        "quantiles",
        {
            "values": args.values,
            "ours_add_cpu_s": ours_add,
            "ddsketch_add_cpu_s": theirs_add,
            "ours_merge_read_ms": ours_merge * 1000,
            "ddsketch_merge_read_ms": theirs_merge * 1000,
            "quantiles": QS,
            "exact": exact,
            "ours": got_ours,
            "ddsketch": got_theirs,
            "max_rel_diff_between": same,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
