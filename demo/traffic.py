"""Step 6: the traffic generator, a process of its own (``python -m demo.traffic``).

Each tick it draws transactions from :mod:`demo.data`, asks the model (MLServer) for
predictions, sends them to the monitor worker as records with ids (``POST /v1/records``),
and a couple of seconds later sends their ground truth (``POST /v1/labels``), as a fraud team
learns it from chargebacks. With ``--via-kserve`` the model is asked through KServe's agent
with a ``Ce-Id`` per request and nothing is posted as records: the agent's payload logger
delivers the inferences, and the labels name the rows ``<Ce-Id>/<i>``. The phase is read from ``<dir>/mode`` each tick: ``healthy``
(the world the model was trained on) or ``drifted`` (a new market: drift=1.0, and a share of
labels flipped). Counters go to ``<dir>/stats.json``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

from devcluster.controlplane import REPO
from devcluster.processes import Process

from .data import FEATURES, flip_labels, transactions
from .oip import infer

MODES = ("healthy", "drifted")


class Traffic:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir: Path = args.dir
        self.token = (args.token_file.read_text().strip()) if args.token_file else ""
        self.stats = {
            "mode": "healthy",
            "predictions": 0,
            "labels": 0,
            "errors": 0,
            "lastError": "",
        }
        self.pending: deque[tuple[float, list[dict]]] = deque()
        self.tick = 0
        self.context: ssl.SSLContext | None = None
        if args.ca_file:  # a worker serving https, reached on 127.0.0.1: the chain is checked
            self.context = ssl.create_default_context(cafile=str(args.ca_file))
            self.context.check_hostname = False

    def mode(self) -> str:
        try:
            mode = (self.dir / "mode").read_text().strip()
        except FileNotFoundError:
            return "healthy"
        return mode if mode in MODES else "healthy"

    def post(self, path: str, body: dict) -> None:
        req = urllib.request.Request(
            f"{self.args.worker_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10, context=self.context) as r:
            r.read()

    def one_batch(self) -> None:
        mode = self.mode()
        self.stats["mode"] = mode
        n, seed = self.args.batch, 1000 + self.tick
        drifted = mode == "drifted"
        data = transactions(n, seed=seed, drift=1.0 if drifted else 0.0)
        truth = flip_labels(data["label"], self.args.flip, seed) if drifted else data["label"]
        if self.args.via_kserve:
            ce_id = f"tx-{self.tick:06d}"
            infer(self.args.model_url, data, headers={"Ce-Id": ce_id})
            ids = [f"{ce_id}/{i}" for i in range(n)] if n > 1 else [ce_id]
            self.stats["predictions"] += n
            labels = [{"id": ids[i], "label": int(truth[i])} for i in range(n)]
            self.pending.append((time.monotonic() + self.args.label_delay, labels))
            return
        predicted, fraud_probability = infer(self.args.model_url, data)
        ids = [f"tx-{self.tick:06d}-{i:03d}" for i in range(n)]
        records = [
            {
                "id": ids[i],
                "features": {
                    f: (str(data[f][i]) if data[f].dtype.kind == "U" else float(data[f][i]))
                    for f in FEATURES
                },
                "prediction": predicted[i],
                "score": round(fraud_probability[i], 5),
            }
            for i in range(n)
        ]
        self.post("/v1/records", {"records": records})
        self.stats["predictions"] += n
        labels = [{"id": ids[i], "label": int(truth[i])} for i in range(n)]
        self.pending.append((time.monotonic() + self.args.label_delay, labels))

    def send_due_labels(self) -> None:
        while self.pending and self.pending[0][0] <= time.monotonic():
            _, labels = self.pending[0]
            self.post("/v1/labels", {"labels": labels})
            self.pending.popleft()
            self.stats["labels"] += len(labels)

    def save_stats(self) -> None:
        tmp = self.dir / "stats.json.tmp"
        tmp.write_text(json.dumps(self.stats))
        os.replace(tmp, self.dir / "stats.json")

    def run(self) -> None:
        interval = self.args.batch / self.args.rate
        next_tick = time.monotonic()
        while True:
            try:
                self.one_batch()
                self.send_due_labels()
            except (OSError, urllib.error.URLError, ValueError, KeyError) as e:
                self.stats["errors"] += 1
                self.stats["lastError"] = f"{type(e).__name__}: {e}"[:300]
            self.tick += 1
            self.save_stats()
            next_tick += interval
            time.sleep(max(0.0, next_tick - time.monotonic()))


class TrafficProcess:
    """The demo's handle on the generator: start it, switch its phase, read its counters."""

    def __init__(
        self,
        workdir: Path,
        model_url: str,
        worker_url: str,
        token: str | None,
        *,
        via_kserve: bool = False,
        ca: str | None = None,
    ) -> None:
        """``via_kserve``: ``model_url`` is KServe's agent, whose logger feeds the worker;
        ``ca``: the worker serves https with this CA (PEM)."""
        self.dir = workdir
        self.model_url = model_url
        self.worker_url = worker_url
        self.token = token
        self.via_kserve = via_kserve
        self.ca = ca
        self.process: Process | None = None

    def start(self) -> TrafficProcess:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.set_mode("healthy")
        argv = [
            sys.executable, "-m", "demo.traffic", "--model-url", self.model_url,
            "--worker-url", self.worker_url, "--dir", str(self.dir),
        ]  # fmt: skip
        if self.token:
            token_file = self.dir / "token"
            token_file.touch(mode=0o600)
            token_file.write_text(self.token)
            argv += ["--token-file", str(token_file)]
        if self.via_kserve:
            argv.append("--via-kserve")
        if self.ca:
            ca_file = self.dir / "worker-ca.crt"
            ca_file.write_text(self.ca)
            argv += ["--ca-file", str(ca_file)]
        self.process = Process(
            "traffic", argv, self.dir / "traffic.log", env={"PYTHONPATH": str(REPO)}, cwd=REPO
        ).start()
        return self

    def set_mode(self, mode: str) -> None:
        assert mode in MODES
        (self.dir / "mode").write_text(mode + "\n")

    def stats(self) -> dict:
        try:
            return json.loads((self.dir / "stats.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m demo.traffic", description=__doc__)
    p.add_argument("--model-url", required=True, help="MLServer base URL")
    p.add_argument("--worker-url", required=True, help="monitor worker base URL")
    p.add_argument("--token-file", type=Path, help="bearer token of the worker's ingestion API")
    p.add_argument("--via-kserve", action="store_true",
                   help="--model-url is KServe's agent: its logger sends the inferences")  # fmt: skip
    p.add_argument("--ca-file", type=Path, help="CA bundle of a worker serving https")
    p.add_argument("--dir", type=Path, required=True, help="holds mode and stats.json")
    p.add_argument("--rate", type=float, default=40, help="transactions per second")
    p.add_argument("--batch", type=int, default=20, help="transactions per request")
    p.add_argument("--label-delay", type=float, default=2.0, help="seconds until labels arrive")
    p.add_argument("--flip", type=float, default=0.2, help="share of labels flipped when drifted")
    args = p.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    Traffic(args).run()


if __name__ == "__main__":
    main()
