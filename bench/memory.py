"""Worker memory as records grow: RSS at start and every 1M records up to 10M.

Starts the real worker (same generated config as ``ingest.py``: 20 numerical features, 100k
reference rows, binary classification, outliers on, snapshots on) pinned to core 0 and sends
``--records`` records with a fresh id on every record and no labels, so the pending-label
store fills to its cap (``labels.maxPending`` 100000) and then evicts. The window is 60s in
12 buckets so that, within the run, the window fills and its oldest buckets are dropped and
replaced (a 1h window would hold only one or two buckets in a two-minute run and under-state
the steady state). Column form by default (``--form rows`` for row form).

Reads ``VmRSS`` (resident now) and ``VmHWM`` (peak resident) from ``/proc/<pid>/status``.
Run: ``.venv/bin/python bench/memory.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path
from typing import Any

from benchlib import (
    CLIENT_CORE,
    ROOT,
    VENV_PYTHON,
    WORKER_CORE,
    drive,
    log,
    pin,
    proc_status,
    save_result,
    table,
    tempdir,
    worker_config,
    worker_process,
    write_reference,
)
from ingest import Bodies

LIMIT_MB = 150  # issue 14: at most 150 MB at ready and after 10M records
IMPORT_FLOOR = """
import os, sys
sys.path.insert(0, sys.argv[1])
import monitor_worker.main, monitor_worker.server, monitor_worker.service, monitor_worker.profile
keys = ("VmRSS", "RssAnon", "RssFile")
st = {l.split(":")[0]: l.split()[1] for l in open("/proc/self/status") if l.startswith(keys)}
print(*(st[k] for k in keys))
"""


def import_floor() -> dict[str, float]:
    """RSS of an interpreter that only imports the worker's modules (numpy, scipy, sklearn,
    pyarrow, aiohttp, ...): the floor under any worker, before data."""
    out = subprocess.run(
        [str(VENV_PYTHON), "-c", IMPORT_FLOOR, str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    rss, anon, file = (int(v) / 1024 for v in out)
    return {"rss_mb": rss, "anon_mb": anon, "file_mb": file}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--form", choices=("columns", "rows"), default="columns")
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--every", type=int, default=1_000_000, help="sample interval (records)")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--reference-rows", type=int, default=100_000)
    ap.add_argument("--window", default="60s", help="window.size (12 buckets)")
    ap.add_argument("--out", type=Path, help="result JSON (default bench/results/memory.json)")
    args = ap.parse_args()

    samples: list[dict[str, Any]] = []
    floor = import_floor()
    log(
        f"import floor (worker modules imported, no data): RSS {floor['rss_mb']:.0f} MB "
        f"(anon {floor['anon_mb']:.0f}, file {floor['file_mb']:.0f})"
    )
    with tempdir("mm-bench-memory-") as tmp:
        ref = write_reference(tmp / "reference.parquet", args.reference_rows, args.features)
        cfg = worker_config(
            ref,
            snapshot_dir=tmp / "snapshots",
            window={"size": args.window, "buckets": 12, "evaluationInterval": "5s"},
        )
        bodies = Bodies(args.form, 32, 1000, args.features)
        pin(CLIENT_CORE)
        with worker_process(cfg, tmp) as worker:
            log(f"worker pid {worker.pid} on core {WORKER_CORE}: {' '.join(worker.command)}")

            def sample(records: int, seconds: float) -> None:
                st = proc_status(worker.pid)
                status = worker.get_json("/v1/status")
                row = {
                    "records": records,
                    "rss_mb": st["VmRSS"] / 1024,
                    "hwm_mb": st["VmHWM"] / 1024,
                    "anon_mb": st["RssAnon"] / 1024,
                    "file_mb": st["RssFile"] / 1024,
                    "threads": st["Threads"],
                    "pending_labels": status.get("pendingLabels"),
                    "window_records": (status.get("window") or {}).get("records"),
                    "elapsed_s": seconds,
                }
                samples.append(row)
                log(
                    f"{records:>11,} records: RSS {row['rss_mb']:.0f} MB, peak {row['hwm_mb']:.0f} MB, "
                    f"pending {row['pending_labels']:,}, window {row['window_records']}"
                )

            sample(0, 0.0)
            sent, t0, unit = 0, time.perf_counter(), 0
            while sent < args.records:
                r = drive(
                    worker.port,
                    lambda i, base=unit: bodies.unit(base + i, "mem"),
                    connections=args.connections,
                    max_records=args.every,
                )
                if r.non_2xx:
                    raise SystemExit(f"{r.non_2xx} non-2xx answers: {r.statuses}")
                sent += r.records
                unit += r.requests + args.connections
                sample(sent, time.perf_counter() - t0)
            elapsed = time.perf_counter() - t0
            totals = worker.get_json("/v1/status")["totals"]

    first, last = samples[0], samples[-1]
    after_1m = next(s for s in samples if s["records"] >= 1_000_000)
    results = {
        "form": args.form,
        "window": args.window,
        "samples": samples,
        "records": last["records"],
        "seconds": elapsed,
        "records_per_s": last["records"] / elapsed,
        "rss_start_mb": first["rss_mb"],
        "rss_1m_mb": after_1m["rss_mb"],
        "rss_end_mb": last["rss_mb"],
        "hwm_end_mb": last["hwm_mb"],
        "anon_start_mb": first["anon_mb"],
        "anon_end_mb": last["anon_mb"],
        "growth_1m_to_end_mb": last["rss_mb"] - after_1m["rss_mb"],
        "worker_totals": totals,
        "limit_mb": LIMIT_MB,
        "import_floor": floor,
    }
    results["table"] = table(
        [
            "records",
            "RSS MB",
            "peak (VmHWM) MB",
            "anon MB",
            "file MB",
            "pending labels",
            "window records",
        ],
        [
            [
                s["records"],
                s["rss_mb"],
                s["hwm_mb"],
                s["anon_mb"],
                s["file_mb"],
                s["pending_labels"],
                s["window_records"],
            ]
            for s in samples
        ],
    )
    print()
    print(
        f"Worker memory, {args.form} form, {args.features} features, window {args.window}/12 "
        f"buckets, ids on every record (labels.maxPending 100000)"
    )
    print(results["table"])
    print(
        f"RSS start {first['rss_mb']:.0f} MB, after 1M {after_1m['rss_mb']:.0f} MB, after "
        f"{last['records'] / 1e6:.0f}M {last['rss_mb']:.0f} MB (peak {last['hwm_mb']:.0f} MB); "
        f"growth 1M->end {results['growth_1m_to_end_mb']:+.0f} MB; imports alone "
        f"{floor['rss_mb']:.0f} MB"
    )
    save_result(f"memory-{args.form}", results, args.out)
    if last["hwm_mb"] >= LIMIT_MB:
        print(f"ABOVE the {LIMIT_MB} MB bar")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
