"""The worker as a real process serving https: the token rules of KServe's logger path,
events it refuses counted by why, a certificate replaced on disk picked up live, and a
per-feature drift override naming no feature refused at start."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from devcluster.processes import wait_until
from devcluster.worker import WorkerProcess
from mm_operator.certificates import Issued, dns_names, issue
from tests.integration.test_worker_process import batch, config

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
TOKEN = "s3cret-token"


def issued_now(minutes_ago: int = 5) -> Issued:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return issue(dns_names("mm-fraud", "ml"), start, start + dt.timedelta(days=1))


def https_config(tmp_path, issued: Issued, **ingestion) -> dict:
    certs = tmp_path / "tls"
    certs.mkdir(exist_ok=True)
    (certs / "a.crt").write_text(issued.cert_pem)
    (certs / "a.key").write_text(issued.key_pem)
    (tmp_path / "token").write_text(TOKEN)
    return config(
        tmp_path,
        ingestion={"authTokenFile": str(tmp_path / "token"), **ingestion},
        tls={
            "certificates": [
                {"certFile": str(certs / f"{s}.crt"), "keyFile": str(certs / f"{s}.key")}
                for s in ("a", "b")
            ]
        },
    )


def event(worker: WorkerProcess, ce_id: str, kind: str, body: bytes, **headers: str):
    return worker.post(
        "/v1/cloudevents",
        body,
        {"Ce-Id": ce_id, "Ce-Type": kind, "Ce-Specversion": "1.0", "Ce-Source": "test",
         "Content-Type": "application/json", **headers},
    )  # fmt: skip


def counter(worker: WorkerProcess, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(worker.metrics()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def served_serial(port: int, ca_pem: str) -> int:
    client = ssl.create_default_context(cadata=ca_pem)
    client.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client.wrap_socket(raw) as s,
    ):
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.fixture
def issued() -> Issued:
    return issued_now()


def test_kserve_logger_needs_no_token_but_records_and_labels_do(tmp_path, issued):
    cfg = https_config(tmp_path, issued, kserveLoggerWithoutToken=True)
    w = WorkerProcess(tmp_path / "w", cfg, ca=issued.ca_pem).start()
    try:
        req = json.dumps({"instances": [{"x": 0.5, "c": "a"}]}).encode()
        assert event(w, "e1", REQUEST, req)[0] == 200
        assert event(w, "e1", RESPONSE, json.dumps({"predictions": [1]}).encode())[0] == 200
        assert w.post("/v1/records", batch(5))[0] == 401
        assert w.post("/v1/labels", {"labels": [{"id": "e1", "label": 1}]})[0] == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert w.post("/v1/records", batch(5), auth)[0] == 200
        code, doc = w.post("/v1/labels", {"labels": [{"id": "e1", "label": 1}]}, auth)
        assert code == 200 and doc["matched"] == 1
        for path in ("/healthz", "/readyz", "/v1/status"):
            assert w.get(path)[0] == 200, path
        assert w.status()["totals"]["records"] == 6
        # Only https is served on the port.
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{w.port}/healthz", timeout=5).read()
    finally:
        w.stop()


def test_without_the_kserve_setting_events_need_the_token_too(tmp_path, issued):
    w = WorkerProcess(tmp_path / "w", https_config(tmp_path, issued), ca=issued.ca_pem).start()
    try:
        req = json.dumps({"instances": [{"x": 0.5, "c": "a"}]}).encode()
        assert event(w, "e1", REQUEST, req)[0] == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert event(w, "e1", REQUEST, req, **auth)[0] == 200
    finally:
        w.stop()


def test_events_refused_whole_are_counted_by_why(tmp_path, issued):
    cfg = https_config(tmp_path, issued, kserveLoggerWithoutToken=True)
    w = WorkerProcess(tmp_path / "w", cfg, ca=issued.ca_pem).start()
    try:
        structured = json.dumps({"specversion": "1.0", "id": "s", "data": {}}).encode()
        code, doc = event(w, "s1", REQUEST, structured, **{"Content-Type": "application/cloudevents+json"})  # fmt: skip
        assert code == 415 and doc["field"] == "content-type" and "binary mode" in doc["error"]
        code, _ = event(w, "b1", REQUEST, b"[]", **{"Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
        assert code == 415
        head = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64",
                                       "parameters": {"binary_data_size": 8}}]}).encode()  # fmt: skip
        code, doc = event(w, "t1", REQUEST, head + bytes(8), **{"Content-Type": "application/octet-stream"})  # fmt: skip
        assert code == 415 and "binary tensor" in doc["error"]
        req = json.dumps({"instances": [{"x": 0.5, "c": "a"}]}).encode()
        code, _ = event(w, "t1", RESPONSE, json.dumps({"predictions": [1]}).encode())
        assert code == 422  # its request was refused
        code, doc = event(w, "g1", REQUEST, b"")
        assert code == 400 and "not an inference" in doc["error"]
        assert event(w, "ok", REQUEST, req)[0] == 200
        name = "modelmonitor_kserve_events_refused_total"
        for reason, n in (("structured-mode", 1), ("batched", 1), ("binary-tensor", 1),
                          ("partner-refused", 1), ("not-inference", 1)):  # fmt: skip
            assert counter(w, name, reason=reason) == n, reason
        assert counter(w, "modelmonitor_ingest_requests_total", api="cloudevents", code="415") == 3  # fmt: skip
        assert w.status()["totals"]["records"] == 0  # the accepted request waits for its response
    finally:
        w.stop()


def test_a_certificate_replaced_on_disk_is_served_without_a_restart(tmp_path, issued):
    w = WorkerProcess(tmp_path / "w", https_config(tmp_path, issued), ca=issued.ca_pem).start()
    try:
        first = x509.load_pem_x509_certificate(issued.cert_pem.encode()).serial_number
        assert served_serial(w.port, issued.ca_pem) == first
        second = issued_now(minutes_ago=1)  # valid since later: it wins
        (tmp_path / "tls" / "b.crt").write_text(second.cert_pem)  # the other slot, valid later
        (tmp_path / "tls" / "b.key").write_text(second.key_pem)
        serial = x509.load_pem_x509_certificate(second.cert_pem.encode()).serial_number
        wait_until(lambda: served_serial(w.port, second.ca_pem + issued.ca_pem) == serial,
                   timeout=30, what="the newer certificate served", process=w.process)  # fmt: skip
        assert w.process.alive()
    finally:
        w.stop()


def test_drift_override_naming_no_inferred_feature_is_refused_at_start(tmp_path):
    cfg = config(tmp_path, drift={"features": [{"name": "amout", "method": "psi"}]})
    w = WorkerProcess(tmp_path / "w", cfg)
    w.argv.append("--check")
    w.start(wait_ready=False)
    assert w.process.popen.wait(timeout=60) == 2
    assert "drift.features[0].name: 'amout' is not a feature (features: c, x)" in w.log()
