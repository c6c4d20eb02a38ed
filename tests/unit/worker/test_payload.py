"""Payload parsing: every accepted shape, and rejections that name the field and index."""

from __future__ import annotations

import numpy as np
import pytest

from monitor_worker.ingest import (
    PayloadError,
    parse_columns,
    parse_inference_request,
    parse_inference_response,
    parse_labels,
    parse_records,
)
from monitor_worker.schema import DataSchema, Feature

BINARY = DataSchema(
    (Feature("amount", "numerical"), Feature("country", "categorical")), "binary-classification"
)
MULTI = DataSchema(
    (Feature("x", "numerical"),), "multiclass-classification", classes=("a", "b", "c")
)
REGRESSION = DataSchema((Feature("x", "numerical"),), "regression")


def rec(amount=1.5, country="DE", **extra):
    return {"features": {"amount": amount, "country": country}, **extra}


def test_rows_to_columns():
    b = parse_records(
        {
            "records": [
                rec(1, "DE", id="a", prediction=1, score=0.9, label=0),
                rec(None, 7, id=2, prediction="0", score=0.1, label=1),
            ]
        },
        BINARY,
    )
    assert b.n == 2
    np.testing.assert_array_equal(b.numeric["amount"], [1.0, np.nan])
    assert b.categorical["country"].tolist() == ["DE", "7"]
    assert b.prediction.tolist() == ["1", "0"] and b.label.tolist() == ["0", "1"]
    assert b.ids == ["a", "2"]
    np.testing.assert_array_equal(b.score, [0.9, 0.1])


def test_columns_equal_rows():
    rows = parse_records(
        {"records": [rec(1, "DE", prediction=1), rec(2, "FR", prediction=0)]}, BINARY
    )
    cols = parse_columns(
        {"columns": {"amount": [1, 2], "country": ["DE", "FR"], "prediction": [1, 0]}}, BINARY
    )
    np.testing.assert_array_equal(rows.numeric["amount"], cols.numeric["amount"])
    assert rows.categorical["country"].tolist() == cols.categorical["country"].tolist()
    assert rows.prediction.tolist() == cols.prediction.tolist()


def test_rows_in_any_key_order_give_the_same_columns():
    import orjson

    ordered = [{"features": {"amount": float(i), "country": f"c{i % 3}"}} for i in range(50)]
    mixed = [
        {"features": dict(reversed(r["features"].items())) if i % 2 else r["features"]}
        for i, r in enumerate(ordered)
    ]
    reversed_all = [{"features": dict(reversed(r["features"].items()))} for r in ordered]
    want = parse_records({"records": ordered}, BINARY)
    # through orjson too: the fast path relies on the key objects it hands out
    for rows in (mixed, reversed_all, orjson.loads(orjson.dumps(ordered))):
        got = parse_records({"records": rows}, BINARY)
        np.testing.assert_array_equal(got.numeric["amount"], want.numeric["amount"])
        assert got.categorical["country"].tolist() == want.categorical["country"].tolist()


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([rec(), {"features": {"country": "DE", "zip": 1}}], "records[1].features.zip"),
        ([rec(), {"features": ["amount", "country"]}], "records[1].features"),
        ([rec(), {"features": {"country": "DE"}}], "records[1].features.amount"),
        (
            [rec(), rec(), {"features": {"country": "DE", "amount": 1, "x": 2}}],
            "records[2].features.x",
        ),
    ],
)
def test_row_feature_problems_found_past_the_first_row(rows, field):
    with pytest.raises(PayloadError) as e:
        parse_records({"records": rows}, BINARY)
    assert e.value.field == field


@pytest.mark.parametrize(
    ("doc", "field", "text"),
    [
        (
            {"records": [rec(), rec(amount="12,5")]},
            "records[1].features.amount",
            "expected a number",
        ),
        ({"records": [rec(amount=True)]}, "records[0].features.amount", "boolean"),
        ({"records": [rec(country=1.5)]}, "records[0].features.country", "category"),
        (
            {"records": [{"features": {"amount": 1, "country": "DE", "zip": 1}}]},
            "records[0].features.zip",
            "unknown feature",
        ),
        ({"records": [{"features": {"amount": 1}}]}, "records[0].features.country", "required"),
        ({"records": [rec(), {"id": 1}]}, "records[1].features", "required"),
        ({"records": [rec(), 5]}, "records[1]", "expected an object"),
        ({"records": []}, "records", "must not be empty"),
        ({"records": {}}, "records", "expected a list"),
        ({"rows": []}, "records", "records"),
        ({"records": [rec(score=1.2)]}, "records[0].score", "probability"),
        ({"records": [rec(prediction=None)]}, "records[0].prediction", "must not be null"),
        ({"records": [rec(id="")]}, "records[0].id", "non-empty"),
        ({"records": [rec(timestamp="yesterday")]}, "records[0].timestamp", "RFC 3339"),
        ({"records": [rec(colour="red")]}, "records[0].colour", "unknown field"),
        ({"records": [rec(id="a"), rec()]}, "records[1].id", "missing here"),
        ({"records": [rec(), rec(id="x")]}, "records[1].id", "same fields"),
    ],
)
def test_row_rejections_name_field_and_index(doc, field, text):
    with pytest.raises(PayloadError) as e:
        parse_records(doc, BINARY)
    assert e.value.field == field
    assert text in str(e.value)
    assert e.value.status == 400


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"columns": {"amount": [1, 2], "country": ["DE"]}}, "columns"),
        ({"columns": {"amount": [1], "country": ["DE"], "zip": [1]}}, "columns.zip"),
        ({"columns": {"amount": [1]}}, "columns.country"),
        ({"columns": {"amount": [1, "x"], "country": ["DE", "FR"]}}, "columns.amount[1]"),
        ({"columns": {"amount": 1, "country": "DE"}}, "columns.amount"),
    ],
)
def test_column_rejections(doc, field):
    with pytest.raises(PayloadError) as e:
        parse_columns(doc, BINARY)
    assert e.value.field == field


def test_too_many_records_is_413():
    doc = {"columns": {"amount": [1.0] * 100_001, "country": ["DE"] * 100_001}}
    with pytest.raises(PayloadError) as e:
        parse_columns(doc, BINARY)
    assert e.value.status == 413


def test_multiclass_scores_list_or_dict():
    b = parse_records(
        {
            "records": [
                {"features": {"x": 1}, "prediction": "a", "score": [0.7, 0.2, 0.1]},
                {"features": {"x": 2}, "prediction": "c", "score": {"a": 0.1, "b": 0.1, "c": 0.8}},
            ]
        },
        MULTI,
    )
    np.testing.assert_allclose(b.score, [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    with pytest.raises(PayloadError) as e:
        parse_records({"records": [{"features": {"x": 1}, "score": [0.5, "x", 0.5]}]}, MULTI)
    assert e.value.field == "records[0].score[1]"
    with pytest.raises(PayloadError, match="missing class 'c'"):
        parse_records({"records": [{"features": {"x": 1}, "score": {"a": 0.5, "b": 0.5}}]}, MULTI)


def test_labels():
    lb = parse_labels({"labels": [{"id": "a", "label": 1}, {"id": 7, "label": "0"}]}, BINARY)
    assert lb.ids == ["a", "7"] and lb.labels.tolist() == ["1", "0"]
    with pytest.raises(PayloadError) as e:
        parse_labels({"labels": [{"id": "a"}]}, BINARY)
    assert e.value.field == "labels[0]"
    with pytest.raises(PayloadError) as e:
        parse_labels({"labels": [{"id": "a", "label": "x"}]}, REGRESSION)
    assert e.value.field == "labels[0].label"


def test_kserve_v1_instances_lists_and_dicts():
    lists = parse_inference_request({"instances": [[1.0, "DE"], [2.0, "FR"]]}, BINARY)
    dicts = parse_inference_request(
        {"instances": [{"amount": 1.0, "country": "DE"}, {"amount": 2.0, "country": "FR"}]}, BINARY
    )
    for b in (lists, dicts):
        assert b.numeric["amount"].tolist() == [1.0, 2.0]
        assert b.categorical["country"].tolist() == ["DE", "FR"]
    with pytest.raises(PayloadError) as e:
        parse_inference_request({"instances": [[1.0, "DE"], [2.0]]}, BINARY)
    assert e.value.field == "instances[1]"


def test_kserve_v2_tensors():
    schema = DataSchema(
        (Feature("a", "numerical"), Feature("b", "numerical")), "binary-classification"
    )
    one = parse_inference_request(
        {
            "inputs": [
                {"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}
            ]
        },
        schema,
    )
    named = parse_inference_request(
        {
            "inputs": [
                {"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 3]},
                {"name": "b", "shape": [2], "datatype": "FP64", "data": [2, 4]},
            ]
        },
        schema,
    )
    for b in (one, named):
        assert b.numeric["a"].tolist() == [1, 3] and b.numeric["b"].tolist() == [2, 4]
    with pytest.raises(PayloadError) as e:
        parse_inference_request(
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            schema,
        )
    assert e.value.field == "inputs[0].shape"


def test_kserve_responses():
    assert parse_inference_response({"predictions": [1, 0]}, BINARY) == ([1, 0], None)
    preds, scores = parse_inference_response({"predictions": [[0.2, 0.7, 0.1]]}, MULTI)
    assert preds == ["b"] and scores == [[0.2, 0.7, 0.1]]
    preds, scores = parse_inference_response(
        {
            "outputs": [
                {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]},
                {
                    "name": "predict_proba",
                    "shape": [2, 2],
                    "datatype": "FP64",
                    "data": [0.1, 0.9, 0.8, 0.2],
                },
            ]
        },
        BINARY,
    )
    assert preds == [1, 0] and scores == [[0.1, 0.9], [0.8, 0.2]]


@pytest.mark.parametrize(
    ("columns", "field", "text"),
    [
        # numpy reads these as [1.0, 2.5] and [1, 2]: the booleans must still be refused
        ({"amount": [True, 2.5], "country": ["DE", "FR"]}, "columns.amount[0]", "boolean"),
        ({"amount": [1, False], "country": ["DE", "FR"]}, "columns.amount[1]", "boolean"),
        # numpy reads this as the strings ["DE", "1.5"]: a float is not a category
        ({"amount": [1, 2], "country": ["DE", 1.5]}, "columns.country[1]", "category"),
    ],
)
def test_mixed_columns_are_checked_element_by_element(columns, field, text):
    with pytest.raises(PayloadError) as e:
        parse_columns({"columns": columns}, BINARY)
    assert e.value.field == field and text in str(e.value)


def test_mixed_category_columns_spell_each_value_as_alone():
    b = parse_columns(
        {"columns": {"amount": [1, 2, 3, 4], "country": ["DE", True, 7, False]}}, BINARY
    )
    assert b.categorical["country"].tolist() == ["DE", "true", "7", "false"]
    ints = parse_columns({"columns": {"amount": [1, 2], "country": [1, True]}}, BINARY)
    assert ints.categorical["country"].tolist() == ["1", "true"]


def test_probability_vectors_with_non_numbers_are_refused_naming_the_element():
    """Found by the schemathesis run: a v1 response with probability vectors holding a string
    or null crashed the argmax (500) instead of a 400."""
    multi = DataSchema(
        (Feature("amount", "numerical"),), "multiclass-classification", classes=("a", "b", "c")
    )
    for bad, where in (
        ([0.1, "x", 0.3], "predictions[1][1]"),
        ([0.1, None, 0.3], "predictions[1][1]"),
    ):
        with pytest.raises(PayloadError) as e:
            parse_inference_response({"predictions": [[0.2, 0.5, 0.3], bad]}, multi)
        assert e.value.field == where


def test_empty_probability_vectors_are_refused():
    with pytest.raises(PayloadError) as e:
        parse_inference_response({"predictions": [[]]}, BINARY)
    assert e.value.field == "predictions[0]"
