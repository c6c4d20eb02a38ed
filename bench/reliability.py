"""Faults and overload, measured on the real worker process (docs/reliability.md).

1. SIGTERM while 4 clients stream: records answered 2xx vs records found after a restart.
2. kill -9 while streaming, for a few snapshot intervals: records lost vs records accepted
   in the last snapshot interval before the kill.
3. Sustained overload (8 clients sending as fast as they can to a worker with a small
   queue): share of 429s, records answered 2xx vs records counted, and RSS over time.

    .venv/bin/python bench/reliability.py [--out results.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from devcluster.worker import WorkerProcess  # noqa: E402

BATCH = 1000


def reference(path: Path) -> None:
    rng = np.random.default_rng(0)
    cols = {f"f{j}": rng.normal(size=5000).round(4) for j in range(20)}
    lines = [",".join([*cols, "prediction"])]
    for i in range(5000):
        lines.append(",".join([*(str(cols[c][i]) for c in cols), str(i % 2)]))
    path.write_text("\n".join(lines))


def config(tmp: Path, **overrides) -> dict:
    cfg = {
        "monitor": {"name": "bench"},
        "model": {"name": "bench", "task": "binary-classification"},
        "data": {"reference": {"path": str(tmp / "reference.csv")}},
        "window": {"size": "10m", "evaluationInterval": "5s", "minSamples": 100},
        "snapshot": {"directory": str(tmp / "state"), "interval": "2s"},
    }
    cfg.update(overrides)
    return cfg


def bodies(n: int) -> list[bytes]:
    rng = np.random.default_rng(1)
    out = []
    for b in range(n):
        x = rng.normal(size=(BATCH, 20)).round(4)
        cols = {f"f{j}": x[:, j].tolist() for j in range(20)}
        cols["id"] = [f"{b}-{i}" for i in range(BATCH)]
        cols["prediction"] = [i % 2 for i in range(BATCH)]
        out.append(json.dumps({"columns": cols}).encode())
    return out


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


class Stream:
    """Clients posting batches in a loop, remembering when each 2xx came back."""

    def __init__(self, worker: WorkerProcess, payloads: list[bytes], clients: int) -> None:
        self.worker, self.payloads, self.clients = worker, payloads, clients
        self.accepted: list[float] = []  # time of each 2xx (one batch each)
        self.codes: dict[int, int] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.pool = cf.ThreadPoolExecutor(clients)

    def _client(self, k: int) -> None:
        i = k
        while not self.stop.is_set():
            try:
                code, _ = self.worker.post("/v1/records", self.payloads[i % len(self.payloads)])
            except OSError:
                code = 0
            with self.lock:
                self.codes[code] = self.codes.get(code, 0) + 1
                if code == 200:
                    self.accepted.append(time.monotonic())
            if code == 0:
                return  # the worker is gone
            i += self.clients

    def start(self) -> Stream:
        for k in range(self.clients):
            self.pool.submit(self._client, k)
        return self

    def join(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True)


def sigterm(tmp: Path, payloads: list[bytes]) -> dict:
    cfg = config(tmp, snapshot={"directory": str(tmp / "state-term"), "interval": "1h"})
    w = WorkerProcess(tmp / "term", cfg).start()
    s = Stream(w, payloads, 4).start()
    time.sleep(8)
    assert w.process and w.process.popen
    w.process.popen.send_signal(signal.SIGTERM)
    code = w.process.popen.wait(timeout=60)
    s.join()
    answered = len(s.accepted) * BATCH
    w2 = WorkerProcess(tmp / "term2", cfg).start()
    found = w2.status()["totals"]["records"]
    w2.stop()
    return {"exitCode": code, "answered2xx": answered, "restored": found, "lost": answered - found}


def kill9(tmp: Path, payloads: list[bytes], interval: float, runs: int = 3) -> list[dict]:
    results = []
    for r in range(runs):
        state = tmp / f"state-kill-{r}"
        cfg = config(tmp, snapshot={"directory": str(state), "interval": f"{int(interval)}s"})
        w = WorkerProcess(tmp / f"kill{r}", cfg).start()
        s = Stream(w, payloads, 4).start()
        time.sleep(interval * 3 + 0.7 * interval * r / max(runs - 1, 1))
        w.kill()
        killed_at = time.monotonic()
        s.join()
        answered = sum(1 for t in s.accepted if t <= killed_at) * BATCH
        last_interval = sum(1 for t in s.accepted if killed_at - interval <= t <= killed_at) * BATCH
        w2 = WorkerProcess(tmp / f"kill{r}b", cfg).start()
        found = w2.status()["totals"]["records"]
        w2.stop()
        results.append(
            {
                "answered2xx": answered,
                "restored": found,
                "lost": answered - found,
                "acceptedInLastInterval": last_interval,
            }
        )
    return results


def overload(tmp: Path, payloads: list[bytes], seconds: float = 40) -> dict:
    cfg = config(
        tmp,
        ingestion={"maxQueue": 4},
        snapshot={"directory": str(tmp / "state-ol"), "interval": "10s"},
    )
    w = WorkerProcess(tmp / "ol", cfg).start()
    assert w.process
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(w.process.pid, {0})
    s = Stream(w, payloads, 8).start()
    samples = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        time.sleep(2)
        samples.append(round(rss_mb(w.process.pid), 1))
    s.join()
    time.sleep(1)
    counted = w.status()["totals"]["records"]
    w.stop()
    total = sum(s.codes.values())
    return {
        "seconds": seconds,
        "requests": total,
        "codes": s.codes,
        "share429": round(s.codes.get(429, 0) / total, 3) if total else None,
        "answered2xx": len(s.accepted) * BATCH,
        "counted": counted,
        "rssMB": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        reference(tmp / "reference.csv")
        payloads = bodies(40)
        print("1/3 SIGTERM while streaming ...", flush=True)
        term = sigterm(tmp, payloads)
        print(f"    {term}")
        print("2/3 kill -9 while streaming (snapshot every 2 s, 3 runs) ...", flush=True)
        kills = kill9(tmp, payloads, interval=2.0)
        for k in kills:
            print(f"    {k}")
        print("3/3 sustained overload, 8 clients, queue of 4, 40 s ...", flush=True)
        ol = overload(tmp, payloads)
        print(f"    {ol}")
    result = {
        "sigterm": term,
        "kill9": kills,
        "overload": ol,
        "machine": {"nproc": os.cpu_count(), "load": os.getloadavg()},
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    ok = term["lost"] == 0 and all(k["lost"] <= k["acceptedInLastInterval"] for k in kills)
    ok = ok and ol["answered2xx"] == ol["counted"]
    print("OK" if ok else "FAILED: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
