"""A client of the Open Inference Protocol (v2) for the demo's model: one batch of
transactions as a request MLServer decodes into a pandas DataFrame (request parameter
``content_type: pd``, one named input per column, BYTES for strings), asking for both the
``predict`` and ``predict_proba`` outputs."""

from __future__ import annotations

import json
import urllib.request

import numpy as np

from .data import CATEGORICAL, FEATURES

MODEL = "fraud-detector"


def request_body(columns: dict[str, np.ndarray]) -> dict:
    n = len(columns[FEATURES[0]])
    inputs = []
    for name in FEATURES:
        values = columns[name]
        if name in CATEGORICAL:
            inputs.append({"name": name, "shape": [n], "datatype": "BYTES", "data": [str(v) for v in values]})  # fmt: skip
        else:
            inputs.append({"name": name, "shape": [n], "datatype": "FP64", "data": [float(v) for v in values]})  # fmt: skip
    return {
        "parameters": {"content_type": "pd"},
        "inputs": inputs,
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }


def infer(
    base_url: str, columns: dict[str, np.ndarray], timeout: float = 10,
    headers: dict[str, str] | None = None,
) -> tuple[list[int], list[float]]:  # fmt: skip
    """(predicted classes, probability of fraud) for each transaction. ``headers`` go with the
    request (e.g. ``Ce-Id``, which KServe's payload logger uses as the event id)."""
    req = urllib.request.Request(
        f"{base_url}/v2/models/{MODEL}/infer",
        data=json.dumps(request_body(columns)).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        doc = json.loads(r.read())
    outputs = {o["name"]: o for o in doc["outputs"]}
    predict = [int(v) for v in outputs["predict"]["data"]]
    proba = outputs["predict_proba"]
    width = proba["shape"][-1]
    fraud = [float(v) for v in proba["data"][1::width]]  # column of class 1, row-major
    return predict, fraud
