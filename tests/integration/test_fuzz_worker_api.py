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


#: (worker config, its reference, kserve logger without token): the tabular worker, with the
#: token everywhere and with /v1/cloudevents open to KServe's logger
#: (ingestion.kserveLoggerWithoutToken: the ignored_auth check holds the document to that),
#: and one with text, embedding and serving-measure features (their shapes in /openapi.json:
#: strings, fixed-length number lists, a measures object).
CONFIGS = {
    "tabular": ("worker.yaml", "reference.csv", False),
    "tabular-kserve-logger": ("worker.yaml", "reference.csv", True),
    "texts-vectors-measures": ("text-worker.yaml", "text-reference.jsonl", False),
}


@pytest.mark.parametrize("config_name", CONFIGS)
def test_schemathesis_finds_nothing(tmp_path, config_name):
    worker_file, reference, kserve_logger = CONFIGS[config_name]
    token = tmp_path / "token"
    token.write_text("fuzz-token")
    open_events = ", kserveLoggerWithoutToken: true" if kserve_logger else ""
    config = (EXAMPLES / worker_file).read_text().replace(
        f"path: examples/{reference}", f"path: {EXAMPLES / reference}"
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
