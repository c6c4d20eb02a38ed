"""Text, embedding and serving-measure features through real worker processes: the figures in
/v1/status and /metrics, a restart from the snapshot, and two replicas sharing a store (real
redis-server) giving the window one worker gives."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from devcluster.processes import wait_until
from devcluster.worker import WorkerProcess
from tests.unit.stats.peer_cases import texts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def config(tmp_path: Path, **overrides) -> dict:
    cfg = yaml.safe_load((EXAMPLES / "text-worker.yaml").read_text())
    cfg["data"]["reference"]["path"] = str(EXAMPLES / "text-reference.jsonl")
    cfg["window"]["evaluationInterval"] = "1s"
    cfg["snapshot"] = {"directory": str(tmp_path / "state"), "interval": "1h"}
    cfg.update(overrides)
    return cfg


def batch(seed: int, n: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "columns": {
            "review": texts(seed, n, shifted=True),
            "vec": rng.normal(0.5, 1, (n, 8)).round(4).tolist(),
            "amount": rng.lognormal(3, 1, n).round(2).tolist(),
            "measures": [
                {"latency_ms": round(float(v), 2), "tokens": int(t)}
                for v, t in zip(rng.lognormal(5, 0.7, n), rng.integers(5, 400, n), strict=True)
            ],
        }
    }


def evaluated(worker: WorkerProcess, records: int) -> dict:
    wait_until(
        lambda: (
            worker.status()["window"].get("records") == records
            and "vec" in (worker.status().get("drift") or {}).get("features", {})
        ),
        timeout=60,
        what=f"an evaluation of {records} records",
        interval=0.2,
    )
    return worker.status()


def series(exposition: str, name: str, labels: dict[str, str], value: float | None) -> bool:
    """Whether the exposition has a sample of ``name`` with these labels (and value)."""
    for line in exposition.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if not m or not all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            continue
        if value is None or float(m.group(2)) == value:
            return True
    return False


def test_status_metrics_and_restart(tmp_path):
    worker = WorkerProcess(tmp_path / "w", config(tmp_path)).start()
    try:
        for seed in (1, 2):
            code, doc = worker.post("/v1/records", batch(seed, 150))
            assert code == 200, doc
        code, doc = worker.post(
            "/v1/records", {"records": [{"features": {"review": "x", "vec": [1, 2], "amount": 1}}]}
        )
        assert code == 400 and doc["field"] == "records[0].features.vec", doc
        status = evaluated(worker, 300)
        drift = status["drift"]["features"]
        assert {f"review.{d}" for d in ("chars", "words", "oov_share")} <= set(drift)
        assert drift["review.chars"]["drifted"] and drift["review.chars"]["exact"]
        assert drift["vec"]["method"] == "mmd" and drift["vec"]["drifted"]
        assert status["measures"]["latency_ms"]["count"] == 300
        assert status["measures"]["latency_ms"]["p95"] > status["measures"]["latency_ms"]["p50"]
        metrics = worker.metrics()
        for name, labels, value in (
            ("modelmonitor_feature_drift_score", {"feature": "review.chars"}, None),
            ("modelmonitor_feature_drift_detected", {"feature": "vec", "method": "mmd"}, 1.0),
            ("modelmonitor_measure_quantile", {"measure": "latency_ms", "quantile": "p99"}, None),
            ("modelmonitor_text_truncated_total", {"feature": "review"}, 0.0),
        ):
            assert series(metrics, name, labels, value), (name, labels)
        fired = {v["alert"] for v in status["violations"]}
        assert "ModelMonitorMeasureHigh" in fired  # p95 of lognormal(5, 0.7) > 300
        before = {k: round(v["score"], 9) for k, v in drift.items() if k.startswith("review.")}
        worker.stop()  # SIGTERM: the final snapshot
        worker.start()
        again = evaluated(worker, 300)["drift"]["features"]
        assert {k: round(v["score"], 9) for k, v in again.items() if k in before} == before
        assert again["vec"]["statistic"] == drift["vec"]["statistic"]
    finally:
        worker.stop()


def test_two_replicas_sharing_a_store_see_the_window_one_worker_sees(tmp_path, redis_server):
    store = {"url": redis_server.url, "flushInterval": "250ms"}
    env = {"MM_STORE_PASSWORD": redis_server.password}
    cfg = config(tmp_path, store=store)
    cfg.pop("snapshot")
    replicas = [WorkerProcess(tmp_path / f"r{i}", cfg, env=env).start() for i in range(2)]
    single = WorkerProcess(tmp_path / "one", config(tmp_path)).start()
    try:
        for seed in range(4):
            body = batch(10 + seed, 100)
            assert replicas[seed % 2].post("/v1/records", body)[0] == 200
            assert single.post("/v1/records", body)[0] == 200
        want = evaluated(single, 400)
        for r in replicas:
            got = evaluated(r, 400)
            for key, figure in want["drift"]["features"].items():
                if key.startswith("review.") or key == "amount":  # raw values: the same rows
                    assert round(got["drift"]["features"][key]["score"], 9) == round(
                        figure["score"], 9
                    ), key
            assert got["drift"]["features"]["vec"]["exact"]  # all 400 vectors, from both
            assert got["measures"]["tokens"]["count"] == 400
            for q in ("p50", "p95", "p99"):  # DDSketch merges are exact
                assert got["measures"]["latency_ms"][q] == want["measures"]["latency_ms"][q]
    finally:
        for w in [*replicas, single]:
            w.stop()
