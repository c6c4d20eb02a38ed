"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (TLS, RBAC,
PodSecurity admission, service-account token signing), kube-controller-manager,
kube-scheduler, and kwok simulating the nodes so that pods are scheduled and become Ready.

Binaries come from ``devcluster/build.sh`` (built from Go modules, cached by version)."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .pki import ClusterPKI, create_pki
from .processes import Process, StartupError, free_port, wait_until
from .tools import REPO, kubectl

BUILD_SCRIPT = REPO / "devcluster" / "build.sh"
PROMETHEUS_OPERATOR_CRDS = REPO / "devcluster" / "crds" / "prometheus-operator"

# kwok manages only nodes with this label, so a node made by a test for another purpose
# is left alone.
KWOK_NODE_LABEL = "kwok.x-k8s.io/managed"
GPU_TAINT = {"key": "nvidia.com/gpu", "effect": "NoSchedule", "value": "present"}


def binaries_dir() -> Path:
    """Build (or find in the cache) the control-plane binaries and return their directory."""
    override = os.environ.get("MM_CONTROLPLANE_BIN")
    if override:
        return Path(override)
    out = subprocess.run(
        [str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.strip()
    return Path(out.splitlines()[-1])


@dataclass(frozen=True)
class NodeSpec:
    """A simulated node. ``gpus`` adds an ``nvidia.com/gpu`` capacity and the usual taint."""

    name: str
    cpu: str = "8"
    memory: str = "32Gi"
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)


DEFAULT_NODES = (
    NodeSpec("kwok-node-0"),
    NodeSpec("kwok-node-1"),
    NodeSpec("kwok-gpu-0", gpus=2, labels={"nvidia.com/gpu.present": "true"}),
)


class ControlPlane:
    """Start with :meth:`start`, stop with :meth:`stop`; ``kubeconfig`` is the admin's."""

    def __init__(
        self,
        workdir: Path,
        *,
        nodes: tuple[NodeSpec, ...] = DEFAULT_NODES,
        bin_dir: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.nodes = nodes
        self.bin_dir = bin_dir
        self.processes: list[Process] = []
        self.kubeconfig = workdir / "kubeconfig"
        self.api_port = 0
        self.pki: ClusterPKI | None = None
        self.timings: dict[str, float] = {}

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        t0 = time.monotonic()
        bins = self.bin_dir or binaries_dir()
        self.timings["binaries"] = time.monotonic() - t0
        self.workdir.mkdir(parents=True, exist_ok=True)
        logs = self.workdir / "logs"
        self.pki = pki = create_pki(self.workdir / "pki")
        try:
            self._start_etcd(bins, logs)
            self._start_apiserver(bins, logs, pki)
            self._write_kubeconfig(pki)
            self._start_controller_manager(bins, logs, pki)
            self._start_scheduler(bins, logs)
            self._start_kwok(bins, logs)
            self._create_nodes()
            self._install_prometheus_operator_crds()
            self._wait_for_default_service_account()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        return self

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()
        self.processes.clear()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- components ------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], logs: Path) -> Process:
        p = Process(name, argv, logs / f"{name}.log").start()
        self.processes.append(p)
        return p

    def _start_etcd(self, bins: Path, logs: Path) -> None:
        t = time.monotonic()
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        p = self._spawn(
            "etcd",
            [
                str(bins / "etcd"),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            logs,
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"

        wait_until(healthy, timeout=30, what="etcd /health", process=p)
        self.timings["etcd"] = time.monotonic() - t

    def _start_apiserver(self, bins: Path, logs: Path, pki: ClusterPKI) -> None:
        t = time.monotonic()
        self.api_port = free_port()
        p = self._spawn(
            "kube-apiserver",
            [
                str(bins / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=Node,RBAC",
                # PodSecurity is on by default; named so that removing it is a visible change.
                "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity,"
                "DefaultTolerationSeconds,ResourceQuota,LimitRanger,Priority",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
            logs,
        )
        self._wait_apiserver_ready(p)
        self.timings["kube-apiserver"] = time.monotonic() - t

    def _wait_apiserver_ready(self, p: Process) -> None:
        assert self.pki is not None
        ctx = self._admin_ssl_context(self.pki)

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=2) as r:
                return r.status == 200

        wait_until(ready, timeout=90, what="kube-apiserver /readyz", process=p, interval=0.2)

    def restart_apiserver(self, down_for: float = 0.0) -> float:
        """Stop kube-apiserver, wait ``down_for`` seconds, start it again on the same port
        (clients see their connections drop and watches break). Returns the downtime."""
        old = self._proc("kube-apiserver")
        t = time.monotonic()
        old.stop()
        time.sleep(down_for)
        new = Process(old.name, old.argv, old.log_path).start()
        self.processes[self.processes.index(old)] = new
        self._wait_apiserver_ready(new)
        return time.monotonic() - t

    @staticmethod
    def _admin_ssl_context(pki: ClusterPKI) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return ctx

    def _write_kubeconfig(self, pki: ClusterPKI) -> None:
        write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca_pem=pki.ca_cert.read_bytes(),
            user={
                "client-certificate-data": _b64(pki.admin_cert.read_bytes()),
                "client-key-data": _b64(pki.admin_key.read_bytes()),
            },
            user_name="admin",
        )

    def _start_controller_manager(self, bins: Path, logs: Path, pki: ClusterPKI) -> None:
        self._spawn(
            "kube-controller-manager",
            [
                str(bins / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                "--controllers=*",
                # Fast garbage collection and endpoint updates make tests quick.
                "--concurrent-gc-syncs=10",
                "--v=1",
            ],
            logs,
        )

    def _start_scheduler(self, bins: Path, logs: Path) -> None:
        self._spawn(
            "kube-scheduler",
            [
                str(bins / "kube-scheduler"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--v=1",
            ],
            logs,
        )

    def _start_kwok(self, bins: Path, logs: Path) -> None:
        self._spawn(
            "kwok",
            [
                str(bins / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-label-selector={KWOK_NODE_LABEL}=true",
                "--manage-single-node=",
                f"--server-address=127.0.0.1:{free_port()}",
                "--cidr=10.0.1.0/24",
                "--node-ip=127.0.0.1",
                # Heartbeats through node Leases, as kubelets do: kwok renews them well within
                # the controller-manager's 50 s grace period. Without them kwok patches node
                # status only about once a minute and nodes flap NotReady, marking pods NotReady.
                "--node-lease-duration-seconds=40",
            ],
            logs,
        )

    def _create_nodes(self) -> None:
        for spec in self.nodes:
            self.kubectl("apply", "-f", "-", input=yaml.safe_dump(node_manifest(spec)))
        names = [n.name for n in self.nodes]

        def nodes_ready() -> bool:
            out = json.loads(self.kubectl("get", "nodes", "-o", "json"))
            ready = {
                item["metadata"]["name"]
                for item in out["items"]
                for c in item.get("status", {}).get("conditions", [])
                if c["type"] == "Ready" and c["status"] == "True"
            }
            return all(n in ready for n in names)

        wait_until(nodes_ready, timeout=60, what="kwok nodes Ready", process=self._proc("kwok"))

    def _install_prometheus_operator_crds(self) -> None:
        files = sorted(PROMETHEUS_OPERATOR_CRDS.glob("*.yaml"))
        if not files:
            raise StartupError(f"no Prometheus Operator CRDs in {PROMETHEUS_OPERATOR_CRDS}")
        args = ["apply", "--server-side"]
        for f in files:
            args += ["-f", str(f)]
        self.kubectl(*args)
        names = {
            "servicemonitors.monitoring.coreos.com",
            "podmonitors.monitoring.coreos.com",
            "prometheusrules.monitoring.coreos.com",
            "alertmanagerconfigs.monitoring.coreos.com",
        }

        def established() -> bool:
            # Polled rather than `kubectl wait`, which fails at once if a read right after
            # the apply does not see the CRD yet.
            crds = json.loads(self.kubectl("get", "crd", "-o", "json"))["items"]
            ok = {
                c["metadata"]["name"]
                for c in crds
                for cond in c.get("status", {}).get("conditions", [])
                if cond["type"] == "Established" and cond["status"] == "True"
            }
            return names <= ok

        wait_until(established, timeout=60, what="Prometheus Operator CRDs Established")

    def _wait_for_default_service_account(self) -> None:
        # Pods cannot be admitted until the controller-manager made the namespace's
        # default ServiceAccount.
        def has_sa() -> bool:
            self.kubectl("get", "serviceaccount", "default", "-n", "default")
            return True

        wait_until(
            has_sa,
            timeout=60,
            what="the default ServiceAccount",
            process=self._proc("kube-controller-manager"),
            interval=0.2,
        )

    def _proc(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    # -- helpers for callers ---------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run kubectl against this cluster and return stdout (raises with stderr on failure)."""
        return kubectl(self.kubeconfig, *args, input=input, check=check)


def wait_for_default_service_account(kubeconfig: Path, namespace: str, timeout: float = 90) -> None:
    """The controller-manager adds a new namespace's ``default`` ServiceAccount shortly after
    the namespace; pods are refused until then. Polled: ``kubectl wait`` answers NotFound at
    once when the object does not exist yet (seen when the controller-manager was busy)."""
    wait_until(
        lambda: bool(
            kubectl(
                kubeconfig,
                "get",
                "serviceaccount/default",
                "-n",
                namespace,
                "-o",
                "name",
                check=False,
            )
        ),
        timeout=timeout,
        what=f"the default ServiceAccount of namespace {namespace}",
        interval=0.2,
    )


def node_manifest(spec: NodeSpec) -> dict:
    capacity = {"cpu": spec.cpu, "memory": spec.memory, "pods": "110"}
    if spec.gpus:
        capacity["nvidia.com/gpu"] = str(spec.gpus)
    node: dict = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                KWOK_NODE_LABEL: "true",
                "kubernetes.io/hostname": spec.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **spec.labels,
            },
        },
        "spec": {},
        "status": {"allocatable": capacity, "capacity": capacity},
    }
    if spec.gpus:
        node["spec"]["taints"] = [GPU_TAINT]
    return node


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    user: dict,
    user_name: str,
    namespace: str = "default",
) -> Path:
    """Write a kubeconfig with one cluster, one user and one current context."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user_name, "user": user}],
        "contexts": [
            {
                "name": user_name,
                "context": {"cluster": "local", "user": user_name, "namespace": namespace},
            }
        ],
        "current-context": user_name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def service_account_kubeconfig(
    admin_kubeconfig: Path, namespace: str, name: str, path: Path, *, duration: str = "24h"
) -> Path:
    """A kubeconfig that authenticates as ServiceAccount ``namespace/name`` with a bound token,
    so code can be tested with exactly the RBAC granted to that account."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    token = kubectl(
        admin_kubeconfig, "create", "token", name, "-n", namespace, f"--duration={duration}"
    ).strip()
    return write_kubeconfig(
        path,
        server=cluster["server"],
        ca_pem=base64.b64decode(cluster["certificate-authority-data"]),
        user={"token": token},
        user_name=f"system:serviceaccount:{namespace}:{name}",
        namespace=namespace,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
