"""What the demo started, in order, mirrored to ``<workdir>/state.json`` so that
``python -m demo down`` (``make demo-down``) can stop a demo left running or killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devcluster.processes import stop_pid


@dataclass
class Entry:
    name: str
    stop: Callable[[], None]
    pids: list[dict] = field(default_factory=list)  # {"name", "pid", "log"}


class Running:
    def __init__(self, workdir: Path) -> None:
        self.file = workdir / "state.json"
        self.entries: list[Entry] = []
        self.info: dict[str, str] = {}

    def add(self, name: str, stop: Callable[[], None], processes) -> None:
        """``processes``: devcluster Process objects (or anything with name, pid, log_path)."""
        pids = [{"name": p.name, "pid": p.pid, "log": str(p.log_path)} for p in processes]
        self.entries.append(Entry(name, stop, pids))
        self.save()

    def note(self, **info: str) -> None:
        self.info.update(info)
        self.save()

    def save(self) -> None:
        doc = {"processes": [p for e in self.entries for p in e.pids], "info": self.info}
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps(doc, indent=2))

    def stop_all(self, log: Callable[[str], None] = print) -> None:
        while self.entries:
            entry = self.entries.pop()
            try:
                entry.stop()
                log(f"stopped {entry.name}")
            except Exception as e:  # keep stopping the rest
                log(f"stopping {entry.name} failed: {e}")
            self.save()
        self.file.unlink(missing_ok=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_deferred: list[str] = []  # signals received inside signals_deferred()
_deferring = False


def _interrupt(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    if _deferring:
        _deferred.append(name)
        return
    raise KeyboardInterrupt(name)


def interrupt_on_signals() -> None:
    """Ctrl-C, kill and a closed terminal all raise KeyboardInterrupt, so that one cleanup
    runs (SIGINT explicitly too: a shell may start background jobs with it ignored)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C and friends take effect when the block is over: for starting a process whose
    handle we only get once it is ready, so that the cleanup always knows about it."""
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _deferred:
        raise KeyboardInterrupt(_deferred.pop())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def left_running(workdir: Path) -> list[dict]:
    try:
        procs = json.loads((workdir / "state.json").read_text())["processes"]
    except (FileNotFoundError, ValueError, KeyError):
        return []
    return [p for p in procs if _alive(p["pid"])]


def info(workdir: Path) -> dict:
    try:
        return json.loads((workdir / "state.json").read_text()).get("info", {})
    except (FileNotFoundError, ValueError):
        return {}


def down(workdir: Path) -> int:
    """Stop every process a previous demo recorded, newest first (each is its own process
    group, started by the demo)."""
    procs = left_running(workdir)
    for p in reversed(procs):
        stop_pid(p["pid"])
        print(f"stopped {p['name']} (pid {p['pid']})")
    if not procs:
        print(f"no demo running (nothing alive in {workdir / 'state.json'})")
    (workdir / "state.json").unlink(missing_ok=True)
    return 0
