"""The typed decoder (msgspec) against the general parser (orjson + parse_records /
parse_columns).

The decoder may decline a body (None: the general parser then runs), but whatever it
accepts must decode to exactly the Batch the general parser gives, and it must never accept
a body the general parser refuses. Checked on generated row and column bodies, mostly
well-formed with random damage, for each kind of schema."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from monitor_worker.ingest import Batch, PayloadError, TypedDecoder, parse_columns, parse_records
from monitor_worker.schema import DataSchema, Feature

SCHEMAS = {
    "mixed-binary": DataSchema(
        (
            Feature("amount", "numerical"),
            Feature("country", "categorical"),
            Feature("age", "numerical"),
        ),
        "binary-classification",
    ),
    "numeric-binary": DataSchema(
        tuple(Feature(f"f {j}.x", "numerical") for j in range(4)), "binary-classification"
    ),
    "multiclass": DataSchema(
        (Feature("x", "numerical"), Feature("kind", "categorical")),
        "multiclass-classification",
        classes=("a", "b", "c"),
    ),
    "regression": DataSchema((Feature("x", "numerical"),), "regression"),
    # Texts, vectors and serving measures (monitor_worker/ingest/rich_values.py).
    "rich": DataSchema(
        (
            Feature("review", "text"),
            Feature("vec", "embedding", dimension=3),
            Feature("x", "numerical"),
            Feature("kind", "categorical"),
        ),
        "binary-classification",
        measures=("latency_ms", "tokens"),
    ),
}

ANY_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 0, 1]),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.lists(st.floats(0, 1), max_size=3),
    st.dictionaries(st.sampled_from("abc"), st.floats(0, 1), max_size=3),
    st.lists(
        st.one_of(st.floats(-1e3, 1e3), st.integers(-5, 5), st.booleans(), st.none(), st.text()),
        max_size=4,
    ),
    st.dictionaries(st.sampled_from(["latency_ms", "tokens", "other"]), st.floats(0, 9)),
)


def good_value(draw, schema: DataSchema, key: str, name: str | None = None) -> Any:
    if key == "features" and name in schema.by_name:
        feature = schema.by_name[name]
        if feature.type == "text":
            return draw(st.one_of(st.text(max_size=12), st.none()))
        if feature.type == "embedding":
            number = st.one_of(st.floats(-1e3, 1e3), st.integers(-1000, 1000))
            return draw(st.lists(number, min_size=3, max_size=3))
    if key == "measures":
        number = st.one_of(st.floats(0, 1e4), st.integers(0, 10**6), st.none())
        return draw(st.dictionaries(st.sampled_from(schema.measures), number))
    if key == "features":
        if name in schema.numerical:
            return draw(st.one_of(st.floats(-1e6, 1e6), st.integers(-1000, 1000), st.none()))
        return draw(
            st.one_of(
                st.sampled_from(["DE", "FR", ""]), st.integers(0, 3), st.booleans(), st.none()
            )
        )
    classes = schema.classes or ("0", "1")
    if key in ("prediction", "label"):
        if schema.regression:
            return draw(st.floats(-100, 100))
        return draw(st.one_of(st.sampled_from(classes), st.integers(0, 1)))
    if key == "score":
        if schema.multiclass:
            return draw(st.sampled_from([[0.2, 0.3, 0.5], {"a": 0.1, "b": 0.8, "c": 0.1}]))
        return draw(st.floats(0, 1))
    if key == "id":
        return draw(st.one_of(st.text(min_size=1, max_size=6), st.integers(0, 10**6)))
    if key == "timestamp":
        return draw(st.one_of(st.floats(1.6e9, 1.8e9), st.just("2026-11-24T10:00:00Z")))
    raise AssertionError(key)


DAMAGE = (
    "value",
    "drop-feature",
    "extra-feature",
    "drop-extra",
    "extra-field",
    "not-object",
    "top-level",
    "empty",
)


@st.composite
def bodies(draw) -> tuple[str, bytes, bool]:
    """(schema name, body, whether it was damaged)."""
    name = draw(st.sampled_from(sorted(SCHEMAS)))
    schema = SCHEMAS[name]
    keys = ["id", "prediction", "score", "label", "timestamp"]
    extras = draw(st.sets(st.sampled_from(keys + (["measures"] if schema.measures else []))))
    n = draw(st.integers(1, 6))
    records: list[Any] = []
    for _ in range(n):
        rec: dict[str, Any] = {
            "features": {f: good_value(draw, schema, "features", f) for f in schema.names}
        }
        for key in sorted(extras):
            rec[key] = good_value(draw, schema, key)
        records.append(rec)
    doc: Any = {"records": records}
    damages = draw(st.lists(st.sampled_from(DAMAGE), max_size=2))
    for damage in damages:
        i = draw(st.integers(0, n - 1))
        rec = records[i]
        if not (isinstance(rec, dict) and isinstance(rec.get("features"), dict)):  # replaced
            continue
        if damage == "value":
            where = draw(st.sampled_from(["features", *sorted(extras)]))
            if where == "features":
                rec["features"][draw(st.sampled_from(schema.names))] = draw(ANY_VALUE)
            else:
                rec[where] = draw(ANY_VALUE)
        elif damage == "drop-feature":
            rec["features"].pop(draw(st.sampled_from(schema.names)), None)
        elif damage == "extra-feature":
            rec["features"]["zzz"] = 1.0
        elif damage == "drop-extra" and extras:
            rec.pop(draw(st.sampled_from(sorted(extras))), None)
        elif damage == "extra-field":
            rec[draw(st.sampled_from(["colour", "id", "label"]))] = "x"
        elif damage == "not-object":
            records[i] = draw(ANY_VALUE)
        elif damage == "top-level":
            doc = draw(
                st.sampled_from([{"records": records, "more": 1}, {"rows": records}, records])
            )
        elif damage == "empty":
            doc = {"records": []}
    if draw(st.booleans()):
        doc, damaged = draw(as_columns(schema, records, sorted(extras)))
        if damaged:
            damages.append("columns")
    # json (not orjson) so integers beyond 64 bits can be written
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=draw(st.booleans())).encode()
    return name, body, bool(damages)


COLUMN_DAMAGE = ("value", "drop", "extra", "short", "not-list", "top-level")


@st.composite
def as_columns(draw, schema: DataSchema, records: list[Any], extras: list[str]):
    """The same records in the column form (when they are still records), maybe damaged."""
    if not all(isinstance(r, dict) and isinstance(r.get("features"), dict) for r in records):
        return {"columns": {"x": records}}, True
    cols: dict[str, Any] = {}
    for name in schema.names:
        cols[name] = [r["features"].get(name) for r in records]
    for key in extras:
        cols[key] = [r.get(key) for r in records]
    doc: Any = {"columns": cols}
    damages = draw(st.lists(st.sampled_from(COLUMN_DAMAGE), max_size=2))
    for damage in damages:
        key = draw(st.sampled_from(sorted(cols))) if cols else None
        if key is None or not isinstance(cols.get(key), list):
            continue
        if damage == "value" and cols[key]:
            cols[key][draw(st.integers(0, len(cols[key]) - 1))] = draw(ANY_VALUE)
        elif damage == "drop":
            del cols[key]
        elif damage == "extra":
            cols[draw(st.sampled_from(["zzz", "label", "id"]))] = ["x"] * len(records)
        elif damage == "short":
            cols[key] = cols[key][:-1]
        elif damage == "not-list":
            cols[key] = draw(ANY_VALUE)
        elif damage == "top-level":
            doc = draw(st.sampled_from([{"columns": cols, "records": []}, {"cols": cols}]))
    return doc, bool(damages)


def general(body: bytes, schema: DataSchema) -> Batch | str:
    """What the worker answered before the typed decoder (MonitorService.ingest_records)."""
    try:
        doc = orjson.loads(body)
        if isinstance(doc, dict) and "columns" in doc:
            return parse_columns(doc, schema)
        return parse_records(doc, schema)
    except (orjson.JSONDecodeError, PayloadError) as e:
        return f"error: {e}"


def typed(body: bytes, schema: DataSchema) -> Batch | str | None:
    try:
        return TypedDecoder(schema).decode(body)
    except PayloadError as e:
        return f"error: {e}"


def assert_same(a: Batch, b: Batch) -> None:
    assert a.n == b.n
    for field in ("numeric", "categorical", "categorical_missing"):
        x, y = getattr(a, field), getattr(b, field)
        assert list(x) == list(y), field
        for k in x:
            assert x[k].dtype.kind == y[k].dtype.kind, (field, k)
            np.testing.assert_array_equal(x[k], y[k])
    for field in ("prediction", "score", "label", "timestamps"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            assert x.dtype.kind == y.dtype.kind and x.shape == y.shape, field
            np.testing.assert_array_equal(x, y)
    assert a.ids == b.ids
    for field in ("texts", "vectors", "measures"):
        x, y = getattr(a, field), getattr(b, field)
        assert list(x) == list(y), field
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, (field, k)
            assert x[k].tolist() == y[k].tolist() or np.array_equal(x[k], y[k], equal_nan=True)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_typed_decoder_agrees_with_the_general_parser(case):
    name, body, damaged = case
    schema = SCHEMAS[name]
    want = general(body, schema)
    got = typed(body, schema)
    event("declined" if got is None else "error" if isinstance(got, str) else "accepted")
    if got is None:
        # declining is allowed only for what the general parser must look at
        assert damaged or isinstance(want, str), (body, want)
        return
    if isinstance(got, str):
        assert got == want, body
        return
    assert not isinstance(want, str), (body, want)
    assert_same(got, want)


@pytest.mark.parametrize("name", ["mixed-binary", "numeric-binary"])
@pytest.mark.parametrize("form", ["records", "columns"])
def test_a_plain_batch_takes_the_typed_path(name, form):
    """The property above would pass if the decoder declined everything."""
    schema = SCHEMAS[name]
    rng = np.random.default_rng(3)
    n = 500
    features = {
        f: rng.normal(size=n).tolist() if f in schema.numerical else ["DE", 7] * (n // 2)
        for f in schema.names
    }
    features[schema.numerical[0]][3] = None  # a missing value
    extras = {
        "id": [f"r{i}" for i in range(n)],
        "prediction": rng.integers(2, size=n).tolist(),
        "score": rng.random(n).tolist(),
        "label": ["1"] * n,
        "timestamp": (1.7e9 + np.arange(n)).tolist(),
    }
    if form == "columns":
        doc: Any = {"columns": {**features, **extras}}
    else:
        doc = {
            "records": [
                {"features": {f: v[i] for f, v in features.items()}}
                | {k: v[i] for k, v in extras.items()}
                for i in range(n)
            ]
        }
    body = orjson.dumps(doc)
    got = TypedDecoder(schema).decode(body)
    assert isinstance(got, Batch)
    assert_same(got, general(body, schema))
    assert np.isnan(got.numeric[schema.numerical[0]][3])


@pytest.mark.parametrize(
    "body",
    [
        b'\xef\xbb\xbf{"records":[{"features":{"x":1}}]}',  # BOM
        b'{"records":[{"features":{"x":1}}]} trailing',
        b'{"records":[{"features":{"x":1e400}}]}',
        b'{"records":[{"features":{"x":NaN}}]}',
        b'{"records":[{"features":{"x":1},"id":"\\ud800"}]}',  # lone surrogate
        b'{"records":[{"features":{"x":1},"id":"\xff"}]}',  # not UTF-8
        b'{"records":[{"features":{"x":1},"id":18446744073709551615}]}',  # beyond int64
        b'{"records":[{"features":{"x":1,"x":true}}]}',  # duplicate key, last wins
    ],
)
def test_bodies_the_general_parser_refuses_are_never_taken(body):
    schema = SCHEMAS["regression"]
    assert isinstance(general(body, schema), str)
    assert typed(body, schema) is None


def test_integers_beyond_64_bits_are_not_categories():
    """orjson reads them as floats (refused as a category); msgspec would keep them exact."""
    schema = SCHEMAS["multiclass"]
    for big in (2**64, -(2**63) - 1):
        body = b'{"records":[{"features":{"x":1,"kind":%d}}]}' % big
        assert "kind" in general(body, schema)
        assert typed(body, schema) is None


@pytest.mark.parametrize("form", ["records", "columns"])
def test_texts_vectors_and_measures_take_the_typed_path(form):
    schema = SCHEMAS["rich"]
    rng = np.random.default_rng(4)
    n = 200
    features = {
        "review": [f"text {i}" if i % 7 else None for i in range(n)],
        "vec": rng.normal(size=(n, 3)).tolist(),
        "x": rng.normal(size=n).tolist(),
        "kind": ["a", "b"] * (n // 2),
    }
    measures = [{"latency_ms": float(i), "tokens": i} if i % 3 else {} for i in range(n)]
    if form == "columns":
        doc: Any = {"columns": {**features, "measures": measures}}
    else:
        doc = {
            "records": [
                {"features": {f: v[i] for f, v in features.items()}, "measures": measures[i]}
                for i in range(n)
            ]
        }
    body = orjson.dumps(doc)
    got = TypedDecoder(schema).decode(body)
    assert isinstance(got, Batch)
    assert_same(got, general(body, schema))
    assert got.texts["review"][0] is None and got.vectors["vec"].shape == (n, 3)
    assert np.isnan(got.measures["tokens"][0]) and got.measures["tokens"][1] == 1
