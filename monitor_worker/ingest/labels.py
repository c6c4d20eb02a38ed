"""Late ground truth: ``{"labels": [{"id": ..., "label": ...}]}`` -> GroundTruth, joined to
pending predictions by id."""

from __future__ import annotations

from typing import Any

from ..schema import DataSchema
from .batch import GroundTruth, PayloadError
from .values import check_count, id_column, target_column


def parse_labels(doc: Any, schema: DataSchema) -> GroundTruth:
    if not isinstance(doc, dict) or not isinstance(doc.get("labels"), list):
        raise PayloadError("labels", 'expected an object with a "labels" list')
    extra = set(doc) - {"labels"}
    if extra:
        raise PayloadError(sorted(extra)[0], "unknown top-level field")
    items = doc["labels"]
    check_count(len(items), "labels")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or "label" not in item:
            raise PayloadError(f"labels[{i}]", 'expected {"id": ..., "label": ...}')
        if len(item) > 2:
            raise PayloadError(
                f"labels[{i}].{sorted(set(item) - {'id', 'label'})[0]}", "unknown field"
            )
    ids = id_column([x["id"] for x in items], "labels[{i}].id")
    labels = target_column([x["label"] for x in items], schema, "labels[{i}].label")
    return GroundTruth(ids, labels)
