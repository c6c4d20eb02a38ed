"""Real Prometheus and Alertmanager (Debian packages) on free loopback ports, each with a
config written for the caller, plus small clients for their HTTP APIs."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .processes import Process, free_port, wait_until

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise FileNotFoundError(
            f"{name} not found: run scripts/setup.sh (installs Debian's prometheus and "
            "prometheus-alertmanager packages)"
        )
    return path


def http_json(url: str, *, data: Any = None, method: str | None = None, timeout: float = 5) -> Any:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


class Alertmanager:
    """Alertmanager with one null receiver; alerts are read back from ``/api/v2/alerts``."""

    def __init__(self, workdir: Path, *, config: dict | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.cluster_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config or {
            "route": {
                "receiver": "null",
                "group_by": ["alertname", "namespace", "modelmonitor"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "null"}],
        }
        self.process: Process | None = None

    def start(self) -> Alertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "alertmanager.yml"
        cfg.write_text(yaml.safe_dump(self.config))
        self.process = Process(
            "alertmanager",
            [
                _binary(ALERTMANAGER_BIN),
                f"--config.file={cfg}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip: a single local instance
                "--log.level=warn",
            ],
            self.workdir / "alertmanager.log",
        ).start()
        wait_until(
            lambda: urllib.request.urlopen(f"{self.url}/-/ready", timeout=2).status == 200,
            timeout=30,
            what="alertmanager /-/ready",
            process=self.process,
        )
        return self

    def reload(self, config: dict) -> None:
        """Replace the configuration and reload (``/-/reload``); raises if it is refused."""
        self.config = config
        (self.workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/-/reload", method="POST"), timeout=10
        )

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def alerts(self, **filters: str) -> list[dict]:
        """Active alerts, optionally filtered by label equality (``alertname="..."``)."""
        query = urllib.parse.urlencode([("filter", f'{k}="{v}"') for k, v in filters.items()])
        return http_json(f"{self.url}/api/v2/alerts?{query}")

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Prometheus:
    """Prometheus scraping the given targets, evaluating the given rule groups and
    sending alerts to the given Alertmanager URLs."""

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_configs: list[dict] | None = None,
        rule_groups: list[dict] | None = None,
        alertmanagers: list[str] = (),  # type: ignore[assignment]
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.scrape_configs = scrape_configs or []
        self.rule_groups = rule_groups or []
        self.alertmanagers = list(alertmanagers)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.process: Process | None = None

    @property
    def rules_file(self) -> Path:
        return self.workdir / "rules.yml"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rules_file.write_text(yaml.safe_dump({"groups": self.rule_groups}))
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(self.rules_file)],
            "scrape_configs": self.scrape_configs,
        }
        if self.alertmanagers:
            config["alerting"] = {
                "alertmanagers": [
                    {
                        "static_configs": [
                            {"targets": [u.removeprefix("http://") for u in self.alertmanagers]}
                        ],
                        "api_version": "v2",
                    }
                ]
            }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self) -> Prometheus:
        cfg = self._write_config()
        self.process = Process(
            "prometheus",
            [
                _binary(PROMETHEUS_BIN),
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            self.workdir / "prometheus.log",
        ).start()
        wait_until(
            lambda: urllib.request.urlopen(f"{self.url}/-/ready", timeout=2).status == 200,
            timeout=30,
            what="prometheus /-/ready",
            process=self.process,
        )
        return self

    def set_rule_groups(self, groups: list[dict]) -> None:
        """Replace the rule groups and reload (``/-/reload``)."""
        self.rule_groups = groups
        self._write_config()
        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/-/reload", method="POST"), timeout=10
        )

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return ``data`` (raises on an error status)."""
        query = urllib.parse.urlencode(params)
        out = http_json(f"{self.url}/api/v1/{path}?{query}")
        if out.get("status") != "success":
            raise RuntimeError(f"prometheus {path}: {out}")
        return out["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def targets(self) -> list[dict]:
        return self.api("targets")["activeTargets"]

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]

    def wait_for(self, check: Callable[[], bool], *, timeout: float, what: str) -> None:
        wait_until(check, timeout=timeout, what=what, process=self.process, interval=0.5)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def static_scrape(job: str, targets: list[str], *, metrics_path: str = "/metrics") -> dict:
    return {
        "job_name": job,
        "metrics_path": metrics_path,
        "static_configs": [{"targets": targets}],
    }
