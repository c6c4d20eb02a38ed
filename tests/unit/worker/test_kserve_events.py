"""The envelope of KServe's events: endpoint and segments (bounded), and what is refused whole
before parsing, with the reason it is counted under. Header values are the ones KServe v0.17.0
writes (pkg/logger/worker.go: ce-metadata is JSON of http.Header, ce-annotations of a map)."""

from __future__ import annotations

import json

import pytest

from mm_api.sections import SegmentSpec
from monitor_worker.ingest import (
    EventKey,
    EventRefused,
    PayloadError,
    SegmentValues,
    check_event_body,
    event_key,
    refusal_reason,
)
from monitor_worker.ingest.kserve_events import event_endpoint, event_segment

SPEC = SegmentSpec(headers=["X-Team"], annotations=["serving.example.org/tier"], max_values=2)


def headers(**extra: str) -> dict[str, str]:
    return {"ce-id": "e1", "ce-type": "org.kubeflow.serving.inference.request", **extra}


@pytest.mark.parametrize(
    ("value", "endpoint"), [(None, "default"), ("", "default"), ("default", "default"),
                            ("canary", "canary"), ("Canary", "canary")],
)  # fmt: skip
def test_endpoint_default_or_canary(value, endpoint):
    h = headers() if value is None else headers(**{"ce-endpoint": value})
    assert event_endpoint(h) == endpoint


def test_another_endpoint_is_refused_naming_the_header():
    with pytest.raises(PayloadError) as e:
        event_endpoint(headers(**{"ce-endpoint": "blue"}))
    assert e.value.field == "ce-endpoint" and "default or canary" in e.value.message


def test_segment_takes_only_allow_listed_keys_case_insensitively():
    h = headers(**{
        "ce-metadata": json.dumps({"X-Team": ["fraud"], "X-User": ["u-123"]}),
        "ce-annotations": json.dumps({"serving.example.org/tier": "gold", "other": "x"}),
    })  # fmt: skip
    assert event_segment(h, SPEC) == (("X-Team", "fraud"), ("serving.example.org/tier", "gold"))
    lower = SegmentSpec(headers=["x-team"])
    assert event_segment(h, lower) == (("x-team", "fraud"),)
    # Nothing allow-listed: the headers are not even parsed.
    assert event_segment(headers(**{"ce-metadata": "not json"}), SegmentSpec()) == ()


def test_missing_keys_are_left_out_and_empty_metadata_is_none():
    assert event_segment(headers(**{"ce-metadata": "{}"}), SPEC) == ()
    assert event_segment(headers(), SPEC) == ()
    # Several values of one header: the first, as a server reading the header takes it.
    h = headers(**{"ce-metadata": json.dumps({"X-Team": ["a", "b"]})})
    assert event_segment(h, SPEC) == (("X-Team", "a"),)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"ce-metadata": "[1, 2]"}, "ce-metadata"),
        ({"ce-metadata": "{bad"}, "ce-metadata"),
        ({"ce-metadata": json.dumps({"X-Team": [7]})}, "ce-metadata.X-Team"),
        ({"ce-annotations": json.dumps({"serving.example.org/tier": {}})},
         "ce-annotations.serving.example.org/tier"),
    ],
)  # fmt: skip
def test_malformed_metadata_names_the_header(extra, field):
    with pytest.raises(PayloadError) as e:
        event_segment(headers(**extra), SPEC)
    assert e.value.field == field


def test_values_beyond_the_bound_are_refused_not_exploded():
    values = SegmentValues(max_values=2)
    for team in ("fraud", "risk", "fraud", "risk"):
        h = headers(**{"ce-metadata": json.dumps({"X-Team": [team]})})
        assert event_key(h, SPEC, values) == EventKey("default", (("X-Team", team),))
    h = headers(**{"ce-metadata": json.dumps({"X-Team": ["growth"]})})
    with pytest.raises(EventRefused) as e:
        event_key(h, SPEC, values)
    assert (e.value.status, e.value.reason, e.value.field) == (422, "segment-limit", "X-Team")
    assert "maxValues=2" in e.value.message
    assert values.values("X-Team") == ["fraud", "risk"]


def test_a_refused_event_admits_none_of_its_values():
    values = SegmentValues(max_values=1)
    values.admit((("X-Team", "fraud"),))
    with pytest.raises(EventRefused):
        values.admit((("serving.example.org/tier", "gold"), ("X-Team", "risk")))
    assert values.values("serving.example.org/tier") == []  # not half admitted
    assert values.segments() == [(("X-Team", "fraud"),)]


def test_combinations_are_bounded_too():
    """Two keys of 3 values each could make 9 segments: at most maxValues are kept."""
    values = SegmentValues(max_values=3)
    for team, tier in (("a", "x"), ("b", "y"), ("c", "z"), ("a", "x")):
        values.admit((("X-Team", team), ("tier", tier)))
    with pytest.raises(EventRefused) as e:
        values.admit((("X-Team", "a"), ("tier", "y")))  # known values, a new combination
    assert (e.value.field, e.value.reason) == ("segment", "segment-limit")
    assert len(values.segments()) == 3
    values.admit(())  # no segment at all: always the endpoint's own figures


def test_admitted_values_survive_a_snapshot():
    values = SegmentValues(max_values=2)
    values.admit((("X-Team", "fraud"), ("k", "v")))
    restored = SegmentValues(max_values=2)
    restored.load(json.loads(json.dumps(values.to_dict())))
    assert restored.segments() == values.segments()
    restored.admit((("X-Team", "risk"), ("k", "v")))
    with pytest.raises(EventRefused):
        restored.admit((("X-Team", "growth"), ("k", "v")))


def test_overlong_values_are_refused():
    h = headers(**{"ce-metadata": json.dumps({"X-Team": ["x" * 129]})})
    with pytest.raises(EventRefused) as e:
        event_segment(h, SPEC)
    assert e.value.reason == "segment-limit" and e.value.field == "ce-metadata.X-Team"


# -- bodies refused before parsing ---------------------------------------------------------------

V2 = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]})


def binary_extension_body() -> bytes:
    head = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64",
                                   "parameters": {"binary_data_size": 8}}]})  # fmt: skip
    return head.encode() + b"\x00\x00\x00\x00\x00\x00\xf0\x3f"


@pytest.mark.parametrize(
    ("content_type", "body", "reason", "status", "field"),
    [
        ("application/cloudevents+json", V2.encode(), "structured-mode", 415, "content-type"),
        ("application/cloudevents+json; charset=utf-8", b"{}", "structured-mode", 415,
         "content-type"),
        ("application/cloudevents-batch+json", b"[]", "batched", 415, "content-type"),
        ("application/octet-stream", binary_extension_body(), "binary-tensor", 415, "body"),
        ("application/json", binary_extension_body(), "binary-tensor", 415, "body"),
        ("", b"", "not-inference", 400, "body"),
        ("application/json", b"  \n", "not-inference", 400, "body"),
    ],
)  # fmt: skip
def test_bodies_refused_whole_name_why(content_type, body, reason, status, field):
    with pytest.raises(EventRefused) as e:
        check_event_body(content_type, body)
    assert (e.value.reason, e.value.status, e.value.field) == (reason, status, field)
    assert refusal_reason(e.value) == reason


@pytest.mark.parametrize("content_type", ["application/json", "", "application/octet-stream"])
def test_json_bodies_pass(content_type):
    check_event_body(content_type, V2.encode())  # JSON sent as octet-stream is still JSON


def test_other_errors_count_as_invalid():
    assert refusal_reason(PayloadError("inputs", "bad")) == "invalid"


def test_the_openapi_document_says_what_cloudevents_may_answer_and_need():
    from monitor_worker.openapi import openapi_document
    from monitor_worker.schema import DataSchema, Feature

    schema = DataSchema((Feature("x", "numerical"),), "binary-classification")
    post = openapi_document(schema)["paths"]["/v1/cloudevents"]["post"]
    assert {"415", "422", "400", "401"} <= set(post["responses"])
    assert post["security"] == [{"bearer": []}]
    open_post = openapi_document(schema, cloudevents_without_token=True)["paths"]
    assert open_post["/v1/cloudevents"]["post"]["security"] == []
    assert open_post["/v1/records"]["post"]["security"] == [{"bearer": []}]
