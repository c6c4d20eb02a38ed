"""KServe's payload logger feeding the worker over http and over https: what TLS costs.

MLServer serves the demo's fraud model; KServe's agent (built from its Go module) sits in
front in logger mode; a worker receives its CloudEvents, once over plain http, once over https
with a certificate made by the operator's own code (the agent's CA bundle at /etc/tls/logger,
in a private mount namespace: needs root). The same requests go through the agent both times
(``--requests`` of ``--rows`` transactions, ``--clients`` at once). Reported per run: wall
time until every event was answered, events/s delivered, and the worker's CPU seconds per
event (KServe's logger builds a new TLS transport, so a handshake, per https event).

    .venv/bin/python bench/kserve_logger.py [--requests 300] [--rows 20] [--clients 4]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[1] / "operator"),
]

from benchlib import command_line, cpu_seconds, loadavg, log, machine, save_result, table, tempdir  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from demo import venv  # noqa: E402
from demo.data import transactions  # noqa: E402
from demo.oip import infer  # noqa: E402
from demo.server import ModelServer  # noqa: E402
from devcluster.controlplane import REPO  # noqa: E402
from devcluster.kserve import KServeAgent, LoggerSettings, LoggerTls, can_run_logger_tls  # noqa: E402
from devcluster.processes import wait_until  # noqa: E402
from devcluster.worker import WorkerProcess  # noqa: E402
from mm_operator.certificates import dns_names, make_issuance  # noqa: E402

SERVICE = dns_names("mm-fraud", "ml")[0]


def answered(worker: WorkerProcess) -> float:
    """CloudEvents the worker answered so far, whatever the status."""
    total = 0.0
    for family in text_string_to_metric_families(worker.metrics()):
        for sample in family.samples:
            if sample.name == "modelmonitor_ingest_requests_total" and (
                sample.labels.get("api") == "cloudevents"
            ):
                total += sample.value
    return total


def worker_config(reference: Path, tls_dir: Path | None) -> dict:
    cfg: dict = {
        "monitor": {"name": "fraud", "namespace": "ml"},
        "model": {"name": "fraud-detector", "task": "binary-classification"},
        "data": {"reference": {"path": str(reference)}},
        "window": {"size": "30m", "evaluationInterval": "30s", "minSamples": 100},
        "snapshot": {"interval": "1h"},
    }
    if tls_dir is not None:
        cfg["tls"] = {"certificates": [{"certFile": str(tls_dir / "a.crt"),
                                        "keyFile": str(tls_dir / "a.key")}]}  # fmt: skip
    return cfg


def one_run(scheme: str, work: Path, server: ModelServer, reference: Path, args) -> dict:
    tls_dir = ca_dir = None
    ca = None
    if scheme == "https":
        issued = make_issuance("fresh", None, dns_names("mm-fraud", "ml"), "90d",
                               dt.timedelta(days=90), dt.datetime.now(dt.UTC)).issued  # fmt: skip
        tls_dir, ca_dir = work / "tls", work / "ca"
        tls_dir.mkdir(parents=True)
        ca_dir.mkdir(parents=True)
        (tls_dir / "a.crt").write_text(issued.cert_pem)
        (tls_dir / "a.key").write_text(issued.key_pem)
        (ca_dir / "service-ca.crt").write_text(issued.ca_pem)
        ca = issued.ca_pem
    worker = WorkerProcess(work / "worker", worker_config(reference, tls_dir), ca=ca, cpu=0).start()
    host = SERVICE if scheme == "https" else "127.0.0.1"
    logger = LoggerSettings(url=f"{scheme}://{host}:{worker.port}/v1/cloudevents",
                            inference_service="fraud-detector", namespace="ml")  # fmt: skip
    tls = LoggerTls(ca_dir=ca_dir, hosts={SERVICE: "127.0.0.1"}) if ca_dir else None
    bodies = [transactions(args.rows, seed=k) for k in range(args.requests)]
    try:
        with KServeAgent(work / "agent", server.port, logger, tls=tls) as agent:
            cpu0, t0 = cpu_seconds(worker.pid), time.perf_counter()
            with cf.ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(lambda k: infer(agent.url, bodies[k], headers={"Ce-Id": f"{scheme}-{k}"}),
                              range(args.requests)))  # fmt: skip
            # Counted where they arrive: the worker's answers (the agent's log is sampled
            # unless its logging config says otherwise; devcluster.kserve turns that off).
            wait_until(lambda: answered(worker) >= 2 * args.requests, timeout=600,
                       what="every event answered", interval=0.05)  # fmt: skip
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(worker.pid) - cpu0
            records = worker.status()["totals"]["records"]
            statuses = agent.wait_sent(2 * args.requests, timeout=60)
    finally:
        worker.stop()
    events = len(statuses)
    return {
        "scheme": scheme,
        "events": events,
        "answered_200": statuses.count(200),
        "records": records,
        "wall_s": round(wall, 2),
        "events_per_s": round(events / wall, 1),
        "worker_cpu_ms_per_event": round(1000 * cpu / events, 3),
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    why = can_run_logger_tls()
    if why:
        print(f"cannot run the https side: {why}", file=sys.stderr)
        return 2
    python = venv.ensure(log=log)
    results = []
    with tempdir("kserve-logger") as work:
        subprocess.run([str(python), "-m", "demo.model", "--out", str(work / "model")],
                       cwd=REPO, check=True, capture_output=True)  # fmt: skip
        server = ModelServer(work / "model" / "model.joblib", work / "mlserver").start()
        try:
            for scheme in ("http", "https"):
                log(
                    f"{scheme}: {args.requests} requests of {args.rows} rows, {args.clients} clients"
                )
                results.append(
                    one_run(scheme, work / scheme, server, work / "model" / "reference.csv", args)
                )
        finally:
            server.stop()
    print(table(list(results[0]), [list(r.values()) for r in results]))
    print(f"load average {loadavg()}")
    save_result("kserve_logger", {"machine": machine(), "command": command_line(),
                                  "load": loadavg(), "results": results}, args.out)  # fmt: skip
    ok = all(r["answered_200"] == r["events"] == 2 * args.requests for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
