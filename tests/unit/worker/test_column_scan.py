"""The compiled column scanner (monitor_worker/native/_columns.c): every number it reads is
the double msgspec reads, bit for bit; what it does not read it leaves to msgspec; and the
typed decoder gives the same Batch through it as without it (the general parser's Batch:
tests/unit/worker/test_typed_decoder.py covers bodies of every kind through both)."""

from __future__ import annotations

import struct

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor_worker import native
from monitor_worker.ingest import Batch, TypedDecoder, parse_columns
from monitor_worker.schema import DataSchema, Feature

pytestmark = pytest.mark.skipif(
    native.columns is None, reason="the C scanner is not built (no compiler): msgspec only"
)

FLOATS = msgspec.json.Decoder(list[float])


def scan_one(token: str) -> float | None:
    """The scanner's double for one JSON number, None when it leaves the column to msgspec."""
    assert native.columns is not None
    out = native.columns.scan_columns(b'{"columns":{"a":[%s]}}' % token.encode())
    assert out is not None and len(out) == 1
    numbers = out[0][3]
    return None if numbers is None else float(np.frombuffer(numbers, np.float64)[0])


def msgspec_one(token: str) -> float | None:
    try:
        return FLOATS.decode(b"[%s]" % token.encode())[0]
    except msgspec.DecodeError:
        return None


def assert_same_number(token: str) -> None:
    got, want = scan_one(token), msgspec_one(token)
    if got is None:
        # left to msgspec: only numbers outside what the scanner reads exactly
        assert want is None or want == 0.0 or abs(want) < 2.3e-308 or "." not in token, token
        return
    assert want is not None, token
    assert struct.pack("<d", got) == struct.pack("<d", want), (token, got, want)


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_shortest_reprs_read_bit_for_bit(x):
    assert_same_number(repr(x))


@settings(max_examples=2000, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(1, 25),
    st.sampled_from(["e", "f", "g", "E"]),
)
def test_other_spellings_read_bit_for_bit(x, digits, kind):
    token = f"{x:.{digits}{kind}}"
    if "inf" in token.lower() or "nan" in token.lower():
        return
    assert_same_number(token)


@settings(max_examples=1000, deadline=None)
@given(st.integers(-(10**25), 10**25))
def test_integers_read_bit_for_bit(i):
    assert_same_number(str(i))


def test_seeded_random_doubles_and_hard_cases():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**63, 50_000, dtype=np.int64).view(np.float64)
    tokens = [repr(float(v)) for v in bits[np.isfinite(bits)]]
    tokens += [repr(float(v)) for v in rng.normal(size=20_000)]
    tokens += ["0", "-0", "0.0", "-0.0", "1e5", "1E+5", "1e-5", "0.1e-3", "123.456e-2", "7e22",
               "7e23", "1e27", "1e28", "1e-27", "1e-28", "9007199254740993", "9007199254740993.0",
               "0.30000000000000004", "2.2250738585072014e-308", "1.7976931348623157e308",
               "1.00000000000000011102230246251565404236316680908203125",
               "123456789012345678901.5", "0.00000000000000000000000000000000001"]  # fmt: skip
    for token in tokens:
        assert_same_number(token)


def near_halfway_tokens(count: int, seed: int) -> list[str]:
    """Decimals of 17 to 19 digits within a hair of the midpoint between two adjacent
    doubles: where rounding twice (to 64 bits, then to 53) would go wrong."""
    import decimal
    import math

    rng = np.random.default_rng(seed)
    ctx = decimal.Context(prec=60)
    tokens = []
    for x in rng.uniform(-50, 50, count):
        d = float(rng.normal() * 10.0 ** float(x))
        mid = ctx.divide(
            ctx.add(decimal.Decimal(d), decimal.Decimal(math.nextafter(d, math.inf))), 2
        )
        digits = int(rng.integers(17, 20))
        tokens.append(f"{mid:.{digits - 1}e}")
    return tokens


def test_decimals_next_to_halfway_points_read_bit_for_bit():
    for token in near_halfway_tokens(20_000, 4):
        assert_same_number(token)


NOT_READ = ["01", "1.", ".5", "+1", "1e", "-", "1.5e+", "NaN", "Infinity", "1e400", "-1e400",
            "4.9e-324", "true", '"1"', "[1]", "1 2"]  # fmt: skip


@pytest.mark.parametrize("token", NOT_READ)
def test_what_is_not_a_number_it_reads_is_left_to_msgspec(token):
    assert scan_one(token) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"records": []}',
        b'{"columns": {"a": [1]}, "records": []}',
        b'{"columns": {"a": [1]}} x',
        b'{"columns": {"a\\u0041": [1]}}',  # an escape in a name
        b'{"columns": {"a": [1}}',
        b'\xef\xbb\xbf{"columns": {"a": [1]}}',
        b'{"columns": {"\xff": [1]}}',  # a name that is not UTF-8
        b"[]",
        b"",
    ],
)
def test_other_shapes_are_not_scanned(body):
    assert native.columns is not None
    assert native.columns.scan_columns(body) is None


def test_spans_and_numbers_of_each_column():
    assert native.columns is not None
    doc = {"columns": {"x": [1.5, None, -2], "id": ["a", "b\\c", "d"], "e": [], "v": [[1, 2]]}}
    body = orjson.dumps(doc).replace(b",", b" ,\n ")
    scanned = native.columns.scan_columns(body)
    assert [name for name, *_ in scanned] == ["x", "id", "e", "v"]
    for name, start, end, numbers in scanned:
        assert orjson.loads(body[start:end]) == doc["columns"][name]
        if name in ("x", "e"):
            got = np.frombuffer(numbers, np.float64)
            np.testing.assert_array_equal(got, np.array(doc["columns"][name], dtype=float))
        else:
            assert numbers is None


SCHEMA = DataSchema(
    (
        Feature("amount", "numerical"),
        Feature("country", "categorical"),
        Feature("age", "numerical"),
    ),
    "binary-classification",
)


def test_the_decoder_takes_the_scanner_and_gives_the_general_parsers_batch(monkeypatch):
    rng = np.random.default_rng(5)
    n = 300
    age = rng.normal(40, 10, n).tolist()
    age[7] = None
    body = orjson.dumps(
        {
            "columns": {
                "age": age,
                "amount": rng.lognormal(3, 1, n).tolist(),
                "country": ["DE", 7] * (n // 2),
                "id": [f"r{i}" for i in range(n)],
                "prediction": rng.integers(2, size=n).tolist(),
                "score": rng.random(n).tolist(),
            }
        }
    )
    decoder = TypedDecoder(SCHEMA)
    scanned = decoder._scanned(body)
    assert isinstance(scanned, Batch)  # the scanner's way, not a fallback
    want = parse_columns(orjson.loads(body), SCHEMA)
    for name in SCHEMA.numerical:
        np.testing.assert_array_equal(scanned.numeric[name], want.numeric[name])
    np.testing.assert_array_equal(scanned.categorical["country"], want.categorical["country"])
    assert scanned.ids == want.ids
    np.testing.assert_array_equal(scanned.prediction, want.prediction)
    np.testing.assert_array_equal(scanned.score, want.score)
    assert np.isnan(scanned.numeric["age"][7])
    # Without the scanner: msgspec reads every column, to the same Batch.
    monkeypatch.setattr(native, "columns", None)
    plain = TypedDecoder(SCHEMA).decode(body)
    assert isinstance(plain, Batch)
    for name in SCHEMA.numerical:
        np.testing.assert_array_equal(plain.numeric[name], scanned.numeric[name])


@pytest.mark.parametrize(
    "columns",
    [
        {"amount": [1.0], "age": [2.0]},  # a feature missing
        {"amount": [1.0], "age": [2.0], "country": ["x"], "other": [1]},  # an unknown column
        {"amount": [1.0], "age": ["2"], "country": ["x"]},  # a string where a number belongs
        {"amount": [1.0], "age": [True], "country": ["x"]},  # a boolean
    ],
)
def test_bodies_msgspec_must_judge_are_not_taken_by_the_scanner(columns):
    assert TypedDecoder(SCHEMA)._scanned(orjson.dumps({"columns": columns})) is None


def test_a_repeated_column_is_not_taken_by_the_scanner():
    body = b'{"columns": {"amount": [1], "age": [2], "country": ["x"], "age": [3]}}'
    assert TypedDecoder(SCHEMA)._scanned(body) is None
