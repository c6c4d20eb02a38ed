"""The operator's API client against a scripted HTTP server on 127.0.0.1: which answers are
retried (409, 429 with Retry-After, 5xx, dropped connections), which are not (400, 403),
and 404 as NotFound. The server plays the API server's part; the client is the code under
test. Against the real API server, 429s are exercised in tests/cluster (APF throttling)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mm_operator.kube import Kube, NotFound


class Script:
    def __init__(self, answers: list[tuple[int, dict[str, str]]]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[str, str, float]] = []


@pytest.fixture
def server():
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.seen.append((self.command, self.path, time.monotonic()))
            status, headers = script.answers.pop(0) if script.answers else (200, {})
            body = json.dumps(
                {"kind": "Status", "code": status, "message": f"scripted {status}"}
                if status >= 300
                else {"kind": "ConfigMap", "metadata": {"name": "x"}}
            ).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PATCH = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{httpd.server_address[1]}"
    kube = Kube(client.ApiClient(configuration), max_attempts=4, timeout=5)
    try:
        yield kube, script
    finally:
        httpd.shutdown()
        httpd.server_close()


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ns"}}


@pytest.mark.parametrize("status", [409, 429, 500, 503])
def test_transient_answers_are_retried_until_success(server, status):
    kube, script = server
    script.answers = [(status, {}), (status, {})]
    assert kube.apply(CM)["metadata"]["name"] == "x"
    assert [m for m, _, _ in script.seen] == ["PATCH"] * 3
    assert all("fieldManager=model-monitor-operator" in p for _, p, _ in script.seen)


def test_retry_after_is_honoured(server):
    kube, script = server
    script.answers = [(429, {"Retry-After": "1"})]
    kube.get("v1", "ConfigMap", "ns", "x")
    (_, _, t0), (_, _, t1) = script.seen
    assert t1 - t0 >= 0.5  # 1 s with jitter in [0.5, 1.5)


def test_gives_up_after_max_attempts(server):
    kube, script = server
    script.answers = [(503, {})] * 10
    with pytest.raises(ApiException) as e:
        kube.get("v1", "ConfigMap", "ns", "x")
    assert e.value.status == 503
    assert len(script.seen) == 4


@pytest.mark.parametrize("status", [400, 403, 422])
def test_permanent_answers_are_not_retried(server, status):
    kube, script = server
    script.answers = [(status, {})]
    with pytest.raises(ApiException) as e:
        kube.apply(CM)
    assert e.value.status == status
    assert len(script.seen) == 1


def test_not_found_is_its_own_error(server):
    kube, script = server
    script.answers = [(404, {})]
    with pytest.raises(NotFound):
        kube.get("v1", "ConfigMap", "ns", "x")
    script.answers = [(404, {})]
    assert kube.get_or_none("v1", "ConfigMap", "ns", "x") is None
