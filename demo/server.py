"""Step 3: MLServer 1.7.1 (from .venv-demo) serving the trained Pipeline over the Open
Inference Protocol on a free loopback port. ``parallel_workers: 0`` keeps inference in the
server process (its worker pool crashes with the current uvloop); no metrics server unless
``metrics=True`` (its own Prometheus ``/metrics`` on ``metrics_url``)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from devcluster.processes import Process, free_port, wait_until

from .oip import MODEL
from .venv import MLSERVER


class ModelServer:
    def __init__(self, model_file: Path, workdir: Path, *, metrics: bool = False) -> None:
        self.model_file = model_file
        self.dir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_port = free_port() if metrics else None
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics" if metrics else None
        self.process: Process | None = None

    def _write_settings(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "host": "127.0.0.1",
            "http_port": self.port,
            "grpc_port": free_port(),
            "parallel_workers": 0,
            "metrics_endpoint": "/metrics" if self.metrics_port else None,
            "debug": False,
        }
        if self.metrics_port:
            settings["metrics_port"] = self.metrics_port
        model = {
            "name": MODEL,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": str(self.model_file.resolve()), "version": "v1"},
        }
        (self.dir / "settings.json").write_text(json.dumps(settings, indent=2))
        (self.dir / "model-settings.json").write_text(json.dumps(model, indent=2))

    def start(self) -> ModelServer:
        self._write_settings()
        self.process = Process(
            "mlserver", [str(MLSERVER), "start", str(self.dir)], self.dir / "mlserver.log",
            cwd=self.dir,
        ).start()  # fmt: skip
        wait_until(
            lambda: urllib.request.urlopen(
                f"{self.url}/v2/models/{MODEL}/ready", timeout=2
            ).status == 200,
            timeout=90, what="MLServer model ready", process=self.process, interval=0.25,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
