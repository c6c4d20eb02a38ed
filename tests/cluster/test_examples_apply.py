"""The API server (with the real CRD) accepts every example and every ModelMonitor in the docs."""

from __future__ import annotations

import pytest
import yaml

from tests.support.operator import install_crd
from tests.unit.test_examples import DOCS

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def crd(cluster):
    install_crd(cluster.kubeconfig)
    for ns in sorted({d["metadata"].get("namespace", "default") for _, d in DOCS}):
        cluster.kubectl("create", "namespace", ns, check=False)


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_api_server_accepts(cluster, crd, where, doc):
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))
    assert "created (server dry run)" in out or "configured (server dry run)" in out
