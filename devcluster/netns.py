"""A network namespace of our own, and TCP relays between it and the machine's namespace.

The real node (:mod:`devcluster.node`) lives in such a namespace: its pods get addresses on a
bridge inside it, nothing of it is visible on the machine's interfaces, and no packet leaves
the machine. Relays carry exactly the connections the node needs (kubelet and pods to the API
server, the operator to Prometheus and Alertmanager) and the ones tests need (Prometheus and the
test to a pod). A relay's socket is made inside the namespace it belongs to, so neither side
needs an address the other can route to.

``python -m devcluster.netns relay LISTEN=CONNECT ...`` runs relays; an endpoint is
``[NAMESPACE/]HOST:PORT``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .processes import Process, free_port, wait_until

NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000
READY = "relays ready"


class NetnsError(RuntimeError):
    """A namespace could not be made or entered; the message says which and why."""


@dataclass
class NetworkNamespace:
    """``ip netns add NAME`` with its loopback up, and extra addresses on it."""

    name: str

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def create(self, addresses: tuple[str, ...] = ()) -> NetworkNamespace:
        _ip("netns", "add", self.name)
        try:
            self.ip("link", "set", "lo", "up")
            for address in addresses:
                self.ip("addr", "add", f"{address}/32", "dev", "lo")
        except BaseException:
            self.delete()
            raise
        return self

    def ip(self, *args: str) -> str:
        return _ip("-n", self.name, *args)

    def enter(self) -> list[str]:
        """The prefix that runs a command in this namespace and nowhere else (the mount
        namespace stays the machine's: the kubelet's mounts must be seen by containerd)."""
        return ["nsenter", f"--net={self.path}"]

    def delete(self) -> None:
        if self.path.exists():
            _ip("netns", "delete", self.name)


def _ip(*args: str) -> str:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


# -- relays -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """``host:port``, in the machine's namespace (``netns`` None) or in a named one."""

    host: str
    port: int
    netns: str | None = None

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        netns, _, hostport = text.rpartition("/")
        host, sep, port = hostport.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"endpoint {text!r}: expected [NAMESPACE/]HOST:PORT")
        return cls(host, int(port), netns or None)

    def __str__(self) -> str:
        return f"{self.netns + '/' if self.netns else ''}{self.host}:{self.port}"


@contextlib.contextmanager
def _inside(netns: str | None) -> Iterator[None]:
    """The calling thread in ``netns`` for the block (sockets made in it stay there)."""
    if netns is None:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise NetnsError(f"setns {netns}: {os.strerror(ctypes.get_errno())}")
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - would be fatal
                os._exit(70)
    finally:
        os.close(own)
        os.close(target)


def _socket(netns: str | None) -> socket.socket:
    with _inside(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    return s


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(listen: Endpoint, connect: Endpoint) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        out = _socket(connect.netns)
        try:
            await asyncio.get_running_loop().sock_connect(out, (connect.host, connect.port))
        except OSError:
            out.close()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=out)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    sock = _socket(listen.netns)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((listen.host, listen.port))
    return await asyncio.start_server(handle, sock=sock)


async def _relay_main(pairs: list[tuple[Endpoint, Endpoint]]) -> None:
    servers = [await _serve(listen, connect) for listen, connect in pairs]
    print(READY, flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


class Relays:
    """A relay process forwarding each ``listen`` endpoint to its ``connect`` endpoint."""

    def __init__(self, name: str, pairs: list[tuple[Endpoint, Endpoint]], log_dir: Path) -> None:
        self.pairs = pairs
        argv = [sys.executable, "-m", "devcluster.netns", "relay", *(f"{a}={b}" for a, b in pairs)]
        repo = str(Path(__file__).resolve().parent.parent)
        self.process = Process(name, argv, log_dir / f"{name}.log", env={"PYTHONPATH": repo})

    def start(self) -> Relays:
        self.process.start()
        wait_until(
            lambda: READY in self.process.log_tail(),
            timeout=30,
            what=f"{self.process.name} listening",
            process=self.process,
        )
        return self

    def stop(self) -> None:
        self.process.stop(timeout=5)


def forward_from_machine(name: str, target: Endpoint, log_dir: Path) -> tuple[Relays, int]:
    """A free 127.0.0.1 port of the machine relayed to ``target``; returns the relay and it."""
    port = free_port()
    return Relays(name, [(Endpoint("127.0.0.1", port), target)], log_dir).start(), port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.netns",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    relay = sub.add_parser("relay", help="forward LISTEN=CONNECT endpoint pairs")
    relay.add_argument("pairs", nargs="+", metavar="LISTEN=CONNECT")
    args = parser.parse_args(argv)
    pairs = []
    for pair in args.pairs:
        listen, sep, connect = pair.partition("=")
        if not sep:
            parser.error(f"{pair!r}: expected LISTEN=CONNECT")
        pairs.append((Endpoint.parse(listen), Endpoint.parse(connect)))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_relay_main(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
