"""The API server (with the real CRDs: ModelMonitor, and KServe's InferenceService from its Go
module) accepts every example object and every ModelMonitor in the docs."""

from __future__ import annotations

import pytest
import yaml

from devcluster.tools import KubectlError
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


BAD_RICH_SPECS = [
    # (what is wrong, spec part, field path and message the API server must answer with)
    ({"data": {"features": [{"name": "vec", "type": "embedding"}]}},
     "spec.data.features[0]", "dimension is required for an embedding feature"),
    ({"data": {"features": [{"name": "x", "type": "numerical", "embed": True}]}},
     "spec.data.features[0]", "embed applies to text features only"),
    ({"data": {"features": [{"name": "x", "type": "numerical", "dimension": 4}]}},
     "spec.data.features[0]", "dimension applies to embedding features only"),
    ({"measures": [{"name": "latency_ms", "thresholds": [{"quantile": "p95"}]}]},
     "spec.measures[0].thresholds[0]", "set min, max or both"),
    ({"measures": [{"name": "latency ms"}]}, "spec.measures[0].name", "should match"),
    ({"drift": {"embedding": {"sampleSize": 10}}}, "spec.drift.embedding.sampleSize", "50"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "field", "message"), BAD_RICH_SPECS)
def test_api_server_refuses_bad_text_embedding_and_measure_specs(
    cluster, crd, spec, field, message
):
    doc = {
        "apiVersion": "modelmonitor.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"model": {"task": "binary-classification", "targetRef": {"name": "m"}}, **spec},
    }
    with pytest.raises(KubectlError) as e:
        cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))
    assert field in e.value.stderr and message in e.value.stderr, e.value.stderr
