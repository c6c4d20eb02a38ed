"""The worker as a real process: HTTP errors, authentication, overload, graceful shutdown
without loss, restart from its snapshot, probes and metrics."""

from __future__ import annotations

import concurrent.futures as cf
import shutil

import numpy as np
import pytest

from devcluster.worker import WorkerProcess

REPO_EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples"


def config(tmp_path, **overrides):
    rng = np.random.default_rng(0)
    ref = tmp_path / "reference.csv"
    ref.write_text(
        "x,c,prediction,label\n"
        + "\n".join(
            f"{v:.4f},{'ab'[i % 2]},{i % 2},{(i // 3) % 2}"
            for i, v in enumerate(rng.normal(size=2000))
        )
    )
    cfg = {
        "monitor": {"name": "fraud", "namespace": "ml"},
        "model": {"name": "fraud-detector", "task": "binary-classification"},
        "data": {"reference": {"path": str(ref)}},
        "window": {"size": "10m", "evaluationInterval": "1s", "minSamples": 10},
        "outliers": {"enabled": False},
        "snapshot": {"directory": str(tmp_path / "state"), "interval": "1h"},
    }
    cfg.update(overrides)
    return cfg


def batch(n, start=0):
    return {
        "columns": {
            "x": np.linspace(-1, 1, n).round(4).tolist(),
            "c": ["a"] * n,
            "id": [f"r{start + i}" for i in range(n)],
            "prediction": [1] * n,
        }
    }


@pytest.fixture
def worker(tmp_path):
    w = WorkerProcess(tmp_path / "w", config(tmp_path)).start()
    yield w
    w.stop()


def test_errors_are_json_and_name_the_field(worker):
    code, doc = worker.post("/v1/records", {"records": [{"features": {"x": "1,5", "c": "a"}}]})
    assert code == 400 and doc == {"error": doc["error"], "field": "records[0].features.x"}
    code, doc = worker.post("/v1/records", b"{not json")
    assert code == 400 and doc["field"] == "body"
    code, doc = worker.post("/v1/records", b'{"columns": {"x": [1e999], "c": ["a"]}}')
    assert code == 400 and "infinity" in doc["error"]
    code, doc = worker.request("GET", "/v1/nothing")
    assert code == 404 and "error" in doc
    assert worker.status()["totals"]["records"] == 0


def test_oversized_body_is_413(tmp_path):
    cfg = config(tmp_path, ingestion={"maxBodyBytes": 2048})
    w = WorkerProcess(tmp_path / "w", cfg).start()
    try:
        code, doc = w.post("/v1/records", batch(500))
        assert code == 413 and doc["field"] == "body"
        assert w.post("/v1/records", batch(5))[0] == 200
    finally:
        w.stop()


def test_bearer_token_required_for_ingestion_only(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    w = WorkerProcess(
        tmp_path / "w", config(tmp_path, ingestion={"authTokenFile": str(token_file)})
    ).start()
    try:
        assert w.post("/v1/records", batch(5))[0] == 401
        code, _ = w.post("/v1/records", batch(5), {"Authorization": "Bearer wrong"})
        assert code == 401
        assert w.post("/v1/records", batch(5), {"Authorization": "Bearer s3cret-token"})[0] == 200
        for path in ("/healthz", "/readyz", "/v1/status", "/openapi.json"):
            assert w.get(path)[0] == 200, path
        assert "modelmonitor_records_total" in w.metrics()
        # Rotation: the new token works without a restart, the old one stops working.
        token_file.write_text("rotated")
        import time

        time.sleep(2.5)
        assert w.post("/v1/records", batch(5), {"Authorization": "Bearer rotated"})[0] == 200
        assert w.post("/v1/records", batch(5), {"Authorization": "Bearer s3cret-token"})[0] == 401
        assert "s3cret" not in w.log() and "rotated" not in w.log()
    finally:
        w.stop()


def test_overload_gets_429_and_every_2xx_is_counted(tmp_path):
    w = WorkerProcess(tmp_path / "w", config(tmp_path, ingestion={"maxQueue": 1})).start()
    try:
        big = batch(20000)
        with cf.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda i: w.post("/v1/records", big)[0], range(24)))
        assert set(codes) <= {200, 429} and 429 in codes and 200 in codes
        accepted = codes.count(200) * 20000
        assert w.status()["totals"]["records"] == accepted
        assert 'code="429"' in w.metrics()
    finally:
        w.stop()


def test_sigterm_mid_stream_loses_nothing_accepted(tmp_path):
    cfg = config(tmp_path)
    w = WorkerProcess(tmp_path / "w", cfg).start()
    accepted = 0

    def send(i):
        try:
            return w.post("/v1/records", batch(2000, start=i * 2000))[0]
        except OSError:
            return 0

    with cf.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(send, i) for i in range(40)]
        import time

        time.sleep(0.4)
        assert w.terminate() == 0
        codes = [f.result() for f in futures]
    accepted = codes.count(200) * 2000
    assert accepted > 0
    assert "final snapshot saved" in w.log()
    w2 = WorkerProcess(tmp_path / "w2", cfg).start()
    try:
        assert w2.status()["totals"]["records"] == accepted
        assert w2.status()["pendingLabels"] == accepted  # every id still waits for its label
    finally:
        w2.stop()


def test_missing_reference_never_crash_loops(tmp_path):
    """The worker stays up, says why it is not ready, and recovers when the file appears."""
    missing = tmp_path / "later.csv"
    cfg = config(tmp_path)
    cfg["data"] = {"reference": {"path": str(missing)}}
    w = WorkerProcess(tmp_path / "w", cfg).start(wait_ready=False)
    try:
        from devcluster.processes import wait_until

        wait_until(
            lambda: w.get("/healthz")[0] == 200, timeout=60, what="/healthz", process=w.process
        )
        code, doc = w.get("/readyz")
        assert code == 503 and "data.reference.path" in doc["error"] and "later.csv" in doc["error"]
        code, doc = w.post("/v1/records", batch(5))
        assert code == 503 and "not ready" in doc["error"]
        assert "modelmonitor_reference_loaded" in w.metrics()
        # The reference appears (a ConfigMap mounted late): the next retry (30 s) picks it up.
        import shutil

        shutil.copy(tmp_path / "reference.csv", missing)
        wait_until(lambda: w.get("/readyz")[0] == 200, timeout=45, what="ready after the retry")
        assert w.post("/v1/records", batch(5))[0] == 200
    finally:
        w.stop()


def test_check_flag_reports_a_bad_reference(tmp_path):
    cfg = config(tmp_path)
    cfg["data"] = {"reference": {"path": str(tmp_path / "missing.csv")}}
    w = WorkerProcess(tmp_path / "w", cfg)
    w.argv.append("--check")
    w.start(wait_ready=False)
    assert w.process.popen.wait(timeout=30) == 2
    assert "data.reference.path" in w.log() and "missing.csv" in w.log()


def test_example_config_runs_as_documented(tmp_path):
    """The README's laptop command: monitor-worker --config examples/worker.yaml."""
    w = WorkerProcess(
        tmp_path / "w",
        argv=["--config", "examples/worker.yaml", "--port", "0"],
        cwd=REPO_EXAMPLES.parent,
    )
    w.argv[-1] = str(w.port)
    w.start()
    try:
        doc = w.status()
        assert doc["model"] == {"name": "fraud-detector", "task": "binary-classification"}
        assert [f["name"] for f in doc["features"]] == [
            "amount",
            "hour",
            "age",
            "device_score",
            "country",
            "merchant",
        ]
    finally:
        w.stop()
    assert shutil.which("env")
