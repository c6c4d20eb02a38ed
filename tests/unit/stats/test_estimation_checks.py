"""Refusals of estimation that cannot work: each names the config field, on real
``ReferenceData`` tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitor_worker.estimation_checks import (
    MIN_REFERENCE_ROWS,
    EstimationRefused,
    check_cbpe,
    check_dle,
    check_multivariate,
)
from monitor_worker.reference import ReferenceData

N = 500


def reference(**columns) -> ReferenceData:
    return ReferenceData(pa.table(columns), "reference.csv")


def classifier_reference(**overrides) -> ReferenceData:
    rng = np.random.default_rng(0)
    cols = {
        "x": rng.normal(size=N),
        "label": rng.integers(0, 2, N),
        "prediction": rng.integers(0, 2, N),
        "score": rng.random(N),
    }
    cols.update(overrides)
    return reference(**{k: v for k, v in cols.items() if v is not None})


def refused(fn, *args, field: str, match: str) -> EstimationRefused:
    with pytest.raises(EstimationRefused, match=match) as info:
        fn(*args)
    assert info.value.field == field
    assert str(info.value).startswith(field + ": ")
    return info.value


def test_cbpe_accepts_a_labelled_scored_reference():
    check_cbpe("binary-classification", classifier_reference(), "label", ["score"])
    rng = np.random.default_rng(1)
    multi = reference(
        label=rng.integers(0, 3, N).astype(str),
        s0=rng.random(N),
        s1=rng.random(N),
        s2=rng.random(N),
    )
    check_cbpe("multiclass-classification", multi, "label", ["s0", "s1", "s2"])


def test_cbpe_refusals_name_the_field():
    binary = "binary-classification"
    refused(
        check_cbpe,
        binary,
        classifier_reference(),
        "label",
        ["score"],
        False,
        field="data.scoreColumn",
        match="records carry none",
    )
    refused(
        check_cbpe,
        binary,
        None,
        "label",
        ["score"],
        field="data.reference",
        match="labelled reference and none is configured",
    )
    refused(
        check_cbpe,
        binary,
        classifier_reference(label=None),
        "label",
        ["score"],
        field="data.labelColumn",
        match="no column 'label'",
    )
    few = np.full(N, None, dtype=object)
    few[: MIN_REFERENCE_ROWS - 1] = "1"
    few[:10] = "0"
    refused(
        check_cbpe,
        binary,
        classifier_reference(label=pa.array(few, pa.string())),
        "label",
        ["score"],
        field="data.labelColumn",
        match=f"has {MIN_REFERENCE_ROWS - 1}",
    )
    refused(
        check_cbpe,
        binary,
        classifier_reference(score=None),
        "label",
        ["score"],
        field="data.scoreColumn",
        match="no column 'score'",
    )
    sparse = np.full(N, np.nan)
    sparse[:20] = 0.5
    refused(
        check_cbpe,
        binary,
        classifier_reference(score=sparse),
        "label",
        ["score"],
        field="data.scoreColumn",
        match="label and a score in 'score'; there are 20",
    )
    refused(
        check_cbpe,
        binary,
        classifier_reference(label=np.ones(N, dtype=np.int64)),
        "label",
        ["score"],
        field="data.labelColumn",
        match="single class",
    )
    refused(
        check_cbpe,
        "regression",
        classifier_reference(),
        "label",
        ["score"],
        field="model.task",
        match="CBPE estimates classifiers",
    )


def test_dle_refusals_name_the_field():
    rng = np.random.default_rng(2)
    ok = reference(x=rng.normal(size=N), label=rng.normal(size=N), prediction=rng.normal(size=N))
    check_dle("regression", ok, "label", "prediction")
    refused(
        check_dle,
        "regression",
        None,
        "label",
        "prediction",
        field="data.reference",
        match="DLE learns from a labelled reference",
    )
    refused(
        check_dle,
        "regression",
        reference(x=np.ones(N), prediction=np.ones(N)),
        "label",
        "prediction",
        field="data.labelColumn",
        match="no column 'label'",
    )
    refused(
        check_dle,
        "regression",
        reference(label=np.full(N, np.nan), prediction=np.ones(N)),
        "label",
        "prediction",
        field="data.labelColumn",
        match="has 0",
    )
    refused(
        check_dle,
        "regression",
        reference(label=np.ones(N)),
        "label",
        "prediction",
        field="data.predictionColumn",
        match="no column 'prediction'",
    )
    refused(
        check_dle,
        "binary-classification",
        ok,
        "label",
        "prediction",
        field="model.task",
        match="DLE estimates regressors",
    )


def test_multivariate_refuses_one_feature_and_no_reference():
    check_multivariate(["a", "b"], classifier_reference())
    refused(
        check_multivariate,
        ["amount"],
        classifier_reference(),
        field="drift.multivariate",
        match="at least two features; the model has 1 \\('amount'\\)",
    )
    refused(
        check_multivariate,
        [],
        classifier_reference(),
        field="drift.multivariate",
        match="the model has 0",
    )
    refused(
        check_multivariate, ["a", "b"], None, field="data.reference", match="fitted on a reference"
    )
