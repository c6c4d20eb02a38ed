"""The worker's OpenAPI 3.0 description (``GET /openapi.json``), built from its data schema so
that the feature names and types in it are the ones this worker accepts."""

from __future__ import annotations

from typing import Any

from . import __version__
from .ingest import MAX_RECORDS_PER_BATCH
from .schema import DataSchema, Feature

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong, starting with the field."},
        "field": {
            "type": "string",
            "description": "Path of the offending field, e.g. records[3].features.amount.",
        },
    },
}


def _target(schema: DataSchema) -> dict[str, Any]:
    if schema.regression:
        return {"type": "number"}
    return {"oneOf": [{"type": "string"}, {"type": "integer"}]}


def _score(schema: DataSchema) -> dict[str, Any]:
    if schema.multiclass:
        n = len(schema.classes or ())
        vector: dict[str, Any] = {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 1},
        }
        if n:
            vector.update(minItems=n, maxItems=n)
        return {"oneOf": [vector, {"type": "object", "additionalProperties": {"type": "number"}}]}
    return {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "description": "Probability of the positive class.",
    }


def _feature_value(feature: Feature) -> dict[str, Any]:
    if feature.type == "numerical":
        return {"type": "number", "nullable": True}
    if feature.type == "text":
        return {
            "type": "string",
            "nullable": True,
            "description": f"Texts longer than {feature.max_chars} characters are cut (counted).",
        }
    if feature.type == "embedding":
        return {
            "type": "array",
            "items": {"type": "number"},
            "minItems": feature.dimension,
            "maxItems": feature.dimension,
        }
    return {
        "oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}],
        "nullable": True,
    }


def _measures(schema: DataSchema) -> dict[str, Any]:
    """A record's serving measures: declared names only, each a number (or null: absent)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: {"type": "number", "nullable": True} for name in schema.measures},
        "description": "Serving measures of the record (spec.measures), e.g. latency_ms.",
    }


def _cloudevent_body() -> dict[str, Any]:
    """KServe bodies: v1 instances/predictions or v2 inputs/outputs (the ce-type header says
    which half it is; OpenAPI cannot tie the two together)."""
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string"},
            "data": {"type": "array"},
        },
    }
    return {
        "anyOf": [
            {
                "type": "object",
                "required": ["instances"],
                "properties": {"instances": {"type": "array", "minItems": 1}},
            },
            {
                "type": "object",
                "required": ["inputs"],
                "properties": {"inputs": {"type": "array", "minItems": 1, "items": tensor}},
            },
            {
                "type": "object",
                "required": ["predictions"],
                "properties": {"predictions": {"type": "array"}},
            },
            {
                "type": "object",
                "required": ["outputs"],
                "properties": {"outputs": {"type": "array", "minItems": 1, "items": tensor}},
            },
        ]
    }


def openapi_document(schema: DataSchema, cloudevents_without_token: bool = False) -> dict[str, Any]:
    features = {f.name: _feature_value(f) for f in schema.features}
    id_schema: dict[str, Any] = {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        ]
    }
    timestamp_schema: dict[str, Any] = {
        "oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]
    }
    record: dict[str, Any] = {
        "type": "object",
        "required": ["features"],
        "additionalProperties": False,
        "properties": {
            "id": id_schema,
            "features": {
                "type": "object",
                "required": list(features),
                "additionalProperties": False,
                "properties": features,
            },
            "prediction": _target(schema),
            "score": _score(schema),
            "label": _target(schema),
            "timestamp": timestamp_schema,
        },
    }
    if schema.measures:
        record["properties"]["measures"] = _measures(schema)
    rows = {
        "type": "object",
        "required": ["records"],
        "additionalProperties": False,
        "properties": {
            "records": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_RECORDS_PER_BATCH,
                "items": record,
            }
        },
    }
    column_props = {name: {"type": "array", "items": v} for name, v in features.items()}
    for name, item in (
        ("id", id_schema),
        ("prediction", _target(schema)),
        ("score", _score(schema)),
        ("label", _target(schema)),
        ("timestamp", timestamp_schema),
        *((("measures", _measures(schema)),) if schema.measures else ()),
    ):
        column_props[name] = {"type": "array", "items": item}
    columns = {
        "type": "object",
        "required": ["columns"],
        "additionalProperties": False,
        "properties": {
            "columns": {
                "type": "object",
                "required": list(features),
                "additionalProperties": False,
                "properties": column_props,
                "description": "Equal-length lists, one per feature and per reserved column.",
            }
        },
    }
    labels = {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["id", "label"],
                    "additionalProperties": False,
                    "properties": {"id": id_schema, "label": _target(schema)},
                },
            }
        },
    }
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": ERROR}}}
        for code, text in (
            (400, "Invalid input; the error names the field and record index."),
            (401, "Missing or wrong bearer token."),
            (413, "Body too large."),
            (429, "Overloaded: retry after the Retry-After header's seconds."),
            (503, "Shutting down."),
        )
    }
    event_errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": ERROR}}}
        for code, text in (
            (
                415,
                "Not readable: structured-mode or batched CloudEvents, the binary tensor extension.",
            ),
            (422, "The other half of this ce-id was refused, or a segment value beyond the bound."),
        )
    }
    accepted = {
        "description": "Accepted: the data is in the window state.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    security: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "Model Monitor worker", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Rows": rows, "Columns": columns, "Labels": labels},
        },
        "paths": {
            "/v1/records": {
                "post": {
                    "summary": "Send predictions (rows or columns), optionally with labels.",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"oneOf": [rows, columns]}}},
                    },
                    "responses": {"200": accepted, **errors},
                }
            },
            "/v1/labels": {
                "post": {
                    "summary": "Send late ground truth, joined to earlier records by id.",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": labels}},
                    },
                    "responses": {"200": accepted, **errors},
                }
            },
            "/v1/cloudevents": {
                "post": {
                    "summary": "KServe payload-logger CloudEvents (binary mode), joined by ce-id.",
                    # ingestion.kserveLoggerWithoutToken: KServe's logger sends no credentials.
                    "security": [] if cloudevents_without_token else security,
                    "parameters": [
                        {
                            "name": "ce-id",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1},
                        },
                        {
                            "name": "ce-type",
                            "in": "header",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "enum": [
                                    "org.kubeflow.serving.inference.request",
                                    "org.kubeflow.serving.inference.response",
                                ],
                            },
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _cloudevent_body()}},
                    },
                    "responses": {"200": accepted, **errors, **event_errors},
                }
            },
            "/v1/status": {
                "get": {
                    "summary": "The current window, as JSON.",
                    "responses": {"200": {"description": "Window status."}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics.",
                    "responses": {"200": {"description": "Exposition."}},
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness.", "responses": {"200": {"description": "Alive."}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness.",
                    "responses": {
                        "200": {"description": "Ready."},
                        "503": {"description": "Starting or stopping."},
                    },
                }
            },
        },
    }
