"""The worker as a real process with a reference that changes under it: new contents give a
new profile and a fresh window without a restart, a new file it cannot use leaves the old one
serving, and the serving process never loads pyarrow or scikit-learn (the profile is built in
a child)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from devcluster.worker import WorkerProcess


def _write(path: Path, shift: float, columns: str = "x,c,prediction,label") -> None:
    """Replaces the file as the kubelet replaces a ConfigMap's: a new file renamed over it."""
    rng = np.random.default_rng(int(shift * 10))
    rows = [
        f"{v:.4f},{'ab'[i % 2]},{i % 2},{(i // 3) % 2}"
        for i, v in enumerate(rng.normal(shift, 1, 3000))
    ]
    tmp = path.with_suffix(".new")
    tmp.write_text(columns + "\n" + "\n".join(rows) + "\n")
    os.replace(tmp, path)


def _until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.3)


def _batch(n: int, start: int, shift: float) -> dict:
    return {
        "columns": {
            "x": np.random.default_rng(start).normal(shift, 1, n).round(4).tolist(),
            "c": ["a"] * n,
            "id": [f"r{start + i}" for i in range(n)],
            "prediction": [i % 2 for i in range(n)],
        }
    }


def test_a_new_reference_is_profiled_again_and_a_bad_one_keeps_the_old(tmp_path):
    ref = tmp_path / "reference.csv"
    _write(ref, 0.0)
    cfg = {
        "monitor": {"name": "fraud", "namespace": "ml"},
        "model": {"name": "fraud-detector", "task": "binary-classification"},
        "data": {
            "features": [{"name": "x", "type": "numerical"}, {"name": "c", "type": "categorical"}],
            "reference": {"path": str(ref), "reloadInterval": "1s"},
        },
        "window": {"size": "10m", "evaluationInterval": "1s", "minSamples": 10},
        "outliers": {"enabled": False},
        "snapshot": {"directory": str(tmp_path / "state"), "interval": "1h"},
    }
    w = WorkerProcess(tmp_path / "w", cfg).start()
    try:
        first = w.status()["reference"]
        assert first["rows"] == 3000 and first["reloads"] == 0 and first["version"]
        assert w.post("/v1/records", _batch(500, 0, 0.0))[0] == 200
        # Labels for predictions sent before the reload join after it.
        assert w.post("/v1/records", _batch(100, 1000, 0.0))[0] == 200

        # The serving process holds neither pyarrow nor scikit-learn: the child profiled.
        maps = Path(f"/proc/{w.pid}/maps").read_text()
        for package in ("pyarrow", "sklearn", "scipy"):
            assert f"site-packages/{package}/" not in maps, package

        # New contents: the reference moves to x ~ N(3, 1); what the window saw is dropped.
        _write(ref, 3.0)
        status = _until(lambda: (s := w.status())["reference"]["reloads"] == 1 and s)
        assert status["reference"]["version"] != first["version"]
        assert status["reference"]["reloadFailures"] == 0
        assert status["totals"]["records"] == 600  # totals carry over
        assert status["window"]["records"] == 0  # a fresh window on the new reference
        code, doc = w.post(
            "/v1/labels", {"labels": [{"id": f"r{1000 + i}", "label": 1} for i in range(100)]}
        )
        assert code == 200 and doc["matched"] == 100
        # Traffic like the new reference does not drift against it.
        assert w.post("/v1/records", _batch(2000, 5000, 3.0))[0] == 200
        drift = _until(
            lambda: (d := w.status().get("drift") or {}).get("features", {}).get("x") and d
        )
        assert drift["features"]["x"]["drifted"] is False, drift
        metrics = w.metrics()
        assert "modelmonitor_reference_reloads_total{" in metrics
        assert 'result="reloaded"} 1.0' in metrics

        # A new file without the feature x cannot be used: the previous reference keeps serving.
        _write(ref, 0.0, columns="y,c,prediction,label")
        status = _until(lambda: (s := w.status())["reference"]["reloadFailures"] == 1 and s)
        assert "x" in status["reference"]["lastError"]
        assert status["reference"]["version"] != first["version"]
        assert status["reference"]["reloads"] == 1
        assert w.post("/v1/records", _batch(10, 9000, 3.0))[0] == 200
        assert w.get("/readyz")[0] == 200
        assert 'result="failed"} 1.0' in w.metrics()
        assert "cannot use the new reference" in w.log()
    finally:
        w.stop()
