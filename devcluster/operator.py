"""Running the operator as a local process: for tests (``python -m mm_operator`` with MM_*
settings) and for the demo (the command and environment of the chart's operator Deployment).
Either way it authenticates with the kubeconfig given, typically a ServiceAccount's bound
token, so it has exactly the RBAC that account is granted."""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Any

from .processes import Process, free_port, wait_until
from .tools import REPO


class OperatorProcess:
    """The operator with ``kubeconfig`` and MM_* ``settings``, its health and metrics on free
    loopback ports (what a pod gets from the network, a process gets on loopback)."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        *,
        argv: list[str] | None = None,
        **settings: str,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.argv = argv or [sys.executable, "-m", "mm_operator"]
        self.settings = {
            "MM_STATUS_INTERVAL": "2",
            "MM_WORKER_IMAGE": "example.invalid/model-monitor:test",
            **settings,
            "MM_BIND_ADDRESS": "127.0.0.1",
            "MM_METRICS_PORT": str(self.metrics_port),
            "MM_HEALTH_PORT": str(self.health_port),
        }
        self.process: Process | None = None
        self.starts = 0

    @classmethod
    def from_deployment(
        cls, deployment: dict[str, Any], kubeconfig: Path, workdir: Path
    ) -> OperatorProcess:
        """The container of an operator Deployment (the chart's), run locally: its command,
        args and literal env values."""
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
        exe = shutil.which(container["command"][0], path=path)
        if exe is None:
            raise FileNotFoundError(f"{container['command'][0]} is not installed in .venv")
        argv = [exe, *container["command"][1:], *container.get("args", [])]
        return cls(kubeconfig, workdir, argv=argv, **env)

    def start(self) -> OperatorProcess:
        env = {
            **self.settings,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "operator")]),
        }
        self.starts += 1
        self.process = Process(
            f"operator-{self.starts}",
            self.argv,
            self.workdir / f"operator-{self.starts}.log",
            env=env,
        ).start()
        wait_until(
            lambda: (
                urllib.request.urlopen(
                    f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
                ).status
                == 200
            ),
            timeout=60,
            what="operator /healthz",
            process=self.process,
            interval=0.2,
        )
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def reconfigure(self, **settings: str | None) -> None:
        """Restart with changed MM_* settings (None removes one)."""
        self.stop()
        for key, value in settings.items():
            if value is None:
                self.settings.pop(key, None)
            else:
                self.settings[key] = value
        self.start()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.process and self.process.popen:
            self.process.popen.kill()
            self.process.popen.wait(timeout=10)

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace") if self.process else ""

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return r.read().decode()

    def metric_value(self, name: str, labels: str = "") -> float:
        """Sum of the samples of ``name`` whose label set contains ``labels`` (e.g. 'method="GET"')."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith((name + "{", name + " ")) and labels in line:
                total += float(line.rsplit(" ", 1)[1])
        return total
