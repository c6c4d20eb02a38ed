"""How ingestion cost and evaluation time grow with the number of features and of window
buckets, in-process (``MonitorService``, no HTTP), pinned to one core.

For each configuration: a generated reference (100k rows, binary classification, outliers
on), then

* ingest: records/s of row-form and column-form bodies (1000 records, fresh ids, prediction,
  score), best of ``--repeat`` runs of ``--batches`` batches after a warm-up that fills the
  pending-label store;
* evaluation: the window is filled in every bucket (``--per-bucket`` records each, clock
  stepped through the slots), then timed: merging the buckets (``window_summary``), and
  ``evaluate`` (drift of every feature, prediction and score drift, quality, outliers on a
  2000-row sample), median of 5;
* state: bytes held by the window's buckets (histograms + reservoirs), pending store not
  included.

Run: ``.venv/bin/python bench/scaling.py`` (``--quick`` for a smaller grid).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from benchlib import (
    WORKER_CORE,
    build_service,
    log,
    pin,
    save_result,
    table,
    tempdir,
    unpin,
    worker_config,
    write_reference,
)
from ingest import Bodies


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def state_bytes(service) -> int:
    total = 0
    for b in service.state.buckets.values():
        for h in b.numeric.values():
            total += h.counts.nbytes + h.gaps.nbytes + h.tail_sq.nbytes
            total += h.offgrid.nbytes if h.offgrid is not None else 0
        for c in b.categorical.values():
            total += c.counts.nbytes
        total += b.reservoir._data.nbytes
    return total


def ingest_rate(cfg: dict[str, Any], form: str, features: int, batches: int, repeat: int) -> float:
    service, _ = build_service(cfg)
    bodies = Bodies(form, 8, 1000, features, seed=features)
    for i in range(110):  # fills the pending store (100k) so evictions run, as in steady state
        bodies.in_process(service, i, "warm")
    best = 0.0
    for rep in range(repeat):
        rendered = [bodies.templates[i % 8].render(f"r{rep}-{i}") for i in range(batches)]
        t = time.perf_counter()
        for body in rendered:
            service.ingest_records(body)
        best = max(best, batches * 1000 / (time.perf_counter() - t))
    return best


def evaluation_times(
    cfg: dict[str, Any], features: int, buckets: int, per_bucket: int
) -> dict[str, float]:
    clock = Clock(1_700_000_000.0)
    service, profile_s = build_service(cfg, clock=clock)
    width = service.state.width
    bodies = Bodies("columns", 8, 1000, features, seed=features)
    start = (clock.t // width - buckets + 1) * width
    for k in range(buckets):
        clock.t = start + k * width + width / 2
        for i in range(max(1, per_bucket // 1000)):
            bodies.in_process(service, k * 1000 + i, "fill")
    merges, evals = [], []
    for _ in range(5):
        t = time.perf_counter()
        summary = service.window_summary()
        t1 = time.perf_counter()
        service.evaluate(summary)
        t2 = time.perf_counter()
        merges.append(t1 - t)
        evals.append(t2 - t1)
    return {
        "profile_s": profile_s,
        "buckets_filled": len(service.state.buckets),
        "window_records": summary.n,
        "merge_ms": statistics.median(merges) * 1000,
        "evaluate_ms": statistics.median(evals) * 1000,
        "state_mb": state_bytes(service) / 1e6,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--features", default="5,20,50,100")
    ap.add_argument("--buckets", default="12,60,240")
    ap.add_argument("--bucket-features", type=int, default=20, help="features in the bucket sweep")
    ap.add_argument("--batches", type=int, default=60, help="timed batches per ingest run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--per-bucket", type=int, default=5000, help="records per bucket")
    ap.add_argument("--reference-rows", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="features 5,20; buckets 12,60")
    ap.add_argument("--out", type=Path, help="result JSON (default bench/results/scaling.json)")
    args = ap.parse_args()
    if args.quick:
        args.features, args.buckets, args.repeat = "5,20", "12,60", 2
    feature_counts = [int(x) for x in args.features.split(",")]
    bucket_counts = [int(x) for x in args.buckets.split(",")]

    pin(WORKER_CORE)
    rows_f, rows_b, data = [], [], {"features": [], "buckets": []}
    with tempdir("mm-bench-scaling-") as tmp:
        for f in feature_counts:
            ref = write_reference(tmp / f"reference-{f}.parquet", args.reference_rows, f)
            cfg = worker_config(ref)
            log(f"{f} features: ingest")
            rows_rate = ingest_rate(cfg, "rows", f, args.batches, args.repeat)
            cols_rate = ingest_rate(cfg, "columns", f, args.batches, args.repeat)
            log(f"{f} features: evaluation, 12 buckets")
            ev = evaluation_times(cfg, f, 12, args.per_bucket)
            item = {"features": f, "rows_rps": rows_rate, "columns_rps": cols_rate, **ev}
            data["features"].append(item)
            rows_f.append(
                [
                    f,
                    rows_rate,
                    rows_rate * f,
                    cols_rate,
                    cols_rate * f,
                    ev["merge_ms"],
                    ev["evaluate_ms"],
                    ev["state_mb"],
                    ev["profile_s"],
                ]
            )
            log(
                f"{f} features: rows {rows_rate:,.0f}/s, columns {cols_rate:,.0f}/s, evaluate {ev['evaluate_ms']:.0f} ms"
            )
        f = args.bucket_features
        ref = write_reference(tmp / f"reference-{f}.parquet", args.reference_rows, f)
        for nb in bucket_counts:
            cfg = worker_config(
                ref, window={"size": "1h", "buckets": nb, "evaluationInterval": "30s"}
            )
            log(f"{nb} buckets ({f} features)")
            cols_rate = ingest_rate(cfg, "columns", f, args.batches, args.repeat)
            ev = evaluation_times(cfg, f, nb, args.per_bucket)
            data["buckets"].append({"buckets": nb, "features": f, "columns_rps": cols_rate, **ev})
            rows_b.append(
                [
                    nb,
                    ev["window_records"],
                    cols_rate,
                    ev["merge_ms"],
                    ev["evaluate_ms"],
                    ev["state_mb"],
                ]
            )
            log(f"{nb} buckets: merge {ev['merge_ms']:.0f} ms, evaluate {ev['evaluate_ms']:.0f} ms")
    unpin()

    t_features = table(
        [
            "features",
            "rows rec/s",
            "rows values/s",
            "columns rec/s",
            "columns values/s",
            "merge ms",
            "evaluate ms",
            "window state MB",
            "profile build s",
        ],
        rows_f,
    )
    t_buckets = table(
        [
            "buckets",
            "window records",
            "columns rec/s",
            "merge ms",
            "evaluate ms",
            "window state MB",
        ],
        rows_b,
    )
    print()
    print(f"Scaling with features (12 buckets, {args.per_bucket:,} records per bucket)")
    print(t_features)
    print()
    print(f"Scaling with window buckets ({args.bucket_features} features, 1h window)")
    print(t_buckets)
    save_result(
        "scaling",
        {
            **data,
            "features_table": t_features,
            "buckets_table": t_buckets,
            "per_bucket": args.per_bucket,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
