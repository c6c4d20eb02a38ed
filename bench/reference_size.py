"""Profiling a large reference: peak memory and time of the child that reads and profiles it,
and of the serving process beside it.

Writes one seeded reference (``--rows`` rows of ``--features`` normal features, prediction,
score and label: the generator of ``benchlib.reference_arrays``, in chunks) as CSV and as
Parquet, then for each file starts a fresh interpreter that builds the worker's first service
the way the worker does (``monitor_worker.loader.Loader``: the profile read in one spawned
child, then its outlier and estimation models fitted in a second; ``--no-fits``: both off, no
second child; ``--regression``: a regressor's monitor on the same file, the score column its
prediction, so that DLE's error models are fitted instead of CBPE), and reports

- the children's peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest child that
  ended; both are children of the measured process, each waited for before it returns), and
  each child's own (``os.wait4``'s rusage for that child: the reading child, the fitting one),
- the parent's peak RSS (``VmHWM``) and RSS after (``VmRSS``): what serving keeps,
- wall time, rows read and rows sampled (``data.reference.sampleRows``, default 200000).

Run: ``.venv/bin/python bench/reference_size.py`` (about 1 GB per file; ``--rows`` to change).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import ROOT, VENV_PYTHON, log, save_result, table, tempdir, worker_config

LIMIT_MB = 300
CHUNK = 250_000

MEASURE = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from mm_api.worker_config import parse_config
from monitor_worker.loader import Loader

children = []  # (pid, peak MB) of each child as it is waited for (multiprocessing's join)

def waitpid(pid, options):
    got, status, usage = os.wait4(pid, options)
    if got:
        children.append((got, usage.ru_maxrss / 1024))
    return got, status

os.waitpid = waitpid

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

config = parse_config(json.loads(sys.argv[2]))
t0 = time.perf_counter()
service = Loader(config)()
seconds = time.perf_counter() - t0
print(json.dumps({
    "seconds": seconds,
    "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    "children_peak_mb": [mb for _, mb in children],
    "parent_peak_mb": status("VmHWM"),
    "parent_rss_mb": status("VmRSS"),
    "rows": service.reference.rows,
    "sampled_rows": service.reference.sampled_rows,
    "features": len(service.profile.schema.names),
}))
"""


def write_files(tmp: Path, rows: int, features: int) -> tuple[Path, Path]:
    """The same rows as CSV and Parquet, written chunk by chunk (bounded memory here too)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    w = rng.normal(size=features) / np.sqrt(features)
    names = [f"f{j}" for j in range(features)]
    csv_path, parquet_path = tmp / "reference.csv", tmp / "reference.parquet"
    csv_writer = parquet_writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        x = rng.normal(size=(n, features))
        score = 1 / (1 + np.exp(-(x @ w)))
        cols = {name: x[:, j].round(6) for j, name in enumerate(names)}
        cols["prediction"] = (score >= 0.5).astype(np.int64)
        cols["score"] = score.round(6)
        cols["label"] = (rng.random(n) < score).astype(np.int64)
        batch = pa.table(cols)
        if csv_writer is None:
            csv_writer = pacsv.CSVWriter(str(csv_path), batch.schema)
            parquet_writer = pq.ParquetWriter(str(parquet_path), batch.schema)
        csv_writer.write_table(batch)
        assert parquet_writer is not None
        parquet_writer.write_table(batch, row_group_size=CHUNK)
    assert csv_writer is not None and parquet_writer is not None
    csv_writer.close()
    parquet_writer.close()
    return csv_path, parquet_path


def measure(
    path: Path, tmp: Path, sample_rows: int, fits: bool, regression: bool = False
) -> dict[str, Any]:
    estimation = {"enabled": fits}
    cfg = worker_config(
        path, snapshot_dir=tmp / "snapshots", outliers=fits, extra={"estimation": estimation}
    )
    cfg["data"]["reference"]["sampleRows"] = sample_rows
    if regression:
        cfg["model"] = {"name": "bench-model", "task": "regression"}
        cfg["quality"] = {"thresholds": [{"metric": "mae", "max": 1.0}]}
        # The score is the prediction; the 0/1 prediction column is set aside as the score
        # column (which a regressor does not read), so the features are the same 20.
        cfg["data"].update(predictionColumn="score", scoreColumn="prediction")
    out = subprocess.run(
        [str(VENV_PYTHON), "-c", MEASURE, str(ROOT), json.dumps(cfg)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"profiling {path.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_500_000, help="about 1 GB of CSV at 20 features")
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--sample-rows", type=int, default=200_000)
    ap.add_argument(
        "--no-fits",
        action="store_true",
        help="outliers and estimation off (no scikit-learn fit): the reading and binning alone",
    )
    ap.add_argument(
        "--regression",
        action="store_true",
        help="a regression model (the score column its prediction): DLE is fitted, not CBPE",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    results: dict[str, Any] = {
        "rows": args.rows,
        "features": args.features,
        "fits": not args.no_fits,
        "task": "regression" if args.regression else "binary-classification",
        "files": {},
    }
    with tempdir("mm-bench-reference-") as tmp:
        t0 = time.perf_counter()
        log(f"writing {args.rows:,} rows x {args.features} features as CSV and Parquet")
        files = write_files(tmp, args.rows, args.features)
        log(f"written in {time.perf_counter() - t0:.1f}s")
        for path in files:
            size = path.stat().st_size / 1e6
            log(f"profiling {path.name} ({size:,.0f} MB) in the worker's loader")
            r = measure(path, tmp, args.sample_rows, not args.no_fits, args.regression)
            r["file_mb"] = size
            results["files"][path.suffix.lstrip(".")] = r
            each = " + ".join(f"{mb:.0f}" for mb in r["children_peak_mb"])
            log(
                f"{path.name}: {r['seconds']:.1f}s, child peak {r['child_peak_mb']:.0f} MB "
                f"(reading + fitting child: {each}), "
                f"parent peak {r['parent_peak_mb']:.0f} MB, parent after {r['parent_rss_mb']:.0f} MB; "
                f"{r['rows']:,} rows, {r['sampled_rows']:,} sampled"
            )
    rows = [
        [
            fmt,
            r["file_mb"],
            r["rows"],
            r["sampled_rows"],
            r["seconds"],
            r["child_peak_mb"],
            " + ".join(f"{mb:.0f}" for mb in r["children_peak_mb"]),
            r["parent_peak_mb"],
            r["parent_rss_mb"],
        ]
        for fmt, r in results["files"].items()
    ]
    results["table"] = table(
        [
            "format",
            "file MB",
            "rows",
            "rows sampled",
            "seconds",
            "child peak MB",
            "each child MB",
            "serving peak MB",
            "serving after MB",
        ],
        rows,
    )
    results["limit_mb"] = LIMIT_MB
    print()
    print(results["table"])
    name = "reference-size" + ("-regression" if args.regression else "")
    save_result(name + ("-no-fits" if args.no_fits else ""), results, args.out)
    worst = max(max(r["child_peak_mb"], r["parent_peak_mb"]) for r in results["files"].values())
    if worst >= LIMIT_MB:
        print(f"ABOVE the {LIMIT_MB} MB bar ({worst:.0f} MB)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
