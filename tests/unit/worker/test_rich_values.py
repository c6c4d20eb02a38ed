"""Text, vector and serving-measure values from payloads: accepted shapes and the errors, each
naming the field path and record index."""

from __future__ import annotations

import numpy as np
import pytest

from monitor_worker.ingest import PayloadError
from monitor_worker.ingest.rich_values import measure_column, text_column, vector_column

ROWS = "records[{i}].features.vec"


def test_vectors_fast_path_and_values() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 384))
    out = vector_column(x.tolist(), ROWS, 384)
    assert out.shape == (50, 384) and out.dtype == np.float64
    np.testing.assert_array_equal(out, x)
    ints = vector_column([[0, 1, 2], [3, 4, 5]], ROWS, 3)
    assert ints.dtype == np.float64 and ints[1, 2] == 5.0
    assert vector_column([], ROWS, 384).shape == (0, 384)
    big = vector_column([[2**70, 1.5]], ROWS, 2)
    assert big[0, 0] == float(2**70)


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            [[1.0] * 384] * 3 + [[1.0] * 12],
            "records[3].features.vec",
            "expected 384 numbers, got 12",
        ),
        (
            [[1.0] * 384, "abc"],
            "records[1].features.vec",
            "expected a list of 384 numbers, got the string 'abc'",
        ),
        (
            [[1.0] * 384, None],
            "records[1].features.vec",
            "expected a list of 384 numbers, got null",
        ),
        (
            [[1.0] * 383 + ["x"]],
            "records[0].features.vec[383]",
            "expected a number, got the string 'x'",
        ),
        (
            [[0.5] * 10 + [True] + [0.5] * 373],
            "records[0].features.vec[10]",
            "expected a number, got a boolean",
        ),
        (
            [[0.5] * 5 + [None] + [0.5] * 378],
            "records[0].features.vec[5]",
            "expected a number, got null",
        ),
        (
            [[0.5] * 7 + [float("nan")] + [0.5] * 376],
            "records[0].features.vec[7]",
            "expected a finite number",
        ),
        (
            [[0.5] * 7 + [float("inf")] + [0.5] * 376],
            "records[0].features.vec[7]",
            "expected a finite number",
        ),
        ([[[1.0] * 384]], "records[0].features.vec", "expected 384 numbers, got 1"),
        (
            [[10**400] + [0.0] * 383],
            "records[0].features.vec[0]",
            "float64 range",
        ),
    ],
)
def test_bad_vectors_name_field_and_record(values: list, field: str, message: str) -> None:
    with pytest.raises(PayloadError) as e:
        vector_column(values, ROWS, 384)
    assert e.value.field == field
    assert message in e.value.message
    assert str(e.value).startswith(field + ": ")
    assert e.value.status == 400


def test_column_form_paths() -> None:
    with pytest.raises(PayloadError, match=r"^columns\.vec\[1\]: expected 3 numbers, got 2$"):
        vector_column([[1, 2, 3], [1, 2]], "columns.vec[{i}]", 3)


def test_texts() -> None:
    assert text_column(["a", None, ""], "records[{i}].features.review") == ["a", None, ""]
    with pytest.raises(PayloadError) as e:
        text_column(["fine", "also fine", 12], "records[{i}].features.review")
    assert str(e.value) == "records[2].features.review: expected a string, got a number"
    with pytest.raises(PayloadError, match=r"columns\.review\[0\]: expected a string, got a list"):
        text_column([["a"]], "columns.review[{i}]")


def test_serving_measures() -> None:
    fmt = "records[{i}].measures.latency_ms"
    np.testing.assert_array_equal(measure_column([12.5, 3, 40.0], fmt), [12.5, 3.0, 40.0])
    out = measure_column([1.0, None, 2.0], fmt)
    assert np.isnan(out[1]) and out[2] == 2.0
    for bad, message in [
        ("12ms", "expected a number, got the string '12ms'"),
        (True, "expected a number, got a boolean"),
        (float("nan"), "expected a finite number"),
        (10**400, "within float64 range"),
    ]:
        with pytest.raises(PayloadError) as e:
            measure_column([1.0, bad], fmt)
        assert e.value.field == "records[1].measures.latency_ms"
        assert message in e.value.message
