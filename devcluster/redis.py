"""Debian's redis-server for tests and benchmarks: on a free loopback port, with a password,
its data (AOF) in a directory of the caller, stopped and restarted on the same port."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from .processes import Process, free_port, wait_until


class RedisServer:
    def __init__(self, workdir: Path, *, password: str | None = None, persist: bool = True) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.password = password if password is not None else secrets.token_urlsafe(16)
        self.persist = persist
        self.process: Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(
                "redis-server not found: run scripts/setup.sh (Debian redis-server)"
            )
        argv = [
            binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
            "--save", "", "--appendonly", "yes" if self.persist else "no",
            "--protected-mode", "yes", "--daemonize", "no", "--logfile", "",
        ]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.process = Process(
            f"redis-{self.starts}", self.argv(), self.workdir / f"redis-{self.starts}.log"
        ).start()
        wait_until(self.ping, timeout=30, what="redis-server PING", process=self.process)
        return self

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password or None)

    def ping(self) -> bool:
        with self.client() as c:
            return bool(c.ping())

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
