"""Replicas and the shared store: records/s of one worker without a store, one with the
store (its cost), and two replicas sharing it (scale-out), on this 2-core machine; and the
store's memory per million predictions waiting for labels.

Each worker is pinned to its own core; the load comes from wrk (C, keep-alive, a few
percent of a core at these request rates), one per worker, posting a pool of distinct
pre-serialised batches with ids on every record (so every record also goes to the store's
pending hashes). redis-server (Debian) runs with a password and no persistence.

    .venv/bin/python bench/replicas.py                       # ~2 min
    .venv/bin/python bench/replicas.py --form columns --duration 30
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from benchlib import (
    CLIENT_CORE,
    WORKER_CORE,
    WorkerProcess,
    cpu_seconds,
    feature_names,
    loadavg,
    log,
    machine,
    save_result,
    tempdir,
    worker_config,
    write_reference,
)
from ingest import Bodies

from devcluster.redis import RedisServer

WRK_SCRIPT = """
local bodies = {}
local i = 0
init = function(args)
  for n = 1, tonumber(args[2]) do
    local f = io.open(args[1] .. "/" .. n .. ".json", "rb")
    bodies[n] = f:read("*all")
    f:close()
  end
end
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/records", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def wrk(
    port: int, bodies_dir: Path, n_bodies: int, seconds: float, cpu: int | None, script: Path
) -> dict[str, Any]:
    cmd = ["wrk", "-t1", "-c4", f"-d{seconds:.0f}s", "--latency", "-s", str(script),
           f"http://127.0.0.1:{port}", "--", str(bodies_dir), str(n_bodies)]  # fmt: skip
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(ms|s|us)", out)
    unit = {"ms": 1.0, "s": 1000.0, "us": 0.001}
    return {
        "requests": requests,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "p99_ms": float(p99.group(1)) * unit[p99.group(2)] if p99 else None,
    }


def run_case(name: str, workers: list[WorkerProcess], bodies_dir: Path, n_bodies: int, batch: int,
             seconds: float, warmup: float, script: Path, wrk_cpus: list[int | None]) -> dict[str, Any]:  # fmt: skip
    log(f"{name}: warm-up {warmup:.0f}s, load {loadavg()}")
    for w, cpu in zip(workers, wrk_cpus, strict=True):
        wrk(w.port, bodies_dir, n_bodies, warmup, cpu, script)
    log(f"{name}: {seconds:.0f}s measured")
    cpu0 = [cpu_seconds(w.pid) for w in workers]
    procs = []
    started = time.perf_counter()
    for w, cpu in zip(workers, wrk_cpus, strict=True):
        cmd = ["wrk", "-t1", "-c4", f"-d{seconds:.0f}s", "--latency", "-s", str(script),
               f"http://127.0.0.1:{w.port}", "--", str(bodies_dir), str(n_bodies)]  # fmt: skip
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    outs = [p.communicate()[0] for p in procs]
    elapsed = time.perf_counter() - started
    per_worker = []
    for w, out, c0 in zip(workers, outs, cpu0, strict=True):
        requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        per_worker.append({
            "records_per_s": requests * batch / seconds,
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "worker_cpu_share": (cpu_seconds(w.pid) - c0) / elapsed,
        })  # fmt: skip
    total = sum(p["records_per_s"] for p in per_worker)
    log(f"{name}: {total:,.0f} records/s " + ", ".join(f"{p['records_per_s']:,.0f} (CPU {p['worker_cpu_share']:.0%}, non-2xx {p['non_2xx']})" for p in per_worker))  # fmt: skip
    return {"records_per_s": total, "workers": per_worker}


def pending_memory(
    redis: RedisServer, cfg: dict[str, Any], tmp: Path, millions: float
) -> dict[str, Any]:
    """Bytes in the store per prediction waiting for its label."""
    from devcluster.processes import wait_until

    client = redis.client()
    client.flushall()
    before = int(client.info("memory")["used_memory"])
    n = int(millions * 1_000_000)
    cfg = {**cfg, "labels": {"ttl": "24h", "maxPending": n + 1000}}
    with WorkerProcess(
        tmp / "mem", cfg, env={"MM_STORE_PASSWORD": redis.password}, cpu=WORKER_CORE
    ) as w:
        batch = 5000
        for start in range(0, n, batch):
            ids = [f"pending-{start + i:09d}" for i in range(batch)]
            features = {name: [0.5] * batch for name in feature_names(20)}
            body = {"columns": {**features, "id": ids, "prediction": [1] * batch, "score": [0.7] * batch}}  # fmt: skip
            code, doc = w.post("/v1/records", body)
            assert code == 200, doc
        wait_until(lambda: w.status()["store"]["backlog"] == 0, timeout=120, what="flushed")
        time.sleep(2)
        stored = w.status()["pendingLabels"]
    after = int(client.info("memory")["used_memory"])
    per_id = (after - before) / max(stored, 1)
    log(
        f"store memory: {after - before:,} bytes for {stored:,} pending predictions: {per_id:.0f} B each, {per_id:.0f} MB per million"
    )
    return {
        "pending": stored,
        "bytes": after - before,
        "bytes_per_pending": per_id,
        "mb_per_million": per_id,
    }


def without_ids(body: bytes) -> bytes:
    """The same batch with no ``id``: nothing waits for a label, the store holds the window only."""
    import orjson

    doc = orjson.loads(body)
    if "records" in doc:
        for record in doc["records"]:
            record.pop("id", None)
    else:
        doc["columns"].pop("id", None)
    return orjson.dumps(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--form", default="rows", choices=["rows", "columns"])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--pool", type=int, default=64)
    ap.add_argument("--pending-millions", type=float, default=1.0)
    ap.add_argument(
        "--ids",
        choices=["every", "none"],
        default="every",
        help="an id on every record (each also goes to the pending predictions), or none",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        ap.error("wrk not found (Debian package wrk)")
    results: dict[str, Any] = {
        "machine": machine(),
        "form": args.form,
        "batch": args.batch,
        "ids": args.ids,
    }
    with tempdir("mm-bench-replicas-") as tmp:
        ref = write_reference(tmp / "reference.parquet", 100_000, args.features)
        bodies = Bodies(args.form, args.pool, args.batch, args.features)
        bodies_dir = tmp / "bodies"
        bodies_dir.mkdir()
        for i in range(args.pool):
            body = bodies.templates[i].render(f"b{i}")
            if args.ids == "none":
                body = without_ids(body)
            (bodies_dir / f"{i + 1}.json").write_bytes(body)
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT)
        base = worker_config(ref, outliers=False)
        base["labels"] = {"ttl": "24h", "maxPending": 1_000_000}
        with RedisServer(tmp / "redis", persist=False) as redis:
            shared = {**base, "store": {"url": redis.url, "flushInterval": "1s"}}
            env = {"MM_STORE_PASSWORD": redis.password}
            with WorkerProcess(tmp / "a", base, cpu=WORKER_CORE) as w:
                results["one_without_store"] = run_case("1 worker, no store", [w], bodies_dir, args.pool, args.batch, args.duration, args.warmup, script, [CLIENT_CORE])  # fmt: skip
            with WorkerProcess(tmp / "b", shared, env=env, cpu=WORKER_CORE) as w:
                results["one_with_store"] = run_case("1 worker + store", [w], bodies_dir, args.pool, args.batch, args.duration, args.warmup, script, [CLIENT_CORE])  # fmt: skip
            with WorkerProcess(tmp / "c0", shared, env=env, cpu=WORKER_CORE) as w0, \
                 WorkerProcess(tmp / "c1", shared, env=env, cpu=CLIENT_CORE) as w1:  # fmt: skip
                results["two_with_store"] = run_case("2 workers + store", [w0, w1], bodies_dir, args.pool, args.batch, args.duration, args.warmup, script, [None, None])  # fmt: skip
            results["store_memory"] = pending_memory(redis, shared, tmp, args.pending_millions)
    a = results["one_without_store"]["records_per_s"]
    b = results["one_with_store"]["records_per_s"]
    c = results["two_with_store"]["records_per_s"]
    results["store_cost"] = 1 - b / a
    results["scale_out"] = c / b
    log(
        f"store cost on one worker: {results['store_cost']:.1%} (aim <= 10%); 2 replicas / 1: {results['scale_out']:.2f}x (aim >= 1.7x)"
    )
    save_result("replicas" + ("-no-ids" if args.ids == "none" else ""), results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
