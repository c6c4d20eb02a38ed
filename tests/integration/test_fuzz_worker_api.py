"""Fuzz the worker's HTTP API from its own OpenAPI description (schemathesis): no 5xx, no
crash, every rejection a 4xx with a JSON error, schema-invalid input refused, authentication
enforced. Runs the schemathesis CLI against a real worker process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devcluster.worker import WorkerProcess

pytestmark = pytest.mark.fuzz
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# Every check except positive_data_acceptance: OpenAPI cannot say that column lists must be
# of equal length, or which CloudEvents body goes with which ce-type, so some schema-valid
# requests are rightly refused (docs/reliability.md).
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
    "missing_required_header,unsupported_method,allow_header_conformance,ignored_auth"
)


@pytest.mark.parametrize("kserve_logger", [False, True], ids=["token", "kserve-logger"])
def test_schemathesis_finds_nothing(tmp_path, kserve_logger):
    """``kserve-logger``: /v1/cloudevents without the token (ingestion.kserveLoggerWithoutToken),
    the other endpoints with it; the ignored_auth check holds the document to that."""
    token = tmp_path / "token"
    token.write_text("fuzz-token")
    open_events = ", kserveLoggerWithoutToken: true" if kserve_logger else ""
    config = (EXAMPLES / "worker.yaml").read_text().replace(
        "path: examples/reference.csv", f"path: {EXAMPLES / 'reference.csv'}"
    ) + f"ingestion: {{authTokenFile: {token}{open_events}}}\n"
    cfg_path = tmp_path / "worker.yaml"
    cfg_path.write_text(config)
    worker = WorkerProcess(tmp_path / "w", argv=["--config", str(cfg_path), "--port", "0"])
    worker.argv[-1] = str(worker.port)
    worker.start()
    try:
        exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
        examples = os.environ.get("MM_FUZZ_EXAMPLES", "150")
        r = subprocess.run(
            [
                exe,
                "run",
                f"{worker.url}/openapi.json",
                "--checks",
                CHECKS,
                "-n",
                examples,
                "-H",
                "Authorization: Bearer fuzz-token",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        summary = r.stdout[-3000:]
        assert r.returncode == 0, summary
        assert "passed" in summary
        assert "unhandled error" not in worker.log()
        assert worker.get("/healthz")[0] == 200
    finally:
        worker.stop()
