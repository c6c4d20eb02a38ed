"""Starting, watching and stopping the local processes a dev cluster is made of."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StartupError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


@dataclass
class Process:
    """One started component, its log file and how to stop it."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    #: Pin the process (and every thread it starts) to this CPU, as benchmarks do.
    cpu: int | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.popen = subprocess.Popen(
            list(self.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.cwd,
            # Own process group: a Ctrl-C in the terminal must not kill components
            # before the cleanup code stops them in order.
            start_new_session=True,
            preexec_fn=None if self.cpu is None else _pin(self.cpu),
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        stop_pid(self.popen.pid, timeout)
        with contextlib.suppress(Exception):
            self.popen.wait(timeout=1)


def _pin(cpu: int) -> Callable[[], None]:
    def pin() -> None:  # in the child, before exec: every thread inherits it
        os.sched_setaffinity(0, {cpu})

    return pin


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group of ``pid``, then SIGKILL what is left after ``timeout``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reaps our own children; for a detached one, probe with signal 0.
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    process: Process | None = None,
    interval: float = 0.1,
) -> None:
    """Poll ``check`` until it is true; fail with the component's log when it dies or times out."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise StartupError(
                f"{process.name} exited while waiting for {what}:\n{process.log_tail()}"
            )
        try:
            if check():
                return
        except Exception as e:  # the component is still coming up
            last_error = e
        time.sleep(interval)
    tail = f"\n{process.log_tail()}" if process is not None else ""
    raise StartupError(f"timed out after {timeout:.0f}s waiting for {what} ({last_error}){tail}")
