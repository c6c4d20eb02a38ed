"""Running the monitor worker as a real process, and talking to it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .processes import Process, free_port, wait_until
from .tools import REPO


class WorkerProcess:
    """``python -m monitor_worker`` with a config file (dict or path) on a free port; tests,
    the demo and the benchmarks all start workers with it. ``cpu`` pins it to one core.

    ``ca``: the worker serves https (its config has ``tls``); requests trust that PEM bundle.
    They reach the worker on 127.0.0.1, so the chain is verified but not the name (clients
    that check the name, like KServe's agent, reach it by its Service's name; see
    devcluster.kserve)."""

    def __init__(
        self,
        workdir: Path,
        config: dict | None = None,
        *,
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        port: int | None = None,
        cpu: int | None = None,
        ca: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.ssl_context: ssl.SSLContext | None = None
        if ca is not None:
            self.ssl_context = ssl.create_default_context(cadata=ca)
            self.ssl_context.check_hostname = False
        self.url = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        if argv is None:
            assert config is not None
            path = workdir / "worker.yaml"
            path.write_text(yaml.safe_dump(config))
            argv = ["--config", str(path), "--host", "127.0.0.1", "--port", str(self.port)]
        self.argv = [sys.executable, "-m", "monitor_worker", *argv]
        self.env = {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.cpu = cpu
        self.process: Process | None = None
        self.starts = 0
        self.token: str | None = None
        self.startup_seconds = 0.0

    @property
    def command(self) -> list[str]:
        return list(self.argv)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, wait_ready: bool = True, timeout: float = 120.0) -> WorkerProcess:
        self.starts += 1
        began = time.perf_counter()
        self.process = Process(
            f"worker-{self.starts}",
            self.argv,
            self.workdir / f"worker-{self.starts}.log",
            env=self.env,
            cwd=self.cwd,
            cpu=self.cpu,
        ).start()
        if wait_ready:
            wait_until(lambda: self.get("/readyz")[0] == 200, timeout=timeout,
                       what="worker /readyz", process=self.process, interval=0.1)  # fmt: skip
            self.startup_seconds = time.perf_counter() - began
        return self

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=20)

    def terminate(self) -> int:
        """SIGTERM and wait: the graceful path. Returns the exit code."""
        assert self.process and self.process.popen
        self.process.popen.send_signal(signal.SIGTERM)
        return self.process.popen.wait(timeout=30)

    def kill(self) -> None:
        assert self.process and self.process.popen
        os.kill(self.process.popen.pid, signal.SIGKILL)
        self.process.popen.wait(timeout=10)

    def log(self) -> str:
        return self.process.log_tail(200) if self.process else ""

    # -- HTTP ---------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:  # fmt: skip
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str) -> tuple[int, Any]:
        try:
            return self.request("GET", path, timeout=5)
        except OSError:
            return 0, None

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return self.request("POST", path, body, headers)

    def get_json(self, path: str) -> Any:
        code, doc = self.request("GET", path)
        assert code == 200, doc
        return doc

    def status(self) -> dict:
        code, doc = self.get("/v1/status")
        assert code == 200, doc
        return doc

    def metrics(self) -> str:
        with urllib.request.urlopen(
            self.url + "/metrics", timeout=5, context=self.ssl_context
        ) as r:
            return r.read().decode()
