"""KServe's own pieces, built from its Go module by ``devcluster/build-kserve.sh``: the agent
(the sidecar that holds KServe's payload logger) run as a local process in front of a model
server, and the InferenceService CRD installed into a local control plane.

The agent is KServe's unmodified ``cmd/agent``; what it sends is described in docs/kserve.md.
For an https log URL it reads its CA bundle from the fixed path ``/etc/tls/logger/<file>``
(a ConfigMap volume in a pod): :class:`LoggerTls` runs it in a private mount namespace where
that path, and the Service's name in ``/etc/hosts``, exist for it alone."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .processes import Process, StartupError, free_port, wait_until
from .tools import REPO, kubectl

BUILD_SCRIPT = REPO / "devcluster" / "build-kserve.sh"
CRD_FILE = "serving.kserve.io_inferenceservices.yaml"
CRD_NAME = "inferenceservices.serving.kserve.io"

# Every agent listens on the abstract unix socket "@/kserve/agent.sock" (hard-coded in
# cmd/agent/main.go), so a second agent on the machine exits with "address already in use".
# Agents started here take this machine-wide lock first and wait for one another.
AGENT_LOCK = Path(tempfile.gettempdir()) / "model-monitor-kserve-agent.lock"
AGENT_LOCK_TIMEOUT = 600.0

# The agent answers these itself (knative's drainer and probe handler): 200 "queue" once its
# readiness probe of the model server passes. Probe requests are not logged.
PROBE_HEADERS = {"User-Agent": "kube-probe/1.35", "K-Network-Probe": "queue"}
FAILED_SENDS = ("Send did not return an HTTP response", "Failed to send cloud event")


def kserve_dir() -> Path:
    """Build (or find in the cache) the agent and the CRD; the directory holding both."""
    override = os.environ.get("MM_KSERVE_DIR")
    if override:
        return Path(override)
    out = subprocess.run(
        [str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.strip()
    return Path(out.splitlines()[-1])


def agent_binary() -> Path:
    return kserve_dir() / "agent"


def inferenceservice_crd() -> Path:
    """KServe's InferenceService CRD, as its module ships it in ``config/crd/full/``."""
    return kserve_dir() / "crds" / CRD_FILE


def install_inferenceservice_crd(kubeconfig: Path) -> None:
    """Install the CRD and wait until it is Established. Server-side apply: the file (about
    1 MB) is too large for client-side apply's last-applied annotation."""
    kubectl(
        kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(inferenceservice_crd())
    )
    wait_until(
        lambda: kubectl(
            kubeconfig, "get", "crd", CRD_NAME,
            "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}",
        ) == "True",
        timeout=60,
        what=f"the {CRD_NAME} CRD Established",
    )  # fmt: skip


#: Where KServe's agent reads the logger's CA bundle (pkg/constants: LoggerCaCertMountPath).
LOGGER_CA_DIR = "/etc/tls/logger"
DEFAULT_CA_FILE = "service-ca.crt"  # the agent's --logger-ca-cert-file default


@dataclass(frozen=True)
class LoggerTls:
    """What a pod gives the agent for an https log URL: the CA bundle mounted at
    /etc/tls/logger (here ``ca_dir``, bind-mounted, so rewriting a file in it is what the
    kubelet does when the ConfigMap changes), and the worker Service's name resolving to
    the worker (here ``hosts`` added to /etc/hosts, e.g. ``{"mm-fraud.ml.svc": "127.0.0.1"}``).

    The agent then runs under ``unshare --mount`` (root): /etc is an overlay whose writes land
    in the agent's work directory, and nothing outside its mount namespace changes."""

    ca_dir: Path
    hosts: dict[str, str]
    ca_file: str = DEFAULT_CA_FILE

    def wrap(self, argv: list[str], workdir: Path) -> list[str]:
        upper, work = workdir / "etc-upper", workdir / "etc-work"
        for d in (upper, work):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        hosts = "".join(f"{ip} {name}\n" for name, ip in self.hosts.items())
        script = (
            "set -e; "
            f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc; "
            f"mkdir -p {LOGGER_CA_DIR}; mount --bind {self.ca_dir} {LOGGER_CA_DIR}; "
            f"printf '{hosts}' >> /etc/hosts; "
            'exec "$@"'
        )
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
                "agent", *argv]  # fmt: skip

    def args(self) -> list[str]:
        return ["--logger-ca-cert-file", self.ca_file]


def can_run_logger_tls() -> str | None:
    """Why :class:`LoggerTls` cannot work on this machine (None when it can)."""
    if os.geteuid() != 0:
        return "needs root for unshare --mount (the agent's CA path /etc/tls/logger is fixed)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "true"], capture_output=True
    )
    if probe.returncode != 0:
        return f"unshare --mount fails here: {probe.stderr.decode(errors='replace').strip()}"
    return None


@dataclass(frozen=True)
class LoggerSettings:
    """What an InferenceService's ``spec.predictor.logger`` and its metadata turn into on the
    agent's command line (KServe's controller passes the same flags to the sidecar)."""

    url: str
    inference_service: str
    namespace: str
    mode: str = "all"  # all | request | response
    component: str = "predictor"
    endpoint: str = "default"  # default | canary
    metadata_headers: Sequence[str] = ()
    batch_size: int = 1  # only blob-storage URLs (s3://, gs://, abfs://) are batched

    def args(self) -> list[str]:
        args = [
            "--log-url", self.url, "--log-mode", self.mode,
            "--inference-service", self.inference_service, "--namespace", self.namespace,
            "--component", self.component, "--endpoint", self.endpoint,
        ]  # fmt: skip
        if self.metadata_headers:
            args += ["--metadata-headers", ",".join(self.metadata_headers)]
        if self.batch_size != 1:
            args += ["--log-batch-size", str(self.batch_size)]
        return args


class KServeAgent:
    """KServe's agent in logger mode on a free port, proxying to ``127.0.0.1:component_port``.

    Traffic sent to :attr:`url` reaches the model server unchanged; each request and each 200
    response is posted as a CloudEvent to ``logger.url``. The agent binds all interfaces
    (``--port`` takes a port, not an address)."""

    def __init__(
        self,
        workdir: Path,
        component_port: int,
        logger: LoggerSettings,
        tls: LoggerTls | None = None,
    ) -> None:
        self.workdir = workdir
        self.component_port = component_port
        self.logger = logger
        self.tls = tls
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None
        self._lock: IO[str] | None = None

    def argv(self) -> list[str]:
        argv = [
            str(agent_binary()),
            "--port", str(self.port),
            "--component-port", str(self.component_port),
            *self.logger.args(),
        ]  # fmt: skip
        if self.tls is None:
            return argv
        return self.tls.wrap([*argv, *self.tls.args()], self.workdir)

    def env(self) -> dict[str, str]:
        # The agent refuses to start without it; it probes the model server with it.
        probe = {
            "tcpSocket": {"port": self.component_port, "host": "127.0.0.1"},
            "successThreshold": 1,
        }
        return {
            "SERVING_READINESS_PROBE": json.dumps(probe),
            # knative's logging config for the agent's zap logger, without its production
            # sampling (after 100 identical lines in a second, 1 in 100): sent_statuses counts
            # the "Sent with status code" lines, which would be dropped above 100 events/s.
            "SERVING_LOGGING_CONFIG": json.dumps({"sampling": None}),
        }

    def start(self, timeout: float = 60) -> KServeAgent:
        argv = self.argv()  # builds the agent first if needed: not under the lock
        self._lock = _take_lock(AGENT_LOCK, AGENT_LOCK_TIMEOUT)
        try:
            self.process = Process(
                "kserve-agent", argv, self.workdir / "agent.log", env=self.env()
            ).start()
            wait_until(self.ready, timeout=timeout, what="the KServe agent's readiness probe",
                       process=self.process, interval=0.1)  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def ready(self) -> bool:
        req = urllib.request.Request(self.url + "/", headers=PROBE_HEADERS)
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        # SIGTERM makes the agent drain for 30 s before exiting; callers have waited for their
        # events already (see sent_statuses), so the rest of that wait is cut short.
        try:
            if self.process:
                self.process.stop(timeout=1)
        finally:
            if self._lock is not None:
                self._lock.close()  # releases the flock
                self._lock = None

    def log_events(self) -> list[dict]:
        """The agent's JSON log lines."""
        if self.process is None or not self.process.log_path.exists():
            return []
        events = []
        for line in self.process.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    events.append(doc)
        return events

    def sent_statuses(self) -> list[int]:
        """The HTTP status the log URL answered for each CloudEvent sent so far, in order,
        as the agent's logger logs it ("Sent with status code N")."""
        prefix = "Sent with status code "
        codes = []
        for doc in self.log_events():
            message = str(doc.get("message", ""))
            if message.startswith(prefix):
                codes.append(int(message[len(prefix) :].split(",")[0]))
        return codes

    def send_failures(self) -> list[str]:
        """Events the logger could not deliver (connection refused, timeouts, a certificate
        it does not trust), as pkg/logger/worker.go logs them: ``Send did not return an HTTP
        response: <error>`` (the transport failed), or an error followed by ``Failed to send
        cloud event`` (the event could not even be built)."""
        return [
            str(d.get("message", "")) + " " + str(d.get("error", ""))
            for d in self.log_events()
            if any(m in str(d.get("message", "")) for m in FAILED_SENDS)
        ]

    def wait_sent(self, count: int, timeout: float = 30) -> list[int]:
        """Wait until ``count`` events were answered (or failed); returns their statuses."""
        wait_until(
            lambda: len(self.sent_statuses()) + len(self.send_failures()) >= count,
            timeout=timeout, what=f"{count} CloudEvents sent by the agent", process=self.process,
        )  # fmt: skip
        return self.sent_statuses()

    def __enter__(self) -> KServeAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _take_lock(path: Path, timeout: float) -> IO[str]:
    f = path.open("a+")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                f.close()
                raise StartupError(
                    f"another KServe agent holds {path} ({holder}) after {timeout:.0f}s; only "
                    "one agent can run per machine (its unix socket @/kserve/agent.sock)"
                ) from None
            time.sleep(0.2)
    f.truncate(0)
    f.write(f"pid {os.getpid()}\n")
    f.flush()
    return f
