"""The API server (with the real CRDs: ModelMonitor, and KServe's InferenceService from its Go
module) accepts every example object and every ModelMonitor in the docs."""

from __future__ import annotations

import pytest
import yaml

from tests.support.operator import install_crd
from tests.unit.test_examples import DOCS, OBJECTS

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def crd(cluster, inferenceservice_crd):
    install_crd(cluster.kubeconfig)
    for ns in sorted({d["metadata"].get("namespace", "default") for _, d in DOCS + OBJECTS}):
        cluster.kubectl("create", "namespace", ns, check=False)


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_api_server_accepts(cluster, crd, where, doc):
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))
    assert "created (server dry run)" in out or "configured (server dry run)" in out


@pytest.mark.parametrize(("where", "doc"), OBJECTS, ids=[w for w, _ in OBJECTS])
def test_api_server_accepts_example_object(cluster, crd, where, doc):
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))
    assert "created (server dry run)" in out or "configured (server dry run)" in out
