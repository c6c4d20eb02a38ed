"""The API server itself refuses estimation, multivariate-drift and reference specs that cannot work,
naming the field (the CRD's CEL rules, generated beside the types in mm_api), and accepts the
ones that can."""

from __future__ import annotations

import subprocess

import pytest

from tests.cluster.test_operator import apply, monitor, reference_configmap
from tests.support.operator import get_json

pytestmark = pytest.mark.cluster
REFERENCE = {"configMapKeyRef": {"name": "fraud-reference", "key": "reference.csv"}}
ONE_FEATURE = [{"name": "amount", "type": "numerical"}]

REFUSED = {
    "multivariate drift over one declared feature": (
        {"data": {"reference": REFERENCE, "features": ONE_FEATURE},
         "drift": {"multivariate": {"method": "pca-reconstruction"}}},
        "spec.drift.multivariate",
        "multivariate drift needs at least two features",
    ),
    "multivariate drift without a reference": (
        {"data": {}, "drift": {"multivariate": {}}},
        "spec.drift.multivariate",
        "drift.multivariate needs data.reference",
    ),
    "estimation required without a reference": (
        {"data": {}, "estimation": {"enabled": True}},
        "spec.estimation.enabled",
        "estimation.enabled: true needs data.reference",
    ),
    "a domain-classifier threshold that is no ROC-AUC": (
        {"drift": {"multivariate": {"method": "domain-classifier", "threshold": 0.3}}},
        "spec.drift.multivariate.threshold",
        "a domain-classifier threshold is a ROC-AUC in [0.5, 1)",
    ),
    "an unknown multivariate method": (
        {"drift": {"multivariate": {"method": "autoencoder"}}},
        "spec.drift.multivariate.method",
        "Unsupported value",
    ),
    "reference headers without a url": (
        {"data": {"reference": {**REFERENCE, "headersSecretRef": {"name": "auth"}}}},
        "spec.data.reference.headersSecretRef",
        "headersSecretRef is sent with the url: set url too",
    ),
    "a reference sample too small to profile": (
        {"data": {"reference": {**REFERENCE, "sampleRows": 10}}},
        "spec.data.reference.sampleRows",
        "should be greater than or equal to 1000",
    ),
    "a reload interval that is no duration": (
        {"data": {"reference": {**REFERENCE, "reloadInterval": "hourly"}}},
        "spec.data.reference.reloadInterval",
        "should match",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_specs_that_cannot_work_are_refused_naming_the_field(
    cluster, operator_kubeconfig, namespace, case
):
    spec, field, message = REFUSED[case]
    with pytest.raises(subprocess.CalledProcessError) as e:
        apply(cluster, namespace, monitor("bad", **spec))
    assert field in e.value.stderr and message in e.value.stderr, e.value.stderr


def test_estimation_and_multivariate_drift_specs_are_accepted_with_their_defaults(
    cluster, operator_kubeconfig, namespace
):
    apply(
        cluster, namespace, reference_configmap(),
        monitor("ok", estimation={"chunkSize": 500}, drift={"multivariate": {}}),
    )  # fmt: skip
    spec = get_json(cluster.kubeconfig, "modelmonitor", "ok", "-n", namespace)["spec"]
    assert spec["drift"]["multivariate"] == {"method": "pca-reconstruction", "sampleSize": 2000}
    assert spec["estimation"] == {"chunkSize": 500, "sampleSize": 2000}
