"""A real Kubernetes node beside kwok's: Debian's containerd 1.6 and a kubelet built from the
same Kubernetes module as the control plane (``devcluster/build.sh``), running images
imported from podman. Its pods really run.

Where it lives: a network namespace of its own (:mod:`devcluster.netns`). Pods get addresses
on a bridge inside it (``POD_SUBNET``), so each binds its own ports and no pod spec needs
``hostNetwork``; nothing of it appears on the machine's interfaces and it has no route out.
Relays give it what it needs from the machine:

- ``API_VIP:443`` (the ``kubernetes`` Service address pods are told about) -> kube-apiserver,
  for the kubelet and for pods' in-cluster clients (the serving certificate names 10.0.0.1);
- ``HOST_ALIAS:<port>`` -> ``127.0.0.1:<port>`` of the machine, for each port given in
  ``machine_ports`` or to :meth:`RealNode.reach_machine` (Prometheus, Alertmanager);
- and the other way, :meth:`RealNode.forward` gives the machine a 127.0.0.1 port for a pod's.

It is registered as ``NODE_LABEL=true`` with the taint ``NODE_TAINT``: only pods that ask for
it (:func:`placement`) run here; everything else stays on the kwok nodes.

Settings this machine needs, and why (see docs/containers.md): cgroups v1 and no systemd
(``failCgroupV1: false``, ``cgroupDriver: cgroupfs``, ``cgroupsPerQOS: false``,
``enforceNodeAllocatable: []``); no CAP_SYS_RESOURCE (containerd's
``restrict_oom_score_adj``); no registry (a local sandbox image, ``imagePullPolicy``
IfNotPresent with imported images)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from .controlplane import ControlPlane, binaries_dir, write_kubeconfig
from .images import podman
from .netns import Endpoint, NetworkNamespace, Relays, forward_from_machine
from .pki import issue_client_certificate
from .processes import Process, StartupError, wait_until

NODE_LABEL = "modelmonitor.io/real-node"
NODE_TAINT = {"key": NODE_LABEL, "value": "true", "effect": "NoSchedule"}
API_VIP = "10.0.0.1"  # first address of the control plane's --service-cluster-ip-range
HOST_ALIAS = "10.244.255.1"  # the machine, as the node's pods see it
POD_SUBNET = "10.244.0.0/24"
CNI_BIN = Path("/usr/lib/cni")  # Debian's containernetworking-plugins


def placement() -> dict[str, Any]:
    """The nodeSelector and tolerations that put a pod on the real node."""
    return {
        "nodeSelector": {NODE_LABEL: "true"},
        "tolerations": [{"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
    }


def available() -> str | None:
    """None when a real node can run here; otherwise what is missing."""
    for tool in ("containerd", "ctr", "runc", "podman", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make setup installs it)"
    if not (CNI_BIN / "bridge").is_file():
        return f"{CNI_BIN}/bridge is missing (Debian package containernetworking-plugins)"
    if os.geteuid() != 0:
        return "a kubelet and containerd need root"
    return None


class RealNode:
    """Start with :meth:`start`, stop with :meth:`stop` (pods first, then the kubelet, then
    containerd, then what their containers left: shims, mounts, the namespace)."""

    def __init__(
        self,
        control_plane: ControlPlane,
        workdir: Path,
        *,
        images: tuple[str, ...],
        sandbox_image: str,
        machine_ports: tuple[int, ...] = (),
        name: str | None = None,
    ) -> None:
        self.cp = control_plane
        self.workdir = workdir
        self.images = images
        self.sandbox_image = sandbox_image
        self.machine_ports = list(machine_ports)
        self.name = name or f"mm-node-{uuid.uuid4().hex[:6]}"
        self.netns = NetworkNamespace(self.name)
        self.processes: list[Process] = []
        self.relays: list[Relays] = []
        self.timings: dict[str, float] = {}
        # Sockets, containerd's store and the kubelet's root live under a short path: unix
        # socket paths are limited to 108 bytes, and the kubelet makes sockets deep in its root
        # ("bind: invalid argument" under a pytest temporary directory). Logs stay in workdir.
        self.dir = Path(tempfile.gettempdir()) / self.name
        self.socket = self.dir / "containerd.sock"
        self.logs = workdir / "logs"
        self.pod_logs_dir = workdir / "pod-logs"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> RealNode:
        t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(parents=True)
        try:
            self.netns.create(addresses=(API_VIP, HOST_ALIAS))
            self._relay_into_node()
            self._start_containerd()
            self._import_images()
            self._start_kubelet()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._drain()
        for p in reversed(self.processes):
            p.stop(timeout=20)
        self.processes.clear()
        self._kill_shims()
        self._unmount()
        for r in self.relays:
            r.stop()
        self.relays.clear()
        with contextlib.suppress(Exception):
            self.netns.delete()
        with contextlib.suppress(Exception):
            self.cp.kubectl("delete", "node", self.name, "--ignore-not-found", "--wait=false")

    def __enter__(self) -> RealNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- parts ---------------------------------------------------------------------------------

    def _relay_into_node(self) -> None:
        pairs = [(Endpoint(API_VIP, 443, self.name), Endpoint("127.0.0.1", self.cp.api_port))]
        pairs += [
            (Endpoint(HOST_ALIAS, p, self.name), Endpoint("127.0.0.1", p))
            for p in self.machine_ports
        ]
        self.relays.append(Relays(f"relay-{self.name}", pairs, self.logs).start())

    def reach_machine(self, port: int) -> str:
        """``host:port`` at which the node's pods reach the machine's ``127.0.0.1:port``."""
        if port not in self.machine_ports:
            pair = (Endpoint(HOST_ALIAS, port, self.name), Endpoint("127.0.0.1", port))
            self.relays.append(Relays(f"relay-{self.name}-{port}", [pair], self.logs).start())
            self.machine_ports.append(port)
        return f"{HOST_ALIAS}:{port}"

    def forward(self, pod_ip: str, port: int) -> int:
        """A 127.0.0.1 port of the machine relayed to ``pod_ip:port`` on the node."""
        relay, local = forward_from_machine(
            f"forward-{pod_ip}-{port}", Endpoint(pod_ip, port, self.name), self.logs
        )
        self.relays.append(relay)
        return local

    def _start_containerd(self) -> None:
        t = time.monotonic()
        d = self.dir
        cni_conf = d / "cni"
        cni_conf.mkdir(parents=True, exist_ok=True)
        (cni_conf / "10-mm-node.conflist").write_text(json.dumps(self._cni_conflist(), indent=1))
        config = d / "containerd.toml"
        config.write_text(self._containerd_config())
        p = self._spawn("containerd", [*self.netns.enter(), "containerd", "--config", str(config)])

        def serving() -> bool:
            return self._ctr("version", check=False).returncode == 0

        wait_until(serving, timeout=60, what="containerd serving", process=p, interval=0.2)
        self.timings["containerd"] = time.monotonic() - t

    def _cni_conflist(self) -> dict[str, Any]:
        return {
            "cniVersion": "0.4.0",
            "name": "mm-node",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "mm0",
                    "isGateway": True,
                    "ipMasq": False,  # no route out: nothing to masquerade for
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.dir / "cni-ipam"),
                    },
                }
            ],
        }

    def _containerd_config(self) -> str:
        d = self.dir
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        return f"""version = 2
root = "{d / "root"}"
state = "{d / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{d / "containerd-ttrpc.sock"}"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "opt"}"
[{cri}]
  sandbox_image = "{self.sandbox_image}"
  # runc cannot give the sandbox a negative oom_score_adj without CAP_SYS_RESOURCE ("can't
  # get final child's PID from pipe: EOF"): keep scores at or above containerd's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Pod network namespaces under our state directory, not in the machine's /var/run/netns.
  netns_mounts_under_state_dir = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d / "cni"}"
"""

    def _ctr(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise StartupError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
        return r

    def _import_images(self) -> None:
        """podman save -> ctr import into containerd's k8s.io namespace (what the CRI sees)."""
        t = time.monotonic()
        for ref in (*self.images, self.sandbox_image):
            archive = self.dir / "image.tar"
            podman("save", "--output", str(archive), ref, timeout=600)
            try:
                self._ctr("images", "import", str(archive))
            finally:
                archive.unlink(missing_ok=True)
            listed = self._ctr("images", "ls", "--quiet").stdout.split()
            if ref not in listed:
                raise StartupError(f"{ref} not in containerd after import (has {listed})")
        self.timings["images"] = time.monotonic() - t

    def _start_kubelet(self) -> None:
        assert self.cp.pki is not None, "the real node needs a control plane started here"
        t = time.monotonic()
        d = self.dir / "kubelet"
        d.mkdir(parents=True, exist_ok=True)
        user = f"system:node:{self.name}"
        issue_client_certificate(
            self.cp.pki, user, "system:nodes", d / "client.crt", d / "client.key"
        )
        write_kubeconfig(
            d / "kubeconfig",
            server=f"https://{API_VIP}:443",
            ca_pem=self.cp.pki.ca_cert.read_bytes(),
            user={"client-certificate": str(d / "client.crt"), "client-key": str(d / "client.key")},
            user_name=user,
        )
        (d / "config.yaml").write_text(yaml.safe_dump(self._kubelet_config()))
        self._spawn(
            "kubelet",
            [
                *self.netns.enter(),
                str(binaries_dir() / "kubelet"),
                f"--config={d / 'config.yaml'}",
                f"--kubeconfig={d / 'kubeconfig'}",
                f"--root-dir={d / 'root'}",
                f"--cert-dir={d / 'pki'}",
                f"--hostname-override={self.name}",
                # Loopback of the node's namespace: the kubelet leaves InternalIP unset (it
                # refuses loopback), so nothing ever dials the node from outside it.
                "--node-ip=127.0.0.1",
                f"--node-labels={NODE_LABEL}=true",
                "--v=1",
            ],
        )
        self.timings["kubelet"] = time.monotonic() - t

    def _kubelet_config(self) -> dict[str, Any]:
        assert self.cp.pki is not None
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # cgroups v1 and no systemd on this machine.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            # The kubelet's own API, inside the namespace only.
            "address": "127.0.0.1",
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.cp.pki.ca_cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "registerNode": True,
            "registerWithTaints": [NODE_TAINT],
            "podLogsDir": str(self.pod_logs_dir),
            # A shared machine's disk and memory are not this node's to guard: evict only
            # near exhaustion, and never collect our imported images (they cannot be pulled).
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
        }

    def _wait_ready(self) -> None:
        t = time.monotonic()

        def ready() -> bool:
            node = json.loads(self.cp.kubectl("get", "node", self.name, "-o", "json"))
            return any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in node.get("status", {}).get("conditions", [])
            )

        wait_until(ready, timeout=90, what=f"node {self.name} Ready", process=self._proc("kubelet"))
        self.timings["ready"] = time.monotonic() - t

    # -- for callers ---------------------------------------------------------------------------

    def pod_log(self, namespace: str, pod: str) -> str:
        """Every container log of the pod as the kubelet wrote it (``kubectl logs`` would need
        the API server to dial the node, which nothing outside its namespace can)."""
        out = []
        for path in sorted(self.pod_logs_dir.glob(f"{namespace}_{pod}_*/*/*.log")):
            out.append(f"--- {path.parent.name}/{path.name}")
            out.append(path.read_text(errors="replace"))
        return "\n".join(out)

    def pods(self) -> list[dict[str, Any]]:
        out = self.cp.kubectl(
            "get", "pods", "-A", "--field-selector", f"spec.nodeName={self.name}", "-o", "json"
        )
        return list(json.loads(out)["items"])

    # -- stopping ------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Delete the node's pods (their owners would recreate them elsewhere) and wait for
        the kubelet to stop their containers."""
        if not any(p.alive() for p in self.processes if p.name == "kubelet"):
            return
        self.cp.kubectl("cordon", self.name)  # owners' replacement pods stay Pending
        for pod in self.pods():
            meta = pod["metadata"]
            self.cp.kubectl(
                "delete",
                "pod",
                meta["name"],
                "-n",
                meta["namespace"],
                "--wait=false",
                "--ignore-not-found",
                check=False,
            )
        wait_until(lambda: not self.pods(), timeout=60, what=f"pods of {self.name} gone")

    def _kill_shims(self) -> None:
        """containerd-shim processes outlive containerd and keep their containers running;
        ours are the ones started with our socket's address."""
        needle = str(self.socket).encode()
        for pid_dir in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (pid_dir / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and needle in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid_dir.name), signal.SIGKILL)
        # Their containers' processes die with them (the shim is their subreaper); give the
        # kernel a moment before unmounting.
        time.sleep(0.5)

    def _unmount(self) -> None:
        """Unmount what is left under our directory (the kubelet bind-mounts its root onto
        itself; volumes and overlays of containers killed with their shims), then remove it:
        containerd's store holds the imported images."""
        prefix = str(self.dir.resolve()) + "/"
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for target in sorted((m for m in mounts if (m + "/").startswith(prefix)), reverse=True):
            subprocess.run(["umount", "--lazy", target], capture_output=True, timeout=30)
        still = [m for m in Path("/proc/mounts").read_text().split() if m.startswith(prefix)]
        if not still:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str]) -> Process:
        p = Process(name, argv, self.logs / f"{name}.log").start()
        self.processes.append(p)
        return p

    def _proc(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)
