"""kubectl and helm: the ones ``make setup`` unpacks from npm (``KUBECTL`` / ``HELM`` override),
and small helpers to run them against the demo's cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devcluster.controlplane import REPO
from devcluster.controlplane import kubectl as _kubectl

CACHE = Path(os.environ.get("MM_CACHE") or Path.home() / ".cache" / "model-monitor")
TOOLS_BIN = CACHE / "helm-npm-2.2.2" / "bin"


def use_bundled_tools() -> None:
    """Make devcluster's kubectl() and our helm() find the bundled binaries."""
    if not os.environ.get("KUBECTL") and (TOOLS_BIN / "kubectl").is_file():
        os.environ["KUBECTL"] = str(TOOLS_BIN / "kubectl")
    if (TOOLS_BIN / "helm").is_file() and str(TOOLS_BIN) not in os.environ["PATH"].split(":"):
        os.environ["PATH"] = f"{TOOLS_BIN}:{os.environ['PATH']}"


def helm_binary() -> str:
    found = os.environ.get("HELM") or shutil.which("helm")
    if not found:
        raise FileNotFoundError(f"helm not found in {TOOLS_BIN}: run `make setup`")
    return found


class Kube:
    """kubectl and helm bound to one kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return _kubectl(self.kubeconfig, *args, input=input, check=check)

    def helm(self, *args: str, timeout: float = 300) -> str:
        """helm in the repository's root, so that chart paths read as in the README."""
        r = subprocess.run(
            [helm_binary(), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True, text=True, timeout=timeout, cwd=REPO,
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} failed:\n{r.stderr or r.stdout}")
        return r.stdout
