"""Our drift detection against Evidently's DataDriftPreset on the same data, same process core.

Data (seeded): a reference of 100k rows and a current window of 1M rows, 20 numerical
features of assorted shapes (normal, lognormal, uniform, Student t, exponential, Poisson
counts, gamma, mixtures). Odd features are shifted or rescaled enough to drift; even ones are
unchanged or changed a little (below the threshold), so the decisions differ per feature and
some sit near the threshold. With more than 1000 reference rows Evidently picks normed
Wasserstein (drift at >= 0.1) for every numerical column, and so does our ``method: auto``.

* Evidently: ``Report([DataDriftPreset()]).run(current, reference)`` on pandas DataFrames,
  in ``.venv-bench`` (``bench/setup_venv.sh``) through ``bench/evidently_side.py``. Timed:
  the run (import and DataFrame construction reported apart).
* Ours: build the reference profile from the 100k rows (``build_profile``, outliers off as
  DataDriftPreset has none) + ingest the 1M rows into the window in 1000-row batches + one
  evaluation (merge the window, every test). Two ingest paths: "arrays" hands the same
  in-memory columns Evidently gets to the window (``WindowState.add``), "json" posts
  pre-serialised column-form bodies through ``MonitorService.ingest_records`` (the worker's
  parse + validate + apply path, minus HTTP).
* Ours as a user runs it (``run_http``; ``--no-http`` skips it): the real worker process fed
  the same 1M records as column-form JSON over HTTP by one client; its decisions are read
  from ``/v1/status`` and must equal Evidently's too.

Both sides run pinned to the same core. Prints both times, the ratio, and per feature both
scores and decisions; exits 1 when any decision differs. Run:
``.venv/bin/python bench/drift_vs_evidently.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import (
    BENCH,
    BENCH_VENV_PYTHON,
    WORKER_CORE,
    feature_names,
    log,
    pin,
    save_result,
    table,
    tempdir,
    unpin,
    worker_config,
)

RATIO_BAR = 30.0
NOW = 1_700_000_000.0  # a fixed clock: every record lands in one window bucket


def make_data(n_ref: int, n_cur: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(reference, current, descriptions); column j of each is feature j."""
    rng = np.random.default_rng(seed)
    ref_cols, cur_cols, desc = [], [], []

    def add(text: str, gen, cur_gen) -> None:
        ref_cols.append(gen(n_ref))
        cur_cols.append(cur_gen(n_cur))
        desc.append(text)

    normal = rng.normal
    add("normal, same", lambda n: normal(0, 1, n), lambda n: normal(0, 1, n))
    add("normal, +0.3 sd", lambda n: normal(0, 1, n), lambda n: normal(0.3, 1, n))
    add("lognormal, same", lambda n: rng.lognormal(0, 0.5, n), lambda n: rng.lognormal(0, 0.5, n))
    add(
        "lognormal, x1.3",
        lambda n: rng.lognormal(0, 0.5, n),
        lambda n: 1.3 * rng.lognormal(0, 0.5, n),
    )
    add("uniform, same", lambda n: rng.uniform(0, 1, n), lambda n: rng.uniform(0, 1, n))
    add("uniform, +0.1", lambda n: rng.uniform(0, 1, n), lambda n: rng.uniform(0.1, 1.1, n))
    add("t(3), same", lambda n: rng.standard_t(3, n), lambda n: rng.standard_t(3, n))
    add("t(3), +0.4", lambda n: rng.standard_t(3, n), lambda n: rng.standard_t(3, n) + 0.4)
    add("exponential, same", lambda n: rng.exponential(1, n), lambda n: rng.exponential(1, n))
    add("exponential, x1.5", lambda n: rng.exponential(1, n), lambda n: rng.exponential(1.5, n))
    add("normal, +0.04 sd (below)", lambda n: normal(0, 1, n), lambda n: normal(0.04, 1, n))
    add("normal, sd x1.2", lambda n: normal(0, 1, n), lambda n: normal(0, 1.2, n))

    def outliers(n: int) -> np.ndarray:
        x = normal(0, 1, n)
        hit = rng.random(n) < 0.01
        x[hit] = normal(6, 0.5, int(hit.sum()))
        return x

    add("normal, 1% at 6 sd (below)", lambda n: normal(0, 1, n), outliers)

    def mixture(p: float):
        return lambda n: np.where(rng.random(n) < p, normal(-2, 0.7, n), normal(2, 0.7, n))

    add("bimodal, weights 50/50 -> 60/40", mixture(0.5), mixture(0.6))
    add(
        "Poisson(50) counts, same",
        lambda n: rng.poisson(50, n) * 1.0,
        lambda n: rng.poisson(50, n) * 1.0,
    )
    add(
        "Poisson(50) -> Poisson(54)",
        lambda n: rng.poisson(50, n) * 1.0,
        lambda n: rng.poisson(54, n) * 1.0,
    )
    add("gamma(2), same", lambda n: rng.gamma(2, 1, n), lambda n: rng.gamma(2, 1, n))
    add("gamma(2), x1.25", lambda n: rng.gamma(2, 1, n), lambda n: rng.gamma(2, 1.25, n))
    add("normal, sd x0.93 (below)", lambda n: normal(0, 1, n), lambda n: normal(0, 0.93, n))
    add("normal, +0.15 sd", lambda n: normal(0, 1, n), lambda n: normal(0.15, 1, n))
    return np.column_stack(ref_cols), np.column_stack(cur_cols), desc


def run_evidently(workdir: Path, repeat: int) -> dict[str, Any]:
    if not BENCH_VENV_PYTHON.exists():
        raise SystemExit(
            f"{BENCH_VENV_PYTHON} missing: run bench/setup_venv.sh first (Evidently lives in a "
            "separate venv)"
        )
    cmd = [
        "taskset",
        "-c",
        str(WORKER_CORE),
        str(BENCH_VENV_PYTHON),
        str(BENCH / "evidently_side.py"),
        str(workdir),
        str(repeat),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    log(f"Evidently: {' '.join(cmd[3:5])} (pinned to core {WORKER_CORE})")
    subprocess.run(cmd, check=True, env=env)
    return json.loads((workdir / "evidently.json").read_text())


def run_peer(
    workdir: Path, repeat: int, name: str, venv: str, side: str, env: dict[str, str]
) -> dict[str, Any] | None:
    """A peer's side script (``side``, in ``<repo>/<venv>``) on the same data and core; its
    ``<side's stem>.json``, or None when that venv is missing (bench/setup_<name>_venv.sh)."""
    python = BENCH.parent / venv / "bin" / "python"
    if not python.exists():
        log(f"{python} missing: {name} skipped (run bench/setup_{name.lower()}_venv.sh)")
        return None
    cmd = ["taskset", "-c", str(WORKER_CORE), str(python), str(BENCH / side), str(workdir),
           str(repeat)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", **env}
    log(f"{name}: {' '.join(cmd[3:5])} (pinned to core {WORKER_CORE})")
    subprocess.run(cmd, check=True, env=env)
    return json.loads((workdir / f"{name.lower()}.json").read_text())


def run_nannyml(workdir: Path, repeat: int) -> dict[str, Any] | None:
    """NannyML's univariate drift (Wasserstein), in .venv-nannyml."""
    return run_peer(workdir, repeat, "NannyML", ".venv-nannyml", "nannyml_drift_side.py",
                    {"NML_DISABLE_USAGE_LOGGING": "1"})  # fmt: skip


def run_whylogs(workdir: Path, repeat: int) -> dict[str, Any] | None:
    """whylogs' profiles of both datasets and its drift scores between them, in .venv-whylogs."""
    return run_peer(workdir, repeat, "whylogs", ".venv-whylogs", "whylogs_drift_side.py",
                    {"WHYLOGS_NO_ANALYTICS": "True"})  # fmt: skip


def run_ours(
    workdir: Path, ref: np.ndarray, cur: np.ndarray, names: list[str], path: str, batch: int
) -> dict[str, Any]:
    """Profile + ingest + one evaluation, in this process (pinned by the caller)."""
    import orjson
    import pyarrow as pa

    from mm_api.worker_config import parse_config
    from monitor_worker.ingest import Batch
    from monitor_worker.profile import build_profile
    from monitor_worker.reference import ReferenceData
    from monitor_worker.service import MonitorService

    config = parse_config(
        worker_config(
            None,
            outliers=False,
            window={"size": "1h", "buckets": 12, "evaluationInterval": "30s", "minSamples": 200},
            extra={"data": {"features": [{"name": n, "type": "numerical"} for n in names]}},
        )
    )
    table_ = pa.table({n: ref[:, j] for j, n in enumerate(names)})
    bodies: list[bytes] = []
    if path == "json":
        # Serialised before the clock starts: a worker receives bytes.
        for s in range(0, cur.shape[0], batch):
            blk = cur[s : s + batch]
            bodies.append(
                orjson.dumps({"columns": {n: blk[:, j].tolist() for j, n in enumerate(names)}})
            )
    # One contiguous array per column, as a DataFrame holds them (and as the peers get them).
    columns = {n: np.ascontiguousarray(cur[:, j]) for j, n in enumerate(names)}
    c0 = time.process_time()
    t0 = time.perf_counter()
    profile = build_profile(config, ReferenceData(table_, "memory"))
    t1 = time.perf_counter()
    service = MonitorService(config, profile, clock=lambda: NOW)
    if path == "json":
        for body in bodies:
            service.ingest_records(body)
    else:
        for s in range(0, cur.shape[0], batch):
            numeric = {n: col[s : s + batch] for n, col in columns.items()}
            service.state.add(Batch(len(numeric[names[0]]), numeric, {}, {}), NOW)
    t2 = time.perf_counter()
    ev = service.evaluate(service.window_summary())
    t3 = time.perf_counter()
    cpu = time.process_time() - c0
    return {
        "cpu_s": cpu,
        "path": path,
        "profile_s": t1 - t0,
        "ingest_s": t2 - t1,
        "evaluate_s": t3 - t2,
        "total_s": t3 - t0,
        "records": ev.records,
        "drift_share": ev.drift_share,
        "dataset_drift": ev.dataset_drift,
        "features": {
            k: {
                "method": v.method,
                "score": v.score,
                "threshold": v.threshold,
                "drifted": v.drifted,
                "exact": v.exact,
            }
            for k, v in ev.features.items()
        },
    }


def run_http(
    workdir: Path, ref: np.ndarray, cur: np.ndarray, names: list[str], batch: int, profile_s: float
) -> dict[str, Any]:
    """As a user runs it: the real worker process (``python -m monitor_worker``, pinned to
    its core) with the reference as a Parquet file, fed the 1M records as column-form JSON
    bodies of ``batch`` records by one client (one keep-alive connection, pinned to the other
    core), bodies serialised in advance. Timed: every POST until the last answer, then the
    first evaluation that covers every record is read from /v1/status (the worker evaluates
    every 200 ms; the wait for that tick is reported apart, not counted). The worker builds
    its profile at start-up, before the clock: ``profile_s`` (the same code, timed in this
    process) is added to the total so that it is comparable with Evidently's run."""
    import http.client

    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq
    from benchlib import CLIENT_CORE, cpu_seconds, proc_status, worker_process

    reference = workdir / "reference.parquet"
    pq.write_table(pa.table({n: ref[:, j] for j, n in enumerate(names)}), reference)
    cfg = worker_config(
        reference,
        outliers=False,
        window={"size": "1h", "buckets": 12, "evaluationInterval": "200ms", "minSamples": 200},
        extra={"data": {"reference": {"path": str(reference)},
                        "features": [{"name": n, "type": "numerical"} for n in names]}},
    )  # fmt: skip
    bodies = [
        orjson.dumps({"columns": {n: cur[s : s + batch, j].tolist() for j, n in enumerate(names)}})
        for s in range(0, cur.shape[0], batch)
    ]
    pin(CLIENT_CORE)
    try:
        with worker_process(cfg, workdir / "http") as worker:
            conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=120)
            headers = {"Content-Type": "application/json"}
            accepted = 0
            c0 = cpu_seconds(worker.pid)
            t0 = time.perf_counter()
            for body in bodies:
                conn.request("POST", "/v1/records", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise SystemExit(f"worker answered {resp.status}: {data[:300]!r}")
                accepted += int(orjson.loads(data)["accepted"])
            post_s = time.perf_counter() - t0
            cpu_s = cpu_seconds(worker.pid) - c0
            status: dict[str, Any] = {}
            while (status.get("window") or {}).get("records", 0) < accepted:
                time.sleep(0.01)
                status = worker.get_json("/v1/status")
            wait_s = time.perf_counter() - t0 - post_s
            peak_mb = proc_status(worker.pid)["VmHWM"] / 1024
            conn.close()
    finally:
        unpin()
    features = {
        name: {"score": f["score"], "drifted": f["drifted"], "method": f["method"]}
        for name, f in status["drift"]["features"].items()
    }
    return {
        "records": accepted,
        "post_s": post_s,
        "worker_cpu_s": cpu_s,
        "records_per_s": accepted / post_s,
        "evaluation_wait_s": wait_s,
        "worker_peak_rss_mb": peak_mb,
        "profile_s": profile_s,
        "total_s": profile_s + post_s,
        "features": features,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reference-rows", type=int, default=100_000)
    ap.add_argument("--current-rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours (best reported)")
    ap.add_argument("--evidently-repeat", type=int, default=1)
    ap.add_argument("--out", type=Path, help="result JSON (default bench/results/drift.json)")
    ap.add_argument("--no-http", action="store_true", help="skip the real worker over HTTP")
    ap.add_argument("--http-repeat", type=int, default=2, help="HTTP runs (best reported)")
    args = ap.parse_args()

    ref, cur, desc = make_data(args.reference_rows, args.current_rows, args.seed)
    names = feature_names(ref.shape[1])
    log(f"data: reference {ref.shape}, current {cur.shape}, seed {args.seed}")
    with tempdir("mm-bench-drift-") as tmp:
        np.save(tmp / "reference.npy", ref)
        np.save(tmp / "current.npy", cur)
        (tmp / "names.json").write_text(json.dumps(names))
        evidently = run_evidently(tmp, args.evidently_repeat)
        nannyml = run_nannyml(tmp, max(args.evidently_repeat, 3))
        whylogs = run_whylogs(tmp, args.evidently_repeat)
        ev_time = min(evidently["run_s"])
        ev_cpu = min(evidently["run_cpu_s"])
        log(
            f"Evidently {evidently['evidently']}: {ev_time:.1f}s, CPU {ev_cpu:.1f}s "
            f"(import {evidently['import_s']:.1f}s)"
        )
        pin(WORKER_CORE)
        ours: dict[str, dict[str, Any]] = {}
        for path in ("arrays", "json"):
            runs = []
            for i in range(args.repeat):
                r = run_ours(tmp, ref, cur, names, path, args.batch)
                runs.append(r)
                log(
                    f"ours ({path}) run {i + 1}/{args.repeat}: {r['total_s']:.2f}s = profile "
                    f"{r['profile_s']:.2f} + ingest {r['ingest_s']:.2f} + evaluate {r['evaluate_s']:.3f}"
                )
            best = min(runs, key=lambda r: r["total_s"])
            best["cpu_s"] = min(r["cpu_s"] for r in runs)
            best["runs_s"] = [r["total_s"] for r in runs]
            ours[path] = best
        unpin()
        http_runs = []
        if not args.no_http:
            for i in range(args.http_repeat):
                r = run_http(tmp, ref, cur, names, args.batch, ours["json"]["profile_s"])
                http_runs.append(r)
                log(
                    f"ours (http) run {i + 1}/{args.http_repeat}: {r['records_per_s']:,.0f} "
                    f"records/s, {r['post_s']:.2f}s posting (worker CPU {r['worker_cpu_s']:.2f}s)"
                )
        http = min(http_runs, key=lambda r: r["total_s"]) if http_runs else None

    mismatches = []
    rows = []
    # Relative error of each side's score against Evidently's exact one, the worst of the
    # unchanged features and of the drifted ones.
    worst: dict[str, dict[str, float]] = {"ours": {}, "nannyml": {}}
    for j, name in enumerate(names):
        e = evidently["columns"][name]
        o = ours["arrays"]["features"][name]
        # NannyML's distance normed as Evidently's: by the reference's std, at least 0.001.
        norm = max(float(np.std(ref[:, j])), 0.001)
        nml = (nannyml["columns"][name]["value"] / norm) if nannyml else None
        kind = "drifted" if e["drifted"] else "unchanged"
        for side, score in (("ours", o["score"]), ("nannyml", nml)):
            if score is not None and e["score"]:
                err = abs(score - e["score"]) / abs(e["score"])
                worst[side][kind] = max(worst[side].get(kind, 0.0), err)
        oj = ours["json"]["features"][name]
        same = e["drifted"] == o["drifted"] == oj["drifted"]
        if http is not None:
            same = same and http["features"][name]["drifted"] == e["drifted"]
        if not same:
            mismatches.append(name)
        rows.append(
            [
                name,
                desc[j],
                e["method"].replace(" (normed)", " normed"),
                f"{e['score']:.4f}",
                "drift" if e["drifted"] else "-",
                f"{o['score']:.4f}",
                "drift" if o["drifted"] else "-",
                f"{abs(o['score'] - e['score']):.1e}",
                f"{nml:.4f}" if nml is not None else "-",
                f"{abs(nml - e['score']):.1e}" if nml is not None else "-",
                "yes" if same else "NO",
            ]
        )
    feature_table = table(
        [
            "feature",
            "data",
            "Evidently test",
            "Evidently score",
            "Evidently",
            "our score",
            "ours",
            "|diff|",
            "NannyML score / ref std",
            "NannyML |diff|",
            "same",
        ],
        rows,
    )
    n_drift_e = sum(c["drifted"] for c in evidently["columns"].values())
    count = evidently.get("drifted_columns_count") or {}
    if count and int(count.get("count", -1)) != n_drift_e:
        mismatches.append("Evidently DriftedColumnsCount disagrees with the per-column rule")

    def peak(side: dict[str, Any] | None) -> str:
        mb = (side or {}).get("peak_rss_mb")
        return f"{mb:.0f}" if mb else "-"

    timing_rows = [
        ["Evidently DataDriftPreset (Report.run)", ev_time, ev_cpu, "", "", 1.0, 1.0,
         peak(evidently)],
    ]  # fmt: skip
    if nannyml is not None:
        nm_time, nm_cpu = min(nannyml["run_s"]), min(nannyml["run_cpu_s"])
        timing_rows.append(
            ["NannyML UnivariateDriftCalculator (wasserstein, fit + calculate)", nm_time, nm_cpu,
             "", "", ev_time / nm_time, ev_cpu / nm_cpu, peak(nannyml)]
        )  # fmt: skip
    if whylogs is not None:
        wl_time, wl_cpu = min(whylogs["run_s"]), min(whylogs["run_cpu_s"])
        timing_rows.append(
            ["whylogs profiles + calculate_drift_scores (KS on sketches)", wl_time, wl_cpu,
             "", "", ev_time / wl_time, ev_cpu / wl_cpu, peak(whylogs)]
        )  # fmt: skip
    for path in ("arrays", "json"):
        o = ours[path]
        timing_rows.append(
            [
                f"ours, {path}: profile + ingest {args.current_rows / 1e6:g}M + evaluate",
                o["total_s"],
                o["cpu_s"],
                f"{o['profile_s']:.2f} / {o['ingest_s']:.2f} / {o['evaluate_s']:.3f}",
                f"{o['records'] / o['ingest_s']:,.0f}",
                ev_time / o["total_s"],
                ev_cpu / o["cpu_s"],
                "-",  # this process also holds the generated data
            ]
        )
    if http is not None:
        timing_rows.append(
            [
                f"ours, real worker over HTTP: profile + {args.current_rows / 1e6:g}M posted "
                f"(column form, one client, {args.batch}-record batches)",
                http["total_s"],
                http["worker_cpu_s"],
                f"{http['profile_s']:.2f} / {http['post_s']:.2f} / -",
                f"{http['records_per_s']:,.0f}",
                ev_time / http["total_s"],
                "",
                f"{http['worker_peak_rss_mb']:.0f} (worker)",
            ]
        )
    timing_table = table(
        [
            "what",
            "wall s",
            "CPU s",
            "profile / ingest / evaluate (wall s)",
            "ingest rec/s",
            "x faster (wall)",
            "x faster (CPU)",
            "peak MB",
        ],
        timing_rows,
    )
    results = {
        "reference_rows": args.reference_rows,
        "current_rows": args.current_rows,
        "seed": args.seed,
        "features": len(names),
        "evidently": evidently,
        "ours": ours,
        "ratio_arrays": ev_time / ours["arrays"]["total_s"],
        "ratio_json": ev_time / ours["json"]["total_s"],
        "ratio_arrays_cpu": ev_cpu / ours["arrays"]["cpu_s"],
        "ratio_json_cpu": ev_cpu / ours["json"]["cpu_s"],
        "http": http,
        "http_runs": http_runs,
        "ratio_http": ev_time / http["total_s"] if http else None,
        "nannyml": nannyml,
        "whylogs": whylogs,
        "ratio_vs_whylogs_arrays": (min(whylogs["run_s"]) / ours["arrays"]["total_s"])
        if whylogs
        else None,
        "ratio_vs_whylogs_http": (min(whylogs["run_s"]) / http["total_s"])
        if whylogs and http
        else None,
        "ratio_vs_nannyml_http": (min(nannyml["run_s"]) / http["total_s"])
        if nannyml and http
        else None,
        "ratio_vs_nannyml_arrays": (min(nannyml["run_s"]) / ours["arrays"]["total_s"])
        if nannyml
        else None,
        "ratio_vs_nannyml_arrays_cpu": (min(nannyml["run_cpu_s"]) / ours["arrays"]["cpu_s"])
        if nannyml
        else None,
        "decisions_equal": not mismatches,
        "mismatches": mismatches,
        "evidently_drifted": n_drift_e,
        "ours_drifted": sum(f["drifted"] for f in ours["arrays"]["features"].values()),
        "max_score_diff": max(
            abs(ours["arrays"]["features"][n]["score"] - evidently["columns"][n]["score"])
            for n in names
        ),
        "timing_table": timing_table,
        "feature_table": feature_table,
        "worst_relative_error": worst,
        "ratio_bar": RATIO_BAR,
    }
    print()
    print(
        f"Drift, reference {args.reference_rows:,} x {len(names)}, current {args.current_rows:,} x "
        f"{len(names)}, one core (Evidently {evidently['evidently']}, pandas {evidently['pandas']})"
    )
    print(timing_table)
    print()
    print(feature_table)
    print(
        f"Evidently drifted {n_drift_e}/{len(names)} (DriftedColumnsCount {count}), ours "
        f"{results['ours_drifted']}/{len(names)}; max |score diff| {results['max_score_diff']:.4f}"
    )
    save_result("drift", results, args.out)
    if mismatches:
        print(f"FAIL: decisions differ for {', '.join(mismatches)}")
        return 1
    print("same decision for every feature")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
