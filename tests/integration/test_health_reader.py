"""The operator's health reader against a real worker process (its /v1/status is the health
source when neither Prometheus nor Alertmanager is configured), and its one-fetch cache."""

from __future__ import annotations

import time

import pytest

from devcluster.processes import wait_until
from devcluster.worker import WorkerProcess
from mm_operator.health import HealthReader, _Cached, reading_from_worker_status
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor
from tests.integration.test_worker_process import batch, config

MONITOR = parse_monitor(
    {
        "metadata": {"name": "fraud", "namespace": "ml"},
        "spec": {"model": {"name": "fraud-detector", "task": "binary-classification", "targetRef": {"name": "fd"}}},
    }
)  # fmt: skip


def test_health_from_the_workers_own_status(tmp_path):
    cfg = config(
        tmp_path,
        quality={"thresholds": [{"metric": "accuracy", "min": 0.99, "severity": "critical"}]},
    )
    with WorkerProcess(tmp_path / "w", cfg) as worker:
        reader = HealthReader(
            Settings(worker_url_template=f"http://127.0.0.1:{worker.port}"), ttl=0
        )
        unavailable = reader.read(MONITOR)
        assert unavailable.source == "worker" and unavailable.enough_data is False
        code, _ = worker.post("/v1/records", batch(200))
        assert code == 200
        truth = [{"id": f"r{i}", "label": i % 4 == 0} for i in range(200)]  # 1 in 4 right
        code, _ = worker.post(
            "/v1/labels", {"labels": [{**t, "label": int(t["label"])} for t in truth]}
        )
        assert code == 200
        wait_until(
            lambda: worker.status()["window"].get("labelled") == 200, timeout=30, what="evaluated"
        )
        reading = reader.read(MONITOR)
        doc = worker.status()
    assert reading.error is None and reading.enough_data is True
    assert reading.summary["records"] == 200
    assert reading.summary["quality"] == pytest.approx(doc["quality"])
    assert reading.summary["quality"]["accuracy"] == pytest.approx(0.25)
    assert {a.name for a in reading.alerts} == {v["alert"] for v in doc["violations"]}
    assert ("ModelMonitorAccuracyLow", "critical") in {(a.name, a.severity) for a in reading.alerts}


def test_an_unreachable_worker_is_an_error_not_a_crash():
    reader = HealthReader(Settings(worker_url_template="http://127.0.0.1:9"), ttl=0)
    reading = reader.read(MONITOR)
    assert reading.source == "worker" and reading.error
    assert reading.alerts == () and reading.summary == {}


def test_documents_of_newer_workers_are_read_ignoring_unknown_keys():
    doc = {
        "monitor": {"name": "m", "namespace": "n"},
        "model": {"name": "m", "task": "regression"},
        "window": {"size": "1h", "records": 500, "labelled": 10, "sufficient": True, "future": 1},
        "quality": {"mae": 0.5},
        "violations": [{"alert": "ModelMonitorMaeHigh", "severity": "warning", "value": 0.5,
                        "threshold": 0.4, "message": "mae is 0.5", "newField": [1]}],
        "somethingNew": {"x": 1},
    }  # fmt: skip
    r = reading_from_worker_status(doc)
    assert r.summary == {"records": 500, "labelled": 10, "quality": {"mae": 0.5}}
    assert [(a.name, a.summary) for a in r.alerts] == [("ModelMonitorMaeHigh", "mae is 0.5")]


def test_one_fetch_serves_every_reader_within_the_ttl():
    calls = []
    cached = _Cached(lambda: calls.append(time.monotonic()) or len(calls), ttl=60)
    assert [cached.get() for _ in range(5)] == [1] * 5
    failing = _Cached(lambda: 1 / 0, ttl=60)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            failing.get()


def test_a_tls_worker_is_read_over_https_verified_with_its_ca(tmp_path):
    """The operator reads a worker with worker.tls over https, trusting the CA it issued and
    checking the name (here ``localhost``; in a cluster the Service's)."""
    import datetime as dt

    from mm_operator.certificates import issue
    from tests.integration.test_worker_https import https_config

    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    issued = issue(("localhost",), start, start + dt.timedelta(days=1))
    tls_monitor = parse_monitor(
        {"metadata": {"name": "fraud", "namespace": "ml"},
         "spec": {**MONITOR.spec.model_dump(by_alias=True, exclude_none=True),
                  "worker": {"tls": {"enabled": True}}}},
    )  # fmt: skip
    with WorkerProcess(tmp_path / "w", https_config(tmp_path, issued), ca=issued.ca_pem) as w:
        settings = Settings(worker_url_template=f"{{scheme}}://localhost:{w.port}")
        reader = HealthReader(settings, ttl=0)
        assert reader.worker_url(tls_monitor).startswith("https://localhost:")
        reading = reader.read(tls_monitor, ca=issued.ca_pem)
        assert reading.error is None and reading.summary["records"] == 0
        unverified = reader.read(tls_monitor)  # the system's trust store does not know the CA
        assert "CERTIFICATE_VERIFY_FAILED" in (unverified.error or "")


def test_a_worker_that_is_not_ready_says_why(tmp_path):
    cfg = config(tmp_path)
    cfg["data"] = {"reference": {"path": str(tmp_path / "later.csv")}}
    w = WorkerProcess(tmp_path / "w", cfg).start(wait_ready=False)
    try:
        wait_until(lambda: w.get("/healthz")[0] == 200, timeout=60, what="/healthz")
        reader = HealthReader(Settings(worker_url_template=f"http://127.0.0.1:{w.port}"), ttl=0)
        error = reader.read(MONITOR).error or ""
        assert error.startswith("worker not ready: ") and "data.reference.path" in error, error
    finally:
        w.stop()
