"""``python -m devcluster up|down|status``: the local control plane for people (``make
cluster-up`` / ``make cluster-down``). Tests use the same code through pytest fixtures."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .controlplane import REPO, ControlPlane
from .processes import StartupError, stop_pid

DEFAULT_WORKDIR = REPO / ".devcluster"


def _state_file(workdir: Path) -> Path:
    return workdir / "state.json"


def _running(workdir: Path) -> list[dict]:
    try:
        procs = json.loads(_state_file(workdir).read_text())["processes"]
    except (FileNotFoundError, ValueError, KeyError):
        return []
    alive = []
    for p in procs:
        try:
            os.kill(p["pid"], 0)
            alive.append(p)
        except ProcessLookupError:
            pass
    return alive


def up(workdir: Path) -> int:
    if _running(workdir):
        print(f"already running (see {_state_file(workdir)}); `make cluster-down` first")
        return 1
    if workdir.exists():
        import shutil

        shutil.rmtree(workdir)
    print("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok ...")
    t0 = time.monotonic()
    cp = ControlPlane(workdir)
    try:
        cp.start()
    except StartupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    state = {
        "kubeconfig": str(cp.kubeconfig),
        "server": cp.server,
        "processes": [{"name": p.name, "pid": p.pid, "log": str(p.log_path)} for p in cp.processes],
        "timings": cp.timings,
    }
    _state_file(workdir).write_text(json.dumps(state, indent=2))
    print(f"control plane ready in {time.monotonic() - t0:.1f}s at {cp.server}")
    print(f"  kubeconfig: {cp.kubeconfig}")
    print(f"  use it:     export KUBECONFIG={cp.kubeconfig}; kubectl get nodes")
    print(f"  logs:       {workdir / 'logs'}")
    print("  stop it:    make cluster-down")
    return 0


def down(workdir: Path) -> int:
    procs = _running(workdir)
    for p in reversed(procs):
        stop_pid(p["pid"])
        print(f"stopped {p['name']} (pid {p['pid']})")
    if not procs:
        print("nothing running")
    return 0


def status(workdir: Path) -> int:
    procs = _running(workdir)
    if not procs:
        print("not running")
        return 1
    state = json.loads(_state_file(workdir).read_text())
    print(f"server {state['server']}, kubeconfig {state['kubeconfig']}")
    for p in procs:
        print(f"  {p['name']:<24} pid {p['pid']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    return {"up": up, "down": down, "status": status}[args.command](args.workdir)


if __name__ == "__main__":
    sys.exit(main())
