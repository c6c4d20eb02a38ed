"""KServe's own payload logger as the worker's client: MLServer 1.7.1 serves the demo's
scikit-learn fraud model over the Open Inference Protocol, KServe's agent (built from
github.com/kserve/kserve, devcluster/build-kserve.sh) runs in logger mode in front of it, and
its CloudEvents go to a monitor worker. A second worker gets the same predictions directly as
records with the same ids; after the same late labels both must report the same figures.

Then what KServe sends that the worker does not read (binary tensors, calls that are not
inferences: refused whole, counted by why), what ``--log-batch-size`` changes for an http log
URL (nothing), and the secure path: the agent posting over https to the Service's name with
the CA bundle at its fixed path, certificates issued and rotated by the operator's own code,
no token for the logger while records and labels keep theirs."""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from demo import venv
from demo.data import CATEGORICAL, FEATURES, transactions
from demo.oip import MODEL, infer, request_body
from demo.server import ModelServer
from devcluster.controlplane import REPO
from devcluster.kserve import KServeAgent, LoggerSettings, LoggerTls, can_run_logger_tls
from devcluster.processes import wait_until
from devcluster.worker import WorkerProcess
from mm_operator.certificates import Issued, TlsRecord, issue, make_issuance
from mm_operator.render import service_names
from mm_operator.spec import parse_monitor

pytestmark = pytest.mark.e2e

# Traffic: 24 batched requests of 25 transactions and 12 single ones; 4 of those without a
# Ce-Id (the agent makes a UUID up). 612 rows, under the worker's 1000-row outlier reservoir,
# so the sampled outlier ratio does not depend on the order the rows arrive in.
BATCHES = [25] * 24 + [1] * 12
WITHOUT_CE_ID = {30, 31, 32, 33}
LABELLED_SHARE = 0.8


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Iterator[tuple[ModelServer, Path]]:
    """The demo's model trained in .venv-demo and served by MLServer; its reference CSV."""
    python = venv.ensure()  # minutes the first time, then cached
    out = tmp_path_factory.mktemp("model")
    subprocess.run(
        [str(python), "-m", "demo.model", "--out", str(out)], cwd=REPO, check=True,
        capture_output=True, timeout=300,
    )  # fmt: skip
    server = ModelServer(out / "model.joblib", out / "mlserver").start()
    try:
        yield server, out / "reference.csv"
    finally:
        server.stop()


def worker_config(reference: Path, workdir: Path) -> dict:
    """One config for both workers: auth off (KServe's logger sends no credentials)."""
    return {
        "monitor": {"name": "fraud", "namespace": "ml"},
        "model": {"name": "fraud-detector", "task": "binary-classification", "positiveClass": "1"},
        "data": {"reference": {"path": str(reference)}},
        "window": {"size": "30m", "buckets": 30, "evaluationInterval": "1s", "minSamples": 100},
        "drift": {"method": "auto", "shareThreshold": 0.5},
        "outliers": {"method": "isolation-forest", "contamination": 0.01, "maxRatio": 0.05},
        "labels": {"ttl": "1h"},
        "snapshot": {"directory": str(workdir / "state"), "interval": "1h"},
    }


@pytest.fixture
def start_worker(model, tmp_path) -> Iterator[Callable[[str], WorkerProcess]]:
    """Workers with the same config, each its own process; stopped after the test."""
    _, reference = model
    started: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        w = WorkerProcess(tmp_path / name, worker_config(reference, tmp_path / name))
        started.append(w.start())
        return w

    try:
        yield start
    finally:
        for w in started:
            w.stop()


def logger_to(worker: WorkerProcess, **overrides) -> LoggerSettings:
    settings = {
        "url": f"{worker.url}/v1/cloudevents",
        "inference_service": "fraud-detector",
        "namespace": "ml",
        **overrides,
    }
    return LoggerSettings(**settings)


def features_of(data: dict[str, np.ndarray], i: int) -> dict:
    return {f: str(data[f][i]) if f in CATEGORICAL else float(data[f][i]) for f in FEATURES}


def test_kserve_logger_events_give_the_figures_of_the_same_records_sent_directly(
    model, start_worker, tmp_path
):
    server, _ = model
    via_kserve, direct = start_worker("via-kserve"), start_worker("direct")
    workers = (via_kserve, direct)
    rng = np.random.default_rng(5)
    labels: list[dict] = []
    rows = 0
    # An allow-listed header reaches the worker as ce-metadata; this worker does not list it
    # in kserve.segments, so the figures stay the main window's (keyed windows:
    # tests/unit/worker/test_keyed_windows.py).
    logger = logger_to(via_kserve, metadata_headers=("X-Team",))
    with KServeAgent(tmp_path / "agent", server.port, logger) as agent:
        for k, n in enumerate(BATCHES):
            data = transactions(n, seed=300 + k)
            ce_id = None if k in WITHOUT_CE_ID else f"tx-{k:03d}"
            headers = {"X-Team": "fraud", **({"Ce-Id": ce_id} if ce_id else {})}
            predicted, fraud = infer(agent.url, data, headers=headers)  # through the agent
            # The ids the worker gives the instances of one event (docs/ingestion.md).
            base = ce_id or f"no-ce-id-{k}"
            ids = [base] if n == 1 else [f"{base}/{i}" for i in range(n)]
            records = [
                {"id": ids[i], "features": features_of(data, i),
                 "prediction": predicted[i], "score": fraud[i]}
                for i in range(n)
            ]  # fmt: skip
            code, answer = direct.post("/v1/records", {"records": records})
            assert code == 200, answer
            rows += n
            if ce_id:  # a UUID the agent made up is known to nobody: no label can follow
                labels += [
                    {"id": ids[i], "label": int(data["label"][i])}
                    for i in range(n)
                    if rng.random() < LABELLED_SHARE
                ]
        statuses = agent.wait_sent(2 * len(BATCHES))  # a request and a response per call
    assert statuses == [200] * (2 * len(BATCHES)), statuses
    wait_until(lambda: via_kserve.status()["totals"]["records"] == rows, timeout=30,
               what=f"{rows} records joined from KServe's events")  # fmt: skip

    # Late ground truth by the ids the events carried, plus two ids nobody knows.
    unknown = [{"id": "tx-999/0", "label": 1}, {"id": "never-sent", "label": 0}]
    for chunk in (labels[: len(labels) // 2], labels[len(labels) // 2 :] + unknown):
        for w in workers:
            code, answer = w.post("/v1/labels", {"labels": chunk})
            assert code == 200, answer
    after_labels = max(w.status()["totals"]["lastLabelAt"] for w in workers)
    for w in workers:
        wait_until(lambda w=w: evaluated_after(w.status(), after_labels), timeout=30,
                   what="an evaluation with every label")  # fmt: skip

    a, b = via_kserve.status(), direct.status()
    # Not vacuous: a full window, labelled, with quality, drift and outlier figures.
    assert a["totals"]["records"] == rows == 612
    assert a["totals"]["labelsMatched"] == len(labels) and a["totals"]["labelsUnmatched"] == 2
    assert a["window"]["sufficient"] and a["window"]["labelled"] == len(labels)
    assert {"accuracy", "roc-auc", "log-loss"} <= set(a["quality"])
    assert set(a["drift"]["features"]) == set(FEATURES)
    assert a["outliers"]["scored"] == rows
    assert_same_figures(strip_times(a), strip_times(b))
    assert_same_figures(metric_samples(via_kserve), metric_samples(direct))


def test_what_kserve_sends_that_the_worker_does_not_read(model, start_worker, tmp_path):
    """Each is refused whole with a 4xx naming why, counted by reason, and nothing is half
    accepted."""
    server, _ = model
    worker = start_worker("worker")
    data = transactions(3, seed=1)
    with KServeAgent(tmp_path / "agent", server.port, logger_to(worker)) as agent:
        # 1. The v2 binary tensor extension. MLServer 1.7.1 answers 500, so only the request
        # half is logged; the logger forwards the body and its Content-Type but not the
        # Inference-Header-Content-Length header, so the JSON part cannot even be found.
        code, _ = call(agent.url, f"/v2/models/{MODEL}/infer", *binary_tensor_request(data))
        assert code == 500
        assert agent.wait_sent(1) == [415]
        # 2. Calls that are not inferences are logged too: model metadata (GET, empty body)
        # gives a request half without a body and a response half without outputs.
        code, _ = call(agent.url, f"/v2/models/{MODEL}", None, {})
        assert code == 200
        assert sorted(agent.wait_sent(3)[1:]) == [400, 400]
        # 3. A JSON inference still joins after those.
        infer(agent.url, data, headers={"Ce-Id": "after-refusals"})
        assert agent.wait_sent(5)[3:] == [200, 200]
    assert ingest_requests(worker, "cloudevents", "415") == 1
    assert ingest_requests(worker, "cloudevents", "400") == 2
    assert refused(worker, "binary-tensor") == 1
    assert refused(worker, "not-inference") == 2
    assert worker.status()["totals"]["records"] == 3


def test_log_batch_size_does_not_batch_http_deliveries(model, start_worker, tmp_path):
    """``--log-batch-size`` only batches blob-storage URLs (s3://, gs://, abfs://): to an http
    log URL every request and response is still one CloudEvent (pkg/logger/dispatcher.go)."""
    server, _ = model
    worker = start_worker("worker")
    settings = logger_to(worker, batch_size=4)
    with KServeAgent(tmp_path / "agent", server.port, settings) as agent:
        assert "--log-batch-size" in agent.argv()
        for k in range(3):
            infer(agent.url, transactions(2, seed=k), headers={"Ce-Id": f"b-{k}"})
        assert agent.wait_sent(6) == [200] * 6
    assert ingest_requests(worker, "cloudevents", "200") == 6
    wait_until(lambda: worker.status()["totals"]["records"] == 6, timeout=10,
               what="three joined pairs of two rows")  # fmt: skip


# -- the secure path ---------------------------------------------------------------------------

MONITOR = parse_monitor(
    {"metadata": {"name": "fraud", "namespace": "ml"},
     "spec": {"model": {"task": "binary-classification",
                        "targetRef": {"kind": "InferenceService", "name": "fraud-detector"}},
              "worker": {"auth": {"kserveLogger": True}, "networkPolicy": {"enabled": True},
                         "tls": {"enabled": True}}}}
)  # fmt: skip
SERVICE = service_names(MONITOR)[0]  # mm-fraud.ml.svc, what the InferenceService's logger names
TOKEN = "labels-and-records-only"


class Pod:
    """The files the worker's pod and the predictor's pod get from the operator's objects:
    the Secret mm-fraud-tls (slots a and b) and the CA bundle ConfigMap KServe mounts."""

    def __init__(self, root: Path) -> None:
        self.tls, self.ca = root / "secret-mm-fraud-tls", root / "configmap-logger-ca"
        for d in (self.tls, self.ca):
            d.mkdir(parents=True)
        (root / "token").write_text(TOKEN)
        self.token_file = root / "token"

    def write_slot(self, slot: str, issued: Issued) -> None:
        (self.tls / f"{slot}.key").write_text(issued.key_pem)
        (self.tls / f"{slot}.crt").write_text(issued.cert_pem)

    def write_bundle(self, pem: str) -> None:
        tmp = self.ca / ".tmp"
        tmp.write_text(pem)
        tmp.replace(self.ca / "service-ca.crt")  # atomically, as the kubelet swaps a volume


def serial(pem: str) -> int:
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def served_serial(port: int) -> int:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # just look at it
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=SERVICE) as s,
    ):
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.skipif(bool(can_run_logger_tls()), reason=str(can_run_logger_tls()))
def test_kserve_logger_over_https_with_the_operators_certificates_and_a_rotation(model, tmp_path):
    server, reference = model
    pod = Pod(tmp_path / "volumes")
    now = dt.datetime.now(dt.UTC)
    duration = dt.timedelta(days=90)
    fresh = make_issuance("fresh", None, service_names(MONITOR), "90d", duration, now)
    pod.write_slot("a", fresh.issued)
    pod.write_bundle(fresh.record.bundle)
    cfg = worker_config(reference, tmp_path / "worker")
    cfg["ingestion"] = {"authTokenFile": str(pod.token_file), "kserveLoggerWithoutToken": True}
    cfg["tls"] = {"certificates": [{"certFile": str(pod.tls / f"{s}.crt"),
                                    "keyFile": str(pod.tls / f"{s}.key")} for s in "ab"]}  # fmt: skip
    worker = WorkerProcess(tmp_path / "worker", cfg, ca=fresh.record.bundle).start()
    logger = LoggerSettings(
        url=f"https://{SERVICE}:{worker.port}/v1/cloudevents",
        inference_service="fraud-detector", namespace="ml",
    )  # fmt: skip
    tls = LoggerTls(ca_dir=pod.ca, hosts={SERVICE: "127.0.0.1"})
    sent = 0
    try:
        with KServeAgent(tmp_path / "agent", server.port, logger, tls=tls) as agent:

            def traffic(k: int, n: int = 5) -> None:
                nonlocal sent
                infer(agent.url, transactions(n, seed=700 + k), headers={"Ce-Id": f"s-{k}"})
                sent += 2
                assert agent.wait_sent(sent) == [200] * sent, agent.send_failures()

            for k in range(4):
                traffic(k)
            assert worker.status()["totals"]["records"] == 20
            # The logger needs no token; records and labels still do.
            assert worker.post("/v1/records", {"records": []})[0] == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            code, doc = worker.post("/v1/labels", {"labels": [{"id": "s-0/0", "label": 1}]}, auth)
            assert code == 200 and doc["matched"] == 1

            # A rotation as the operator writes it: slot b valid a little later, and both CAs
            # in the bundle at once. (make_issuance's grace is 10 minutes for 90 days; the
            # test's is 3 s, the rest is the operator's own record.)
            start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
            rotated = issue(service_names(MONITOR), start, start + duration)
            record = TlsRecord("b", {"a": fresh.issued.ca_pem, "b": rotated.ca_pem})
            pod.write_bundle(record.bundle)
            pod.write_slot("b", rotated)
            assert worker.ssl_context is not None  # this test's own client trusts it too
            worker.ssl_context.load_verify_locations(cadata=rotated.ca_pem)
            traffic(10)  # before b is valid: still slot a
            wait_until(lambda: served_serial(worker.port) == serial(rotated.cert_pem),
                       timeout=30, what="the worker serving slot b", process=worker.process)  # fmt: skip
            for k in range(11, 14):
                traffic(k)  # after: slot b, the same bundle
            wait_until(lambda: worker.status()["totals"]["records"] == 40, timeout=30, process=worker.process,
                       what="every row delivered before and after the rotation")  # fmt: skip

            # The agent really verifies: a bundle without the served certificate's CA fails.
            pod.write_bundle(fresh.issued.ca_pem)
            infer(agent.url, transactions(2, seed=99), headers={"Ce-Id": "untrusted"})
            wait_until(lambda: len(agent.send_failures()) >= 2, timeout=30,
                       what="two events refused by the agent's TLS check")  # fmt: skip
            assert "certificate" in " ".join(agent.send_failures())
            assert agent.sent_statuses() == [200] * sent
        assert worker.status()["totals"]["records"] == 40
        assert worker.log().count("serving certificate") == 2  # slot a, then slot b
    finally:
        worker.stop()


# -- helpers ----------------------------------------------------------------------------------


def refused(worker: WorkerProcess, reason: str) -> float:
    for family in text_string_to_metric_families(worker.metrics()):
        for s in family.samples:
            if (
                s.name == "modelmonitor_kserve_events_refused_total"
                and s.labels.get("reason") == reason
            ):
                return s.value
    return 0.0


def call(base: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(base + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def binary_tensor_request(data: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """The Open Inference Protocol's binary tensor extension: a JSON header naming each
    input's ``binary_data_size``, then the raw little-endian tensors (BYTES as 4-byte length
    and bytes)."""
    header = json.loads(json.dumps(request_body(data)))
    raw = b""
    for t in header["inputs"]:
        values = data[t["name"]]
        if t["datatype"] == "BYTES":
            chunk = b"".join(len(s).to_bytes(4, "little") + s.encode() for s in map(str, values))
        else:
            chunk = np.asarray(values, dtype="<f8").tobytes()
        del t["data"]
        t["parameters"] = {"binary_data_size": len(chunk)}
        raw += chunk
    head = json.dumps(header).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(head)),
        "Ce-Id": "binary-1",
    }
    return head + raw, headers


def evaluated_after(status: dict, at: float) -> bool:
    """An evaluation later than ``at`` that holds every label matched so far."""
    window = status.get("window", {})
    labelled = status["totals"]["labelled"]
    return status.get("evaluatedAt", 0) > at and window.get("labelled") == labelled


def ingest_requests(worker: WorkerProcess, endpoint: str, code: str) -> float:
    for family in text_string_to_metric_families(worker.metrics()):
        for s in family.samples:
            if (
                s.name == "modelmonitor_ingest_requests_total"
                and s.labels.get("api") == endpoint
                and s.labels.get("code") == code
            ):
                return s.value
    return 0.0


# What differs between two workers fed the same data at slightly different moments.
VOLATILE_STATUS = {"evaluatedAt", "evaluationSeconds", "lastRecordAt", "lastLabelAt", "loadedAt"}
VOLATILE_METRICS = (
    "modelmonitor_ingest_",  # per endpoint (cloudevents vs records), durations, queue depth
    "modelmonitor_evaluation_",
    "modelmonitor_snapshot_",
    "modelmonitor_last_",
    "modelmonitor_reference_loaded_timestamp",  # when each worker profiled its reference
)


def strip_times(doc):
    if isinstance(doc, dict):
        return {k: strip_times(v) for k, v in doc.items() if k not in VOLATILE_STATUS}
    if isinstance(doc, list):
        return [strip_times(v) for v in doc]
    return doc


def metric_samples(worker: WorkerProcess) -> dict[tuple, float]:
    samples = {}
    for family in text_string_to_metric_families(worker.metrics()):
        for s in family.samples:
            if not s.name.startswith(VOLATILE_METRICS):
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def assert_same_figures(a, b, path: str = "") -> None:
    """Equal structure; integers and strings exactly, floats to 1e-12 relative (the same
    statistics summed over rows that arrived in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for k in a:
            assert_same_figures(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_figures(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float) and isinstance(b, int | float), f"{path}: {a!r} {b!r}"
        same = (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-15)
        assert same, f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
