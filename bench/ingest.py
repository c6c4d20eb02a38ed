"""Ingestion throughput of the real worker process on one core, over HTTP and in-process.

Starts ``python -m monitor_worker`` (generated config and reference: 20 numerical features,
100k rows, binary classification, outliers on, auth off, snapshots to a temp dir) pinned to
core 0, and drives it from this process pinned to core 1 with several keep-alive
connections (one thread each, bodies serialised in advance; only the per-record ids are
spliced in per request so every prediction is new to the pending-label store). Three forms,
batches of 1000 records:

* rows:    ``POST /v1/records`` ``{"records": [{"id", "features", "prediction", "score"}]}``
* columns: ``POST /v1/records`` ``{"columns": {...}}`` (same fields)
* kserve-v2: ``POST /v1/cloudevents``, a KServe payload-logger pair per batch (``ce-type``
  ``...inference.request`` with an Open Inference Protocol ``inputs`` [1000, 20] FP64 tensor,
  then ``...inference.response`` with ``outputs`` ``predict`` [1000] INT64); records are
  counted from the joined pairs.

Then the same bodies go through ``MonitorService`` in this process, pinned to core 0 with the
worker stopped, to show what HTTP costs. Run: ``.venv/bin/python bench/ingest.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import (
    CE_REQUEST,
    CE_RESPONSE,
    CLIENT_CORE,
    WORKER_CORE,
    Request,
    Spliced,
    batch_values,
    build_service,
    ce_headers,
    column_body,
    cpu_seconds,
    drive,
    loadavg,
    log,
    pin,
    proc_status,
    row_body,
    save_result,
    table,
    tempdir,
    unpin,
    v2_request_body,
    v2_response_body,
    worker_config,
    worker_process,
    write_reference,
)

FORMS = ("rows", "columns", "kserve-v2")
JSON = {"Content-Type": "application/json"}


class Bodies:
    """A pool of distinct pre-serialised batches of one form."""

    def __init__(self, form: str, pool: int, batch: int, features: int, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        self.form = form
        self.batch = batch
        self.templates: list[Any] = []
        for _ in range(pool):
            x, pred, score = batch_values(rng, batch, features)
            if form == "rows":
                self.templates.append(Spliced(row_body(x, pred, score), batch))
            elif form == "columns":
                self.templates.append(Spliced(column_body(x, pred, score), batch))
            else:
                self.templates.append((v2_request_body(x), v2_response_body(pred)))

    @property
    def body_bytes(self) -> float:
        if self.form == "kserve-v2":
            return float(np.mean([len(a) + len(b) for a, b in self.templates]))
        return float(np.mean([t.size for t in self.templates]))

    def unit(self, i: int, run: str) -> list[Request]:
        t = self.templates[i % len(self.templates)]
        if self.form == "kserve-v2":
            ce_id = f"{run}-{i}"
            return [
                Request("/v1/cloudevents", t[0], ce_headers(ce_id, CE_REQUEST), "records"),
                Request("/v1/cloudevents", t[1], ce_headers(ce_id, CE_RESPONSE), "records"),
            ]
        return [Request("/v1/records", t.render(f"{run}-{i}"), JSON)]

    def in_process(self, service, i: int, run: str) -> int:
        """Apply unit i to a MonitorService; returns records accepted."""
        if self.form == "kserve-v2":
            t = self.templates[i % len(self.templates)]
            ce_id = f"{run}-{i}"
            service.ingest_cloudevent({"ce-id": ce_id, "ce-type": CE_REQUEST}, t[0])
            out = service.ingest_cloudevent({"ce-id": ce_id, "ce-type": CE_RESPONSE}, t[1])
            return int(out.get("records", 0))
        body = self.templates[i % len(self.templates)].render(f"{run}-{i}")
        return int(service.ingest_records(body)["accepted"])


def in_process(
    bodies: Bodies, cfg: dict[str, Any], warm: int, timed: int, repeat: int
) -> dict[str, Any]:
    """Records/s through MonitorService (no HTTP), after ``warm`` untimed batches that fill
    the pending-label store; best of ``repeat`` runs of ``timed`` batches. Row and column
    bodies get their ids rendered before the clock starts."""
    service, _ = build_service(cfg)
    run = f"ip-{bodies.form}"
    for i in range(warm):
        bodies.in_process(service, i, run)
    rates = []
    for rep in range(repeat):
        first = warm + rep * timed
        units = range(first, first + timed)
        if bodies.form == "kserve-v2":
            t = time.perf_counter()
            n = sum(bodies.in_process(service, i, run) for i in units)
            seconds = time.perf_counter() - t
        else:
            rendered = [
                bodies.templates[i % len(bodies.templates)].render(f"{run}-{i}") for i in units
            ]
            t = time.perf_counter()
            n = sum(service.ingest_records(b)["accepted"] for b in rendered)
            seconds = time.perf_counter() - t
        rates.append(n / seconds)
    return {"records_per_s": max(rates), "runs": rates, "batches_per_run": timed}


def snapshot_stall(bodies: Bodies, cfg: dict[str, Any], directory: Path) -> float:
    """Seconds one ``MonitorService.save`` takes with the pending-label store full (100k ids)
    and 12 buckets holding data. It runs on the ingest thread, so ingestion waits that long
    once per ``snapshot.interval``."""

    class Clock:
        t = 1_700_000_000.0

        def __call__(self) -> float:
            return self.t

    clock = Clock()
    service, _ = build_service(cfg, clock=clock)
    width = service.state.width
    for k in range(12):
        clock.t = 1_700_000_000.0 + k * width
        for i in range(10):
            bodies.in_process(service, k * 10 + i, "stall")
    t = time.perf_counter()
    service.save(directory)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--forms", default=",".join(FORMS), help=f"comma list of {FORMS}")
    ap.add_argument("--duration", type=float, default=30.0, help="measured seconds per round")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds per form")
    ap.add_argument("--rounds", type=int, default=2, help="HTTP rounds per form (best reported)")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--reference-rows", type=int, default=100_000)
    ap.add_argument("--pool", type=int, default=32, help="distinct pre-serialised batches")
    ap.add_argument("--in-process-batches", type=int, default=200, help="per timed run")
    ap.add_argument("--repeat", type=int, default=3, help="in-process runs (best reported)")
    ap.add_argument("--no-http", action="store_true", help="in-process figures only")
    ap.add_argument(
        "--sections",
        type=json.loads,
        default={},
        help="JSON merged into the worker config, e.g. estimation off for an A/B: "
        """'{"estimation": {"enabled": false}}' (the default reference has labels and scores, """
        "so CBPE is on)",
    )
    ap.add_argument("--out", type=Path, help="result JSON (default bench/results/ingest.json)")
    args = ap.parse_args()
    forms = [f for f in args.forms.split(",") if f]
    for f in forms:
        if f not in FORMS:
            ap.error(f"unknown form {f!r}")

    results: dict[str, Any] = {"forms": {}}
    with tempdir("mm-bench-ingest-") as tmp:
        ref = write_reference(tmp / "reference.parquet", args.reference_rows, args.features)
        cfg = worker_config(ref, snapshot_dir=tmp / "snapshots", extra=args.sections)
        log(f"building {len(forms)} body pools of {args.pool} x {args.batch} records")
        pools = {f: Bodies(f, args.pool, args.batch, args.features) for f in forms}
        if not args.no_http:
            pinned = pin(CLIENT_CORE)
            log(
                f"load generator pinned to core {pinned}; starting the worker on core {WORKER_CORE}"
            )
            with worker_process(cfg, tmp) as worker:
                log(
                    f"worker pid {worker.pid} ready in {worker.startup_seconds:.1f}s: {' '.join(worker.command)}"
                )
                results["worker_command"] = " ".join(worker.command).replace(str(tmp), "$TMP")
                results["worker_startup_s"] = worker.startup_seconds
                results["worker_rss_ready_mb"] = proc_status(worker.pid)["VmRSS"] / 1024
                for rnd, form in itertools.product(range(args.rounds), forms):
                    bodies = pools[form]
                    run = f"http-{form}-{rnd}-{int(time.time())}"
                    log(
                        f"{form} (round {rnd + 1}/{args.rounds}): {args.connections} connections, "
                        f"{args.warmup:.0f}s warm-up + {args.duration:.0f}s, load {loadavg()}"
                    )
                    cpu0: list[float] = []
                    r = drive(
                        worker.port,
                        lambda i, b=bodies, run=run: b.unit(i, run),
                        connections=args.connections,
                        duration=args.duration,
                        warmup=args.warmup,
                        on_measure=lambda pid=worker.pid, c=cpu0: c.append(cpu_seconds(pid)),
                    )
                    cpu = cpu_seconds(worker.pid) - cpu0[0]
                    per_s = r.records_per_s
                    log(
                        f"{form}: {per_s:,.0f} records/s, p50 {r.pct(50):.1f} ms, "
                        f"p99 {r.pct(99):.1f} ms, non-2xx {r.non_2xx}, worker CPU {cpu / r.seconds:.0%}"
                    )
                    entry = results["forms"].setdefault(
                        form, {"body_bytes_per_batch": bodies.body_bytes, "rounds": []}
                    )
                    entry["rounds"].append(
                        {
                            "records": r.records,
                            "seconds": r.seconds,
                            "records_per_s": per_s,
                            "requests": r.requests,
                            "p50_ms": r.pct(50),
                            "p99_ms": r.pct(99),
                            "max_ms": r.pct(100),
                            "non_2xx": r.non_2xx,
                            "statuses": r.statuses,
                            "mb_per_s": r.body_bytes / r.seconds / 1e6,
                            "worker_cpu_s": cpu,
                            # < 1: the worker did not get its whole core (other load on it)
                            "worker_cpu_share": cpu / r.seconds,
                            "records_per_cpu_s": r.records / cpu if cpu else float("nan"),
                        }
                    )
                for entry in results["forms"].values():
                    # the best round: the one least disturbed by other work on the machine
                    entry["http"] = max(entry["rounds"], key=lambda x: x["records_per_s"])
                    entry["http"]["non_2xx"] = sum(x["non_2xx"] for x in entry["rounds"])
                status = worker.get_json("/v1/status")
                results["worker_totals"] = status.get("totals")
                results["worker_pending_labels"] = status.get("pendingLabels")
                results["worker_rss_end_mb"] = proc_status(worker.pid)["VmRSS"] / 1024
            unpin()
        pin(WORKER_CORE)
        log(f"in-process (no HTTP) on core {WORKER_CORE}, worker stopped")
        warm = 120  # > maxPending / batch: the pending store is full and evicting, as in HTTP
        results["snapshot_save_s"] = snapshot_stall(pools[forms[0]], cfg, tmp / "stall")
        log(
            f"snapshot save with a full pending store and a full window: "
            f"{results['snapshot_save_s']:.2f}s (the ingest thread waits meanwhile)"
        )
        for form in forms:
            ip = in_process(pools[form], cfg, warm, args.in_process_batches, args.repeat)
            runs = ", ".join(f"{r:,.0f}" for r in ip["runs"])
            log(f"{form} in-process: best {ip['records_per_s']:,.0f} records/s ({runs})")
            results["forms"].setdefault(form, {"body_bytes_per_batch": pools[form].body_bytes})
            results["forms"][form]["in_process"] = ip
        unpin()

    rows = []
    for form in forms:
        f = results["forms"][form]
        h = f.get("http", {})
        ip = f["in_process"]["records_per_s"]
        rows.append(
            [
                form,
                f"{f['body_bytes_per_batch'] / 1e3:.0f} kB",
                h.get("records_per_s", float("nan")),
                h.get("p50_ms", float("nan")),
                h.get("p99_ms", float("nan")),
                h.get("max_ms", float("nan")),
                h.get("non_2xx", "-"),
                f"{h['worker_cpu_share']:.0%}" if h else "-",
                h.get("records_per_cpu_s", float("nan")),
                ip,
                f"{h['records_per_s'] / ip:.0%}" if h else "-",
            ]
        )
    results["table"] = table(
        [
            "form",
            "body/batch",
            "HTTP rec/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "non-2xx",
            "worker CPU",
            "rec per worker CPU-s",
            "in-process rec/s",
            "HTTP/in-proc",
        ],
        rows,
    )
    results["settings"] = {
        k: getattr(args, k)
        for k in (
            "duration",
            "warmup",
            "rounds",
            "repeat",
            "connections",
            "batch",
            "features",
            "reference_rows",
        )
    }
    print()
    print(
        f"Ingestion, batches of {args.batch} x {args.features} features, worker on 1 core, "
        f"{args.connections} connections"
    )
    print(results["table"])
    save_result("ingest", results, args.out)
    bad = sum(f.get("http", {}).get("non_2xx", 0) for f in results["forms"].values())
    if bad:
        print(f"WARNING: {bad} non-2xx answers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
