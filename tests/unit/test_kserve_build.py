"""KServe's agent and CRD come from one pinned module version: versions.env (the cache key)
and the wrapper go.mod (what is built) agree, and the wrapper pins the agent's command.
build-kserve.sh checks the same at build time, with KServe's own go.mod in hand."""

from __future__ import annotations

import re
from pathlib import Path

from devcluster.kserve import LoggerSettings

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "devcluster" / "go" / "kserve"


def versions_env() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z_]+)=(\S+)$", (REPO / "devcluster/versions.env").read_text(), re.M)
    return dict(pairs)


def test_versions_env_and_go_mod_pin_the_same_kserve():
    required = re.search(
        r"^require github\.com/kserve/kserve (v\S+)$", (MODULE / "go.mod").read_text(), re.M
    )
    assert required, "devcluster/go/kserve/go.mod must require github.com/kserve/kserve directly"
    assert versions_env()["KSERVE_VERSION"] == required.group(1)
    assert f"github.com/kserve/kserve {required.group(1)} h1:" in (MODULE / "go.sum").read_text()


def test_wrapper_module_pins_the_agent_command():
    tools = (MODULE / "tools.go").read_text()
    assert '_ "github.com/kserve/kserve/cmd/agent"' in tools
    assert "//go:build tools" in tools


def test_logger_settings_are_the_agent_flags_kserve_sets():
    args = LoggerSettings(
        url="http://w/v1/cloudevents", inference_service="isvc", namespace="ns",
        endpoint="canary", metadata_headers=("X-Team", "X-Region"), batch_size=4,
    ).args()  # fmt: skip
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert flags == {
        "--log-url": "http://w/v1/cloudevents",
        "--log-mode": "all",
        "--inference-service": "isvc",
        "--namespace": "ns",
        "--component": "predictor",
        "--endpoint": "canary",
        "--metadata-headers": "X-Team,X-Region",
        "--log-batch-size": "4",
    }
