"""Quality estimation and multivariate drift in real worker processes: figures over HTTP
(/v1/status and /metrics), replicas sharing a real redis-server evaluating the same estimates
as one worker, and a refused estimator keeping the worker not ready with the field named, as
the operator's health reader and status then report it."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from devcluster.processes import wait_until
from devcluster.worker import WorkerProcess
from mm_operator.conditions import HEALTHY, Reason
from mm_operator.health import HealthReader, reading_from_worker_status
from mm_operator.observe import TargetState, WorkerState
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor
from mm_operator.status import Observation, compute_status

FLUSH = 0.25
MONITOR = parse_monitor(
    {
        "metadata": {"name": "fraud", "namespace": "ml"},
        "spec": {"model": {"name": "fraud-detector", "task": "binary-classification", "targetRef": {"name": "fd"}}},
    }
)  # fmt: skip


def rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, list]:
    """Two correlated features and a category; a calibrated-looking binary model."""
    x1 = rng.normal(shift, 1, n)
    x2 = 0.8 * x1 + 0.6 * rng.normal(0, 1, n)
    z = 1.5 * x1 - 0.5
    score = 1 / (1 + np.exp(-z))
    return {
        "x1": x1.round(4).tolist(),
        "x2": x2.round(4).tolist(),
        "c": rng.choice(["a", "b", "c"], n).tolist(),
        "prediction": (score >= 0.5).astype(int).tolist(),
        "score": score.round(6).tolist(),
        "label": (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int).tolist(),
    }


def config(tmp_path, store_url: str | None = None, **overrides) -> dict:
    ref = tmp_path / "reference.csv"
    if not ref.exists():
        cols = rows(np.random.default_rng(0), 4000)
        names = list(cols)
        lines = [",".join(str(cols[k][i]) for k in names) for i in range(4000)]
        ref.write_text(",".join(names) + "\n" + "\n".join(lines))
    cfg = {
        "monitor": {"name": "fraud", "namespace": "ml"},
        "model": {"name": "fraud-detector", "task": "binary-classification"},
        "data": {"reference": {"path": str(ref)}},
        "window": {"size": "1h", "buckets": 12, "evaluationInterval": "1s", "minSamples": 100},
        "drift": {"multivariate": {"method": "pca-reconstruction"}},
        "outliers": {"enabled": False},
    }
    if store_url:
        cfg["store"] = {"url": store_url, "flushInterval": f"{int(FLUSH * 1000)}ms"}
    cfg.update(overrides)
    return cfg


def batches(seed: int, n_batches: int, size: int, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    for b in range(n_batches):
        cols = rows(rng, size, shift)
        del cols["label"]  # no labels: quality only estimated
        cols["id"] = [f"r{b}-{i}" for i in range(size)]
        yield {"columns": cols}


def test_estimates_and_joint_drift_over_http(tmp_path):
    with WorkerProcess(tmp_path / "w", config(tmp_path)) as worker:
        for body in batches(1, 5, 400, shift=1.0):
            assert worker.post("/v1/records", body)[0] == 200
        wait_until(
            lambda: (
                worker.status().get("estimatedQuality", {}).get("accuracy", {}).get("records")
                == 2000
            ),
            timeout=30,
            what="an evaluation of the 2000 records",
        )
        doc = worker.status()
        text = worker.metrics()
    assert doc["estimation"] == {"enabled": True, "method": "cbpe", "reason": None,
                                 "scoredRecords": 2000}  # fmt: skip
    accuracy = doc["estimatedQuality"]["accuracy"]
    assert accuracy["lower"] < accuracy["value"] < accuracy["upper"]
    assert "quality" not in doc or not doc["quality"]  # no labels were sent
    mv = doc["drift"]["multivariate"]
    assert mv["method"] == "pca-reconstruction" and mv["records"] == 2000
    assert 'modelmonitor_estimated_quality{metric="accuracy",model="fraud-detector"' in text
    assert "modelmonitor_estimated_quality_lower_threshold{" in text
    assert 'modelmonitor_multivariate_drift{method="pca-reconstruction"' in text
    # what the operator's status summary takes from it (kubectl get mm: "accuracy 0.7 (estimated)")
    summary = reading_from_worker_status(doc).summary
    assert summary["estimatedQuality"] == {
        k: v["value"] for k, v in doc["estimatedQuality"].items()
    }
    assert summary["multivariateDrift"] == mv["drifted"]


def test_replicas_sharing_a_store_estimate_what_one_worker_does(tmp_path, redis_server):
    single = WorkerProcess(tmp_path / "single", config(tmp_path)).start()
    env = {"MM_STORE_PASSWORD": redis_server.password}
    replicas = [
        WorkerProcess(tmp_path / f"r{i}", config(tmp_path, redis_server.url), env=env).start()
        for i in range(2)
    ]
    pick = random.Random(3)
    try:
        for body in batches(2, 12, 250, shift=0.5):
            assert single.post("/v1/records", body)[0] == 200
            assert pick.choice(replicas).post("/v1/records", body)[0] == 200

        def everywhere() -> bool:
            docs = [w.status() for w in (single, *replicas)]
            return all(
                d.get("estimatedQuality", {}).get("accuracy", {}).get("records") == 3000
                and d.get("store", {"backlog": 0})["backlog"] == 0
                for d in docs
            )

        wait_until(everywhere, timeout=60, what="3000 scored records everywhere", interval=0.2)
        time.sleep(1.5)  # one more evaluation on every replica, after the last flush
        one, *docs = [w.status() for w in (single, *replicas)]
    finally:
        for w in (single, *replicas):
            w.stop()
    for d in docs:
        assert set(d["estimatedQuality"]) == set(one["estimatedQuality"])
        for metric, figure in one["estimatedQuality"].items():
            theirs = d["estimatedQuality"][metric]
            for key in ("value", "lower", "upper", "samplingError"):
                assert theirs[key] == pytest.approx(figure[key], rel=1e-9), (metric, key)
            assert theirs["outsideBand"] == figure["outsideBand"]
        assert d["drift"]["multivariate"]["value"] == pytest.approx(
            one["drift"]["multivariate"]["value"], rel=1e-9
        )
        assert d["drift"]["multivariate"]["drifted"] == one["drift"]["multivariate"]["drifted"]


def test_an_estimator_that_cannot_work_keeps_the_worker_not_ready_and_the_status_says_why(
    tmp_path,
):
    cfg = config(tmp_path, estimation={"enabled": True}, data={
        "reference": {"path": str(tmp_path / "reference.csv")}, "scoreColumn": "probability"})  # fmt: skip
    worker = WorkerProcess(tmp_path / "w", cfg).start(wait_ready=False)
    try:
        wait_until(
            lambda: "data.scoreColumn" in str(worker.get("/readyz")[1]),
            timeout=60,
            what="readyz naming the field",
            interval=0.2,
        )
        code, doc = worker.get("/readyz")
        assert code == 503 and "no column 'probability'" in doc["error"]
        assert worker.get("/healthz")[0] == 200  # up, not crash-looping
        assert worker.post("/v1/records", next(batches(0, 1, 10)))[0] == 503
        reading = HealthReader(
            Settings(worker_url_template=f"http://127.0.0.1:{worker.port}"), ttl=0
        ).read(MONITOR)
    finally:
        worker.stop()
    assert reading.error is not None and reading.error.startswith("worker not ready:")
    assert "data.scoreColumn" in reading.error
    obs = Observation(
        generation=1,
        model="fraud-detector",
        target=TargetState(True, Reason.FOUND, "found"),
        worker=WorkerState(True, 1, 0, Reason.PROGRESSING, "0/1 worker pods available"),
        health=reading,
    )
    status, _ = compute_status(obs, None, "2026-12-01T00:00:00Z")
    healthy = next(c for c in status["conditions"] if c["type"] == HEALTHY)
    assert healthy["reason"] == Reason.WORKER_UNAVAILABLE
    assert "data.scoreColumn: CBPE calibrates the scores" in healthy["message"]
