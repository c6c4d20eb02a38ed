"""KServe's payload logger: the bodies of its binary-mode CloudEvents, v1
(``instances``/``predictions``) or v2 Open Inference Protocol (``inputs``/``outputs``)
requests and responses, and the store that pairs the two halves of each inference by
``ce-id``. The envelope (headers, refusals before parsing): :mod:`.kserve_events`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..schema import DataSchema
from .batch import Batch, PayloadError
from .columns import parse_columns
from .kserve_events import MAIN, PARTNER_REFUSED, EventKey, EventRefused, not_an_inference
from .rows import parse_records
from .values import check_count, numeric_column, score_column, target_column


def parse_inference_request(doc: Any, schema: DataSchema) -> Batch:
    """v1 ``{"instances": [...]}`` or v2 ``{"inputs": [tensors]}`` -> Batch of features."""
    if isinstance(doc, dict) and "instances" in doc:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise PayloadError("instances", "expected a list")
        check_count(len(instances), "instances")
        if all(isinstance(x, dict) for x in instances):
            return parse_records({"records": [{"features": x} for x in instances]}, schema)
        names = schema.names
        if not all(isinstance(x, list) and len(x) == len(names) for x in instances):
            i = next(
                i
                for i, x in enumerate(instances)
                if not (isinstance(x, list) and len(x) == len(names))
            )
            raise PayloadError(f"instances[{i}]", f"expected a list of {len(names)} feature values")
        columns = {name: [x[j] for x in instances] for j, name in enumerate(names)}
        return parse_columns({"columns": columns}, schema)
    if isinstance(doc, dict) and "inputs" in doc:
        dimensions = {f.name: f.dimension for f in schema.embeddings if f.dimension}
        columns = v2_tensors_to_columns(doc["inputs"], schema.names, "inputs", dimensions)
        return parse_columns({"columns": columns}, schema)
    raise not_an_inference(
        "instances", 'expected a v1 "instances" or a v2 "inputs" body (not an inference)'
    )


def parse_inference_response(doc: Any, schema: DataSchema) -> tuple[list[Any], list[Any] | None]:
    """(predictions, scores or None) from v1 ``predictions`` or v2 ``outputs``."""
    if isinstance(doc, dict) and "predictions" in doc:
        preds = doc["predictions"]
        if not isinstance(preds, list):
            raise PayloadError("predictions", "expected a list")
        if preds and all(isinstance(p, list) for p in preds) and not schema.regression:
            # Probability vectors: the prediction is the most likely class.
            return _argmax_classes(preds, schema, "predictions"), preds
        return preds, None
    if isinstance(doc, dict) and "outputs" in doc:
        outputs = doc["outputs"]
        if outputs == [] and "model_name" not in doc:
            # Model metadata (GET /v2/models/<m>) has "name" and "outputs": [].
            raise not_an_inference("outputs", "no tensors and no model_name: not an inference")
        if not isinstance(outputs, list) or not outputs:
            raise PayloadError("outputs", "expected a non-empty list of tensors")
        for j, t in enumerate(outputs):
            check_tensor(t, f"outputs[{j}]")
        tensors = {
            t.get("name"): t
            for t in outputs
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        }
        proba = tensors.get("predict_proba")
        main = tensors.get("predict") or next(
            (t for n, t in tensors.items() if n != "predict_proba"), None
        )
        scores = _tensor_rows(proba, "outputs.predict_proba") if proba else None
        if main is not None:
            preds = _tensor_flat(main, "outputs[0]")
        elif scores is not None:
            preds = _argmax_classes(scores, schema, "outputs.predict_proba")
        else:
            raise PayloadError("outputs", "no prediction tensor")
        return preds, scores
    raise not_an_inference(
        "predictions", 'expected a v1 "predictions" or a v2 "outputs" body (not an inference)'
    )


def _argmax_classes(rows: list[list[Any]], schema: DataSchema, field: str) -> list[Any]:
    classes = schema.classes or tuple(str(i) for i in range(len(rows[0])))
    if not classes:
        raise PayloadError(f"{field}[0]", "expected class probabilities, got an empty list")
    out = []
    for i, r in enumerate(rows):
        if len(r) != len(classes):
            raise PayloadError(f"{field}[{i}]", f"expected {len(classes)} class probabilities")
        probabilities = numeric_column(r, f"{field}[{i}][{{i}}]")
        if np.isnan(probabilities).any():
            j = int(np.flatnonzero(np.isnan(probabilities))[0])
            raise PayloadError(f"{field}[{i}][{j}]", "expected a probability, got null")
        out.append(classes[int(np.argmax(probabilities))])
    return out


def _tensor_flat(t: Any, field: str) -> list[Any]:
    if not isinstance(t, dict) or not isinstance(t.get("data"), list):
        raise PayloadError(field, 'expected a tensor {"name", "shape", "datatype", "data"}')
    data = t["data"]
    if data and isinstance(data[0], list):
        # Row-major nested data ([[...], [...]]) is accepted as well as flat data.
        if not all(isinstance(row, list) for row in data):
            raise PayloadError(f"{field}.data", "mixes nested lists and values")
        data = [x for row in data for x in row]
    return data


def _tensor_rows(t: Any, field: str) -> list[list[Any]]:
    data = _tensor_flat(t, field)
    shape = t.get("shape") or [len(data)]
    if len(shape) != 2 or shape[0] * shape[1] != len(data):
        raise PayloadError(
            f"{field}.shape", f"expected [rows, classes] matching {len(data)} values"
        )
    cols = int(shape[1])
    return [data[i * cols : (i + 1) * cols] for i in range(int(shape[0]))]


def _tensor_vectors(t: Any, field: str, dimension: int) -> list[Any]:
    """An [N, dimension] tensor as N rows (each checked later by vector_column)."""
    data = _tensor_flat(t, field)
    shape = t.get("shape")
    if len(shape) != 2 or shape[1] != dimension or shape[0] * dimension != len(data):
        raise PayloadError(
            f"{field}.shape", f"expected [rows, {dimension}] matching {len(data)} values"
        )
    return [data[i * dimension : (i + 1) * dimension] for i in range(int(shape[0]))]


def check_tensor(t: Any, field: str) -> None:
    """An Open Inference Protocol tensor: ``name`` and ``datatype`` strings, ``shape`` a list
    of dimensions, ``data`` a list (its values are checked where they are used)."""
    if not isinstance(t, dict) or not isinstance(t.get("data"), list):
        raise PayloadError(field, 'expected a tensor {"name", "shape", "datatype", "data"}')
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise PayloadError(f"{field}.shape", "expected a list of dimensions")
    for key in ("name", "datatype"):
        if not isinstance(t.get(key), str):
            raise PayloadError(f"{field}.{key}", "expected a string")


def v2_tensors_to_columns(
    inputs: Any,
    names: Sequence[str],
    field: str,
    dimensions: Mapping[str, int] | None = None,
) -> dict[str, list[Any]]:
    """Open Inference Protocol inputs -> columns: either one [N, F] tensor in feature order,
    or one [N] (or [N, 1]) tensor per feature, named after it; an embedding feature's tensor
    is [N, dimension] (``dimensions``), a text feature's a BYTES tensor of N strings."""
    if not isinstance(inputs, list) or not inputs:
        raise PayloadError(field, "expected a non-empty list of tensors")
    for j, t in enumerate(inputs):
        check_tensor(t, f"{field}[{j}]")
    by_name = {t.get("name"): t for t in inputs}
    dimensions = dimensions or {}
    if all(n in by_name for n in names):
        return {
            n: (
                _tensor_vectors(by_name[n], f"{field}.{n}", dimensions[n])
                if n in dimensions
                else _tensor_flat(by_name[n], f"{field}.{n}")
            )
            for n in names
        }
    if dimensions:
        missing = [n for n in names if n not in by_name]
        raise PayloadError(
            field, f"expected one tensor per feature (vectors need their own): {missing[:5]}"
        )
    if len(inputs) == 1:
        t = inputs[0]
        shape = t["shape"]
        data = _tensor_flat(t, f"{field}[0]")
        if len(shape) != 2 or shape[1] != len(names) or shape[0] * shape[1] != len(data):
            raise PayloadError(
                f"{field}[0].shape",
                f"expected [rows, {len(names)}] with features in order {list(names)[:10]}",
            )
        width = len(names)
        return {n: data[j::width] for j, n in enumerate(names)}
    missing = [n for n in names if n not in by_name]
    raise PayloadError(f"{field}", f"no tensor for feature(s) {missing[:5]}")


# -- CloudEvents and pairing ---------------------------------------------------------------------

HALF_TTL = 300.0  # seconds a half of a request/response pair waits for the other
MAX_UNPAIRED = 10_000


Response = tuple[list[Any], list[Any] | None]  # (predictions, scores or None)


def response_columns(
    response: Response, schema: DataSchema
) -> tuple[np.ndarray, np.ndarray | None]:
    """(predictions, scores) of a response half as columns; raises PayloadError."""
    preds, scores = response
    prediction = target_column(preds, schema, "predictions[{i}]")
    score = None
    if scores is not None:
        if schema.multiclass:
            score = score_column(scores, schema, "predictions[{i}]")
        elif scores and isinstance(scores[0], list) and len(scores[0]) == 2:
            score = score_column([s[1] for s in scores], schema, "predictions[{i}]")
    return prediction, score


def join(ce_id: str, request: Batch, response: Response, schema: DataSchema) -> Batch:
    """The request's features with the response's predictions, ids ``ce-id`` (one instance)
    or ``ce-id/<i>`` (a batch of instances) for labels sent later."""
    preds, _ = response
    if len(preds) != request.n:
        raise PayloadError(
            "predictions", f"{len(preds)} predictions for {request.n} instances (ce-id {ce_id})"
        )
    request.prediction, request.score = response_columns(response, schema)
    request.ids = [ce_id] if request.n == 1 else [f"{ce_id}/{i}" for i in range(request.n)]
    return request


@dataclass
class _Half:
    kind: str  # "request" | "response"
    payload: Batch | Response
    at: float
    key: EventKey = MAIN  # the window its event belongs to (endpoint and segment)


class KServePairs:
    """Halves of inferences waiting for their other half, by ``ce-id``, oldest first; a half
    leaves when its partner comes (:meth:`add` returns the pair), or by :meth:`expire` after
    ``ttl`` seconds or beyond ``max_unpaired`` halves. An expired request still describes the
    model's inputs, so :meth:`expire` hands it back to be counted without a prediction.

    A half that was refused takes its partner with it (:meth:`refuse`): the waiting one is
    dropped and one that comes later is refused too, so no inference is half accepted.

    Each half keeps its event's :class:`EventKey`; a pair, and an expired request, go to the
    window of the request's key (KServe puts the same extensions on both halves)."""

    def __init__(self, ttl: float = HALF_TTL, max_unpaired: int = MAX_UNPAIRED) -> None:
        self.ttl = ttl
        self.max_unpaired = max_unpaired
        self._halves: OrderedDict[str, _Half] = OrderedDict()
        self._refused: OrderedDict[str, float] = OrderedDict()  # ce-id -> when (not saved)

    def __len__(self) -> int:
        return len(self._halves)

    def refuse(self, ce_id: str, now: float) -> None:
        """The half ``ce-id`` was refused: drop its waiting partner, refuse a later one."""
        self._halves.pop(ce_id, None)
        self._refused.pop(ce_id, None)
        self._refused[ce_id] = now
        while self._refused and (
            len(self._refused) > self.max_unpaired
            or now - next(iter(self._refused.values())) >= self.ttl
        ):
            self._refused.popitem(last=False)

    def add(
        self, ce_id: str, kind: str, payload: Batch | Response, now: float, key: EventKey = MAIN
    ) -> tuple[Batch, Response, EventKey] | None:
        """The pair (request, response, the request's key) once both halves came, else None."""
        refused_at = self._refused.pop(ce_id, None)
        if refused_at is not None and now - refused_at < self.ttl:
            raise EventRefused(
                PARTNER_REFUSED, "ce-id",
                f"the other half of {ce_id[:80]!r} was refused, so this {kind} is dropped too",
                422,
            )  # fmt: skip
        other = self._halves.pop(ce_id, None)
        if other is None or other.kind == kind:
            self._halves[ce_id] = _Half(kind, payload, now, key)
            return None
        if kind == "request":
            return payload, other.payload, key  # type: ignore[return-value]
        return other.payload, payload, other.key  # type: ignore[return-value]

    def expire(self, now: float) -> list[tuple[EventKey, Batch]]:
        """Drop halves past their time; returns the requests among them, with their keys."""
        requests = []
        while self._halves:
            half = next(iter(self._halves.values()))
            if now - half.at < self.ttl and len(self._halves) <= self.max_unpaired:
                break
            self._halves.popitem(last=False)
            if half.kind == "request":
                requests.append((half.key, half.payload))
        return requests  # type: ignore[return-value]

    # -- snapshots -------------------------------------------------------------------------

    def to_list(self) -> list[list[Any]]:
        return [
            [ce_id, h.kind, _encode(h), h.at, *([] if h.key.main else [h.key.to_json()])]
            for ce_id, h in self._halves.items()
        ]

    def load(self, items: list[list[Any]], schema: DataSchema) -> None:
        """Halves of :meth:`to_list` (a fifth item, the key, only for keyed windows' halves)."""
        self._halves = OrderedDict(
            (
                ce_id,
                _Half(
                    kind,
                    _decode(kind, payload, schema),
                    at,
                    EventKey.from_json(rest[0]) if rest else MAIN,
                ),
            )
            for ce_id, kind, payload, at, *rest in items
        )


def encode_half(kind: str, payload: Batch | Response) -> bytes:
    """A half as bytes (for a shared store); inverse of :func:`decode_half`."""
    return orjson.dumps(_encode(_Half(kind, payload, 0.0)))


def decode_half(kind: str, data: bytes, schema: DataSchema) -> Batch | Response:
    return _decode(kind, orjson.loads(data), schema)


def _encode(h: _Half) -> Any:
    if h.kind == "response":
        return list(h.payload)  # type: ignore[arg-type]
    b: Batch = h.payload  # type: ignore[assignment]
    return {
        "numeric": {k: v.tolist() for k, v in b.numeric.items()},
        "categorical": {
            k: [
                None if m else s
                for s, m in zip(v.tolist(), b.categorical_missing[k].tolist(), strict=True)
            ]
            for k, v in b.categorical.items()
        },
        "texts": {k: v.tolist() for k, v in b.texts.items()},
        "vectors": {k: v.tolist() for k, v in b.vectors.items()},
    }


def _decode(kind: str, payload: Any, schema: DataSchema) -> Batch | Response:
    if kind == "response":
        return (payload[0], payload[1])
    columns = {
        **payload["numeric"],
        **payload["categorical"],
        **payload.get("texts", {}),
        **payload.get("vectors", {}),
    }
    return parse_columns({"columns": columns}, schema)
