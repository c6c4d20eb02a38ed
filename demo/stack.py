"""Step 1: the demo's own local control plane, Alertmanager and Prometheus (devcluster), on
free loopback ports under the demo's work directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devcluster.controlplane import ControlPlane
from devcluster.prometheus import Alertmanager, Prometheus

from .state import Running


@dataclass
class Stack:
    control_plane: ControlPlane
    alertmanager: Alertmanager
    prometheus: Prometheus


def start(workdir: Path, running: Running) -> Stack:
    cp = ControlPlane(workdir / "cluster")
    try:
        cp.start()
    finally:  # register what started even when a later component failed
        running.add("control plane", cp.stop, list(cp.processes))
    am = Alertmanager(workdir / "alertmanager")
    try:
        am.start()
    finally:
        running.add("alertmanager", am.stop, [am.process] if am.process else [])
    # Scrapes and rule evaluations every 2s so that the demo moves at a watchable pace.
    prom = Prometheus(
        workdir / "prometheus",
        alertmanagers=[am.url],
        scrape_interval="2s",
        evaluation_interval="2s",
    )
    try:
        prom.start()
    finally:
        running.add("prometheus", prom.stop, [prom.process] if prom.process else [])
    return Stack(cp, am, prom)
