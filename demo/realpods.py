"""Real pods, when this machine can run them (root, podman, containerd and the CNI plugins:
``make setup`` installs them): the image built from the Dockerfile (devcluster/images.py), a
real node beside the kwok nodes (devcluster/node.py), the chart's operator and the worker the
operator deploys running as pods on it. ``DEMO_REAL_PODS=0`` keeps the local processes."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devcluster import images
from devcluster.node import RealNode, available, placement
from devcluster.processes import Process, wait_until
from devcluster.prometheus import Alertmanager, Prometheus
from devcluster.tools import Cluster

from .state import Running

WORKER_PORT = 8080


def unavailable() -> str | None:
    """Why the demo runs local processes instead of pods, or None when pods it is."""
    if os.environ.get("DEMO_REAL_PODS") == "0":
        return "DEMO_REAL_PODS=0"
    return available()


def start_node(
    control_plane, workdir: Path, running: Running, say: Callable[[str], None]
) -> tuple[RealNode, str]:
    """Build (or find) the images, start the real node with them; returns it and the image."""
    say("building the image from the Dockerfile (first time: about 3 minutes) ...")
    base = images.base_image()
    project = images.project_image(base)
    pause = images.pause_image(base)
    how = f"built in {project.seconds:.0f}s" if project.built else "found in podman's store"
    say(f"image {project.ref} ({how})")
    node = RealNode(control_plane, workdir, images=(project.ref,), sandbox_image=pause.ref)
    try:
        node.start()
    finally:  # registered even when it failed half way: its stop() cleans what started
        running.add("real node", node.stop, [*node.processes, *(r.process for r in node.relays)])
    return node, project.ref


def helm_args(node: RealNode, image: str, prom: Prometheus, am: Alertmanager) -> tuple[str, ...]:
    """helm options putting the operator on the real node, reading Prometheus and
    Alertmanager through the node's relays."""
    repo, _, tag = image.rpartition(":")
    place = placement()
    return (
        "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
        "--set-json", f"nodeSelector={json.dumps(place['nodeSelector'])}",
        "--set-json", f"tolerations={json.dumps(place['tolerations'])}",
        "--set", f"operator.prometheusURL=http://{node.reach_machine(prom.port)}",
        "--set", f"operator.alertmanagerURL=http://{node.reach_machine(am.port)}",
        "--set", "operator.statusInterval=2s",
    )  # fmt: skip


def operator_pod(kube: Cluster, namespace: str, release: str) -> dict:
    out = kube.kubectl(
        "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}", "-o", "json"
    )
    pods = json.loads(out)["items"]
    if len(pods) != 1:
        raise RuntimeError(f"expected one operator pod, found {len(pods)}")
    return dict(pods[0])


@dataclass
class PodWorker:
    """The worker pod, reached from the machine through a relay: what the demo's traffic and
    Prometheus need of a worker (url, port, token), and a log."""

    url: str
    port: int
    token: str
    process: Process  # the relay: stopping it is all there is to stop here
    pod: str

    def stop(self) -> None:
        self.process.stop()


def start_worker(kube: Cluster, node: RealNode, namespace: str, deployment: str) -> PodWorker:
    """Wait for the worker pod the operator created to be Running and Ready on the real
    node, then relay a 127.0.0.1 port to it."""

    def ready_pod() -> dict | None:
        out = kube.kubectl("get", "pods", "-n", namespace, "-l",
                           f"modelmonitor.io/name={deployment.removeprefix('mm-')}", "-o", "json")  # fmt: skip
        for pod in json.loads(out)["items"]:
            conditions = pod.get("status", {}).get("conditions", [])
            on_node = pod["spec"].get("nodeName") == node.name  # not one kwok still reports
            if on_node and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return dict(pod)
        return None

    wait_until(lambda: ready_pod() is not None, timeout=120, what="the worker pod Ready")
    pod = ready_pod()
    assert pod is not None
    port = node.forward(pod["status"]["podIP"], WORKER_PORT)
    relay = node.relays[-1].process
    secret = json.loads(kube.kubectl("get", "secret", f"{deployment}-token", "-n", namespace, "-o", "json"))  # fmt: skip
    token = base64.b64decode(secret["data"]["token"]).decode()
    return PodWorker(f"http://127.0.0.1:{port}", port, token, relay, pod["metadata"]["name"])
