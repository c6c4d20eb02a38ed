"""Text and embedding features through the worker, on one CPU core.

Part ``ingest`` (the real worker process, ``python -m monitor_worker``, pinned to core 0 with
one BLAS/torch thread, driven over HTTP from core 1 by 2 keep-alive connections, row form,
batches of 500 seeded review-like texts of ~90 characters, every text distinct):

* ``text``: a text feature, descriptors only;
* ``text+embed``: the same feature with ``embed: true`` (the packaged all-MiniLM-L6-v2, numpy
  runtime on CPU). Embedding runs on the evaluator thread (every ``evaluationInterval``, on
  the window's bounded text sample, each text once), not on the ingest path: the ingest rate
  is what clients see (the evaluator shares the core: embedding takes CPU from ingestion),
  and ``/v1/status`` ``embedder.textsEmbedded`` / ``seconds`` give the texts embedded per
  second of the model, in the same process on the same core, counted up to the first
  evaluation that starts after the load stops.

Memory: the worker's RSS at ready (model loaded, reference embedded) and its peak (VmHWM)
after the run.

Part ``drift``: embedding drift evaluation through ``MonitorService`` in this process (core 0,
one BLAS thread): a 384-number ``embedding`` feature, reference 10k vectors, window 10k
vectors (0.05 shift on a quarter of the coordinates), ``sampleSize`` 10000, each method;
the time of ``evaluate`` (the whole evaluation) and the drift figure.

Run with the text venv (the model needs the [text] extra):

    .venv-text/bin/python bench/text_worker.py [--seconds 20] [--part ingest|drift|all]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import benchlib
import numpy as np
import orjson
from benchlib import (
    CLIENT_CORE,
    WORKER_CORE,
    Request,
    WorkerProcess,
    drive,
    log,
    proc_status,
    table,
)

ROOT = benchlib.ROOT
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
BATCH = 500


def reference_file(path: Path, n: int = 2000) -> Path:
    from tests.unit.stats.peer_cases import texts

    rng = np.random.default_rng(1)
    with path.open("w") as f:
        for t in texts(1, n):
            f.write(json.dumps({"review": t, "label": int(rng.integers(0, 2))}) + "\n")
    return path


def config(reference: Path, embed: bool) -> dict[str, Any]:
    feature: dict[str, Any] = {"name": "review", "type": "text"}
    if embed:
        feature["embed"] = True
    return {
        "monitor": {"name": "bench"},
        "model": {"name": "bench", "task": "binary-classification"},
        "data": {"reference": {"path": str(reference)}, "features": [feature]},
        "window": {"size": "1h", "buckets": 12, "evaluationInterval": "2s", "minSamples": 100},
        "outliers": {"enabled": False},
        "drift": {"embedding": {"sampleSize": 1000}},
        "embedder": {"device": "cpu"},
    }


def bodies(n_batches: int) -> list[bytes]:
    from tests.unit.stats.peer_cases import texts

    out = []
    for b in range(n_batches):
        batch = texts(100 + b, BATCH)
        # Distinct texts: the embedding cache must not answer for repeats.
        records = [{"features": {"review": f"{t} #{b}-{i}"}} for i, t in enumerate(batch)]
        out.append(orjson.dumps({"records": records}))
    return out


def status(worker: WorkerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{worker.url}/v1/status", timeout=30) as r:
        return json.loads(r.read())


def run_ingest(workdir: Path, seconds: float) -> list[dict[str, Any]]:
    reference = reference_file(workdir / "reference.jsonl")
    pool = bodies(40)
    rows = []
    for name, embed in (("text", False), ("text+embed", True)):
        worker = WorkerProcess(
            workdir / name, config(reference, embed), cpu=WORKER_CORE, env=ONE_THREAD
        )
        began = time.perf_counter()
        worker.start(timeout=600)
        ready_s = time.perf_counter() - began
        at_ready = proc_status(worker.pid)
        before = status(worker).get("embedder", {})
        benchlib.pin(CLIENT_CORE)
        try:
            result = drive(
                worker.port,
                lambda i: [Request("/v1/records", pool[i % len(pool)], {})],
                connections=2,
                duration=seconds,
                warmup=2.0,
            )
        finally:
            benchlib.unpin()
        # The evaluation running when the load stopped may still be embedding: wait for one
        # that began after it, so every text sampled during the run is counted.
        ended = time.time()
        deadline = time.monotonic() + 300
        after = status(worker)
        while (after.get("evaluatedAt") or 0) <= ended + 0.5 and time.monotonic() < deadline:
            time.sleep(1)
            after = status(worker)
        peak = proc_status(worker.pid)
        worker.stop()
        e = after.get("embedder") or {}
        texts_embedded = e.get("textsEmbedded", 0) - before.get("textsEmbedded", 0)
        embed_seconds = e.get("seconds", 0.0) - before.get("seconds", 0.0)
        embed_cpu = e.get("cpuSeconds", 0.0) - before.get("cpuSeconds", 0.0)
        rows.append(
            {
                "config": name,
                "ingest_texts_per_s": result.records_per_s,
                "non_2xx": result.non_2xx,
                "p50_ms": result.pct(50),
                "p99_ms": result.pct(99),
                "embedded_in_run": texts_embedded,
                "embed_texts_per_s": texts_embedded / embed_seconds if embed_seconds else None,
                "embed_texts_per_cpu_s": texts_embedded / embed_cpu if embed_cpu else None,
                "reference_embedded": before.get("textsEmbedded"),
                "ready_s": ready_s,
                "rss_ready_mb": at_ready["VmRSS"] / 1024,
                "rss_peak_mb": peak["VmHWM"] / 1024,
                "device": e.get("device"),
                "runtime": e.get("runtime"),
                "evaluation_s": after.get("evaluationSeconds"),
            }
        )
        log(f"{name}: {rows[-1]}")
    return rows


def run_drift(n: int = 10_000, dim: int = 384) -> list[dict[str, Any]]:
    import pyarrow as pa
    from threadpoolctl import threadpool_limits

    from mm_api.worker_config import parse_config
    from monitor_worker.profile import build_profile
    from monitor_worker.reference import ReferenceData
    from monitor_worker.service import MonitorService
    from tests.unit.stats.peer_cases import vectors

    benchlib.pin(WORKER_CORE)
    reference = vectors(41, n, dim)
    current = vectors(42, n, dim, shift=0.05)
    body = orjson.dumps({"columns": {"vec": current.tolist()}})
    rows = []
    with threadpool_limits(1):
        for method in ("domain-classifier", "mmd", "auto"):
            cfg = parse_config(
                {
                    "monitor": {"name": "bench"},
                    "model": {"name": "bench", "task": "regression"},
                    "data": {"features": [{"name": "vec", "type": "embedding", "dimension": dim}]},
                    "window": {"minSamples": 100},
                    "outliers": {"enabled": False},
                    "drift": {"embedding": {"method": method, "sampleSize": n}},
                }
            )
            table_ = pa.table({"vec": reference.tolist()})
            t0 = time.perf_counter()
            svc = MonitorService(cfg, build_profile(cfg, ReferenceData(table_, "bench")))
            profile_s = time.perf_counter() - t0
            svc.ingest_records(body)
            times = []
            for _ in range(3):
                bucket = svc.window_summary()
                t0 = time.perf_counter()
                ev = svc.evaluate(bucket)
                times.append(time.perf_counter() - t0)
            figure = ev.features["vec"]
            rows.append(
                {
                    "method": method,
                    "chosen": figure.method,
                    "evaluate_s_cold": times[0],
                    "evaluate_s_best": min(times),
                    "score": figure.score,
                    "threshold": figure.threshold,
                    "drifted": figure.drifted,
                    "profile_s": profile_s,
                }
            )
            log(f"drift {method}: {rows[-1]}")
    benchlib.unpin()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--part", choices=["ingest", "drift", "all"], default="all")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    data: dict[str, Any] = {"machine": benchlib.machine(), "load_before": benchlib.loadavg()}
    if args.part in ("ingest", "all"):
        with benchlib.tempdir("text-worker") as workdir:
            data["ingest"] = run_ingest(workdir, args.seconds)
        print(
            table(
                ["config", "ingest texts/s", "non-2xx", "p99 ms", "embedded", "embed texts/s",
                 "embed texts/CPU-s", "ready s", "RSS ready MB", "RSS peak MB", "device/runtime"],
                [[r["config"], r["ingest_texts_per_s"], r["non_2xx"], r["p99_ms"],
                  r["embedded_in_run"], r["embed_texts_per_s"], r["embed_texts_per_cpu_s"],
                  r["ready_s"], r["rss_ready_mb"],
                  r["rss_peak_mb"], f"{r['device']}/{r['runtime']}"] for r in data["ingest"]],
            )
        )  # fmt: skip
    if args.part in ("drift", "all"):
        data["drift"] = run_drift()
        print(
            table(
                ["method", "chosen", "evaluate s (cold)", "evaluate s (best of 3)", "score",
                 "threshold", "drifted"],
                [[r["method"], r["chosen"], r["evaluate_s_cold"], r["evaluate_s_best"],
                  r["score"], r["threshold"], r["drifted"]] for r in data["drift"]],
            )
        )  # fmt: skip
    data["load_after"] = benchlib.loadavg()
    benchlib.save_result("text_worker", data, args.out)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
