"""``make demo`` as CI runs it: ``python -m demo --ci`` (shorter phases) starts its own control
plane, Prometheus, Alertmanager, operator (helm-installed), MLServer and worker, sends healthy
then drifted traffic, and must see the health change and the alert reach Alertmanager, then
leave nothing running. Takes about 2 minutes once .venv-demo exists. Where this machine can
run real pods (``devcluster.node.available()``), the operator and the worker are pods on a
real node and the demo must say so; the image is built first if podman has none for the
current sources (about 3 minutes more)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from demo import realpods, state, venv

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_demo_ci_mode_sees_health_change_and_alert(tmp_path):
    venv.ensure()  # the model server's environment; minutes the first time, then cached
    workdir = tmp_path / "demo"
    try:
        r = subprocess.run(
            [sys.executable, "-m", "demo", "--ci", "--workdir", str(workdir)],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        left = state.left_running(workdir)
        state.down(workdir)  # whatever a timeout left behind
    out = r.stdout
    assert r.returncode == 0, f"{out[-4000:]}\n{r.stderr[-2000:]}"
    assert left == [], f"the demo left processes running: {left}"

    result = next(line for line in out.splitlines() if line.startswith("RESULT:"))
    health = result.split(";")[0]
    assert "Healthy -> " in health, result
    assert health.rstrip().endswith(("Critical", "Warning")), result
    assert "ModelMonitorAccuracyLow (critical)" in result, result
    assert "ALERT in Alertmanager: ModelMonitorAccuracyLow (critical)" in out
    assert "HEALTH Healthy -> " in out
    assert "[8/8] Clean up" in out
    assert "stopped control plane" in out
    if realpods.unavailable() is None:
        assert "pods: REAL" in out and "stopped real node" in out
        assert "operator pod model-monitor-" in out and "Running and Ready on node mm-node-" in out
    else:
        assert "pods: simulated by kwok" in out


def test_demo_kserve_path_ci_mode_feeds_the_worker_through_kserves_logger(tmp_path):
    """``make demo KSERVE=1`` as CI runs it: the example InferenceService and its monitor as
    written, MLServer behind KServe's agent, the logger posting over https to the worker; the
    health changes and the alert arrives as in the first path. About 80 s."""
    from devcluster.kserve import can_run_logger_tls

    if can_run_logger_tls():
        pytest.skip(str(can_run_logger_tls()))
    venv.ensure()
    workdir = tmp_path / "demo"
    try:
        r = subprocess.run(
            [sys.executable, "-m", "demo", "--kserve", "--ci", "--workdir", str(workdir)],
            cwd=REPO, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
    finally:
        left = state.left_running(workdir)
        state.down(workdir)
    out = r.stdout
    assert r.returncode == 0, f"{out[-4000:]}\n{r.stderr[-2000:]}"
    assert left == [], f"the demo left processes running: {left}"
    assert "$ kubectl apply -f examples/kserve-inferenceservice.yaml" in out
    assert "https://mm-fraud-detector.models.svc:8080/v1/cloudevents" in out
    assert "the worker answered [200, 200]" in out
    assert "InferenceService models/fraud-detector found (ready)" in out
    result = next(line for line in out.splitlines() if line.startswith("RESULT:"))
    assert "Healthy -> " in result and "ModelMonitorAccuracyLow (critical)" in result, result
    sent = next(line for line in out.splitlines() if "KServe's logger posted" in line)
    posted, answered = re.search(r"posted (\d+) events; the worker answered (\d+)", sent).groups()  # type: ignore[union-attr]
    assert int(posted) == int(answered) > 100, sent
    assert "stopped KServe agent" in out and "stopped control plane" in out
