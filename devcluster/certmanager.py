"""cert-manager's CRDs (Certificate, Issuer, ClusterIssuer) from its Go module, installed into
a local control plane: enough for the API server to validate the Certificates the operator
renders for ``worker.tls.issuerRef``. No cert-manager controller runs here."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .processes import wait_until
from .tools import REPO, kubectl

FETCH_SCRIPT = REPO / "devcluster" / "fetch-cert-manager-crds.sh"
CRDS = ("certificates", "issuers", "clusterissuers")


def crd_dir() -> Path:
    out = subprocess.run(
        [str(FETCH_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.strip()
    return Path(out.splitlines()[-1])


def install_cert_manager_crds(kubeconfig: Path) -> None:
    directory = crd_dir()
    for name in CRDS:
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts",
                "-f", str(directory / f"cert-manager.io_{name}.yaml"))  # fmt: skip
    for name in CRDS:

        def established(crd: str = f"{name}.cert-manager.io") -> bool:
            jsonpath = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
            return kubectl(kubeconfig, "get", "crd", crd, "-o", jsonpath) == "True"

        wait_until(established, timeout=60, what=f"the {name}.cert-manager.io CRD Established")
