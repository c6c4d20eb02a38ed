"""The operator on a fresh local control plane, under the chart's RBAC (docs/benchmarks.md).

1. Latency: 20 ModelMonitors applied one at a time; for each, the time from `kubectl apply`
   returning to all six children present and the status set (observedGeneration 1, with
   conditions). p50 / p95.
2. Scale: 200 ModelMonitors applied at once; time until all are Ready, Kubernetes API requests
   per monitor (the operator's own apply/observe layer, and the API server's total), operator
   peak memory, and 409/429 answers seen.
3. Churn: the 200 updated, then deleted: time, leftovers, operator memory afterwards.
   Steps 2 and 3 repeat for ``--rounds`` rounds (3): memory after each round shows whether
   anything accumulates.

    .venv/bin/python bench/operator_scale.py [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "operator")]

from devcluster.controlplane import (  # noqa: E402
    ControlPlane,
    NodeSpec,
    service_account_kubeconfig,
)
from devcluster.processes import wait_until  # noqa: E402
from tests.support.operator import (  # noqa: E402
    OPERATOR_NAMESPACE,
    OPERATOR_SA,
    OperatorProcess,
    grant_operator_rbac,
    install_crd,
)

CHILD_KINDS = "configmap,secret,deployment,service,servicemonitor,prometheusrule"

# 220 workers at the default request of 100m CPU and 256Mi need 22 CPUs and 55 GiB: the dev
# cluster's two 8-CPU nodes hold 160, so the bench makes four larger simulated nodes
# (kwok: 110 pods each).
BENCH_NODES = tuple(NodeSpec(f"kwok-node-{i}", cpu="32", memory="128Gi") for i in range(4))


def monitor(name: str, window: str = "1h") -> dict:
    return {
        "apiVersion": "modelmonitor.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": name},
        "spec": {
            "model": {"task": "binary-classification", "targetRef": {"name": "model"}},
            "data": {"reference": {"configMapKeyRef": {"name": "ref", "key": "reference.csv"}}},
            "window": {"size": window},
            "quality": {"thresholds": [{"metric": "accuracy", "min": 0.9}]},
        },
    }


def base_objects() -> list[dict]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ref"},
            "data": {
                "reference.csv": "x,prediction\n" + "\n".join(f"{i % 7},{i % 2}" for i in range(50))
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "model"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "model"}},
                "template": {
                    "metadata": {"labels": {"app": "model"}},
                    "spec": {"containers": [{"name": "m", "image": "example.invalid/m:1"}]},
                },
            },
        },
    ]


def monitors(cp: ControlPlane, ns: str) -> list[dict]:
    return json.loads(cp.kubectl("get", "modelmonitors", "-n", ns, "-o", "json"))["items"]


def not_ready_reasons(ms: list[dict]) -> dict[str, int]:
    """How many monitors are held back by what: ``Condition=Status/Reason`` -> count."""
    out: dict[str, int] = {}
    for m in ms:
        if ready(m):
            continue
        conds = (m.get("status") or {}).get("conditions") or []
        why = ", ".join(
            f"{c['type']}={c['status']}/{c.get('reason', '')}"
            for c in conds
            if c["status"] != "True" or c["type"] == "Ready"
        )
        key = why or "no status yet"
        out[key] = out.get(key, 0) + 1
    return out


def wait_all_ready(cp: ControlPlane, ns: str, n: int, what: str, timeout: float = 900) -> None:
    """Wait for ``n`` monitors named ``m-*`` to be Ready, printing progress every 10 s."""
    t0 = last = time.monotonic()
    while True:
        ms = [m for m in monitors(cp, ns) if m["metadata"]["name"].startswith("m-")]
        done = sum(ready(m) for m in ms)
        now = time.monotonic()
        if done == n:
            return
        if now - t0 > timeout:
            raise SystemExit(
                f"{what}: only {done} of {n} Ready after {timeout:.0f} s; "
                f"the others: {not_ready_reasons(ms)}"
            )
        if now - last >= 10:
            print(f"    {what}: {done}/{n} Ready after {now - t0:.0f} s", flush=True)
            last = now
        time.sleep(2)


def ready(m: dict) -> bool:
    conds = {c["type"]: c["status"] for c in (m.get("status") or {}).get("conditions", [])}
    return (
        conds.get("Ready") == "True"
        and m["status"].get("observedGeneration") == m["metadata"]["generation"]
    )


def apiserver_requests(cp: ControlPlane) -> float:
    total = 0.0
    for line in cp.kubectl("get", "--raw", "/metrics").splitlines():
        if line.startswith("apiserver_request_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def proc_kb(pid: int, key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def latency(cp: ControlPlane, ns: str, n: int = 20) -> dict:
    times = []
    for i in range(n):
        name = f"lat-{i:02d}"
        t0 = time.monotonic()
        cp.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(monitor(name)))

        def done(name: str = name) -> bool:
            m = json.loads(cp.kubectl("get", "modelmonitor", name, "-n", ns, "-o", "json"))
            st = m.get("status") or {}
            if st.get("observedGeneration") != 1 or not st.get("conditions"):
                return False
            kids = json.loads(
                cp.kubectl(
                    "get", CHILD_KINDS, "-n", ns, "-l", f"modelmonitor.io/name={name}", "-o", "json"
                )
            )
            return len(kids["items"]) == 6

        wait_until(done, timeout=60, what=f"{name} children and status", interval=0.05)
        times.append(time.monotonic() - t0)
        print(f"    {name}: {times[-1]:.2f} s", flush=True)
    q = statistics.quantiles(times, n=20)
    return {"n": n, "p50": statistics.median(times), "p95": q[18], "max": max(times), "all": times}


BREAKDOWN = (
    "modelmonitor_operator_api_requests_total",
    "modelmonitor_operator_reconciles_total",
    "modelmonitor_operator_status_refreshes_total",
)


def breakdown(op: OperatorProcess) -> dict[str, float]:
    """The operator's own counters by label set: where its requests go."""
    out = {}
    for line in op.metrics().splitlines():
        if line.startswith(BREAKDOWN) and "{" in line:
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def scale(cp: ControlPlane, op: OperatorProcess, ns: str, n: int = 200) -> dict:
    ours0 = op.metric_value("modelmonitor_operator_api_requests_total")
    counts0 = breakdown(op)
    server0 = apiserver_requests(cp)
    log0 = len(op.log())
    names = [f"m-{i:03d}" for i in range(n)]
    t0 = time.monotonic()
    cp.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all([monitor(x) for x in names]))
    applied = time.monotonic() - t0

    wait_all_ready(cp, ns, n, "created")
    took = time.monotonic() - t0
    log = op.log()[log0:]
    return {
        "n": n,
        "applySeconds": applied,
        "allReadySeconds": took,
        "operatorRequestsPerMonitor": (
            op.metric_value("modelmonitor_operator_api_requests_total") - ours0
        )
        / n,
        "apiServerRequestsPerMonitor": (apiserver_requests(cp) - server0) / n,
        "operatorCountsPerMonitor": {
            k: round((v - counts0.get(k, 0.0)) / n, 2) for k, v in breakdown(op).items()
        },
        "conflicts409": len(re.findall(r"\b409\b", log)),
        "throttled429": len(re.findall(r"\b429\b", log)),
        "retries": op.metric_value("modelmonitor_operator_api_retries_total"),
        "operatorPeakRssMB": proc_kb(op.process.pid, "VmHWM") / 1024,
        "operatorRssMB": proc_kb(op.process.pid, "VmRSS") / 1024,
    }


def churn(cp: ControlPlane, op: OperatorProcess, ns: str, n: int = 200) -> dict:
    names = [f"m-{i:03d}" for i in range(n)]
    t0 = time.monotonic()
    cp.kubectl(
        "apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all([monitor(x, "2h") for x in names])
    )
    wait_all_ready(cp, ns, n, "updated")
    updated = time.monotonic() - t0
    t1 = time.monotonic()
    # kubectl deletes one object per request; it is not told to wait, the loop below does.
    cp.kubectl("delete", "modelmonitors", "--all", "-n", ns, "--wait=false")
    deleted = time.monotonic() - t1
    print(f"    delete requests sent in {deleted:.0f} s", flush=True)

    def gone() -> bool:
        kids = json.loads(
            cp.kubectl(
                "get",
                CHILD_KINDS,
                "-n",
                ns,
                "-l",
                "app.kubernetes.io/managed-by=model-monitor-operator",
                "-o",
                "json",
            )
        )
        return kids["items"] == []

    wait_until(
        lambda: monitors(cp, ns) == [] and gone(), timeout=900, what="all collected", interval=2
    )
    return {
        "updateSeconds": updated,
        "deleteRequestsSeconds": deleted,
        "deleteAndCollectSeconds": time.monotonic() - t1,
        "leftoverMonitors": len(monitors(cp, ns)),
        "operatorRssMBAfter": proc_kb(op.process.pid, "VmRSS") / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument(
        "--rounds", type=int, default=3, help="create / update / delete rounds (churn)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        print("starting the control plane ...", flush=True)
        cp = ControlPlane(work / "cp", nodes=BENCH_NODES).start()
        try:
            install_crd(cp.kubeconfig)
            grant_operator_rbac(cp.kubeconfig)
            kc = service_account_kubeconfig(
                cp.kubeconfig, OPERATOR_NAMESPACE, OPERATOR_SA, work / "sa"
            )
            op = OperatorProcess(kc, work / "op", MM_STATUS_INTERVAL="15").start()
            try:
                cp.kubectl("create", "namespace", "bench")
                cp.kubectl(
                    "apply", "-n", "bench", "-f", "-", input=yaml.safe_dump_all(base_objects())
                )
                print("1/3 latency, 20 monitors one by one ...", flush=True)
                lat = latency(cp, "bench")
                print(f"    p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s", flush=True)
                rounds = []
                for r in range(1, args.rounds + 1):
                    print(f"2/3 round {r}: {args.monitors} monitors at once ...", flush=True)
                    sc = scale(cp, op, "bench", args.monitors)
                    print(f"    {sc}", flush=True)
                    print(f"3/3 round {r}: update and delete the {args.monitors} ...", flush=True)
                    ch = churn(cp, op, "bench", args.monitors)
                    print(f"    {ch}", flush=True)
                    rounds.append({"scale": sc, "churn": ch})
            finally:
                op.stop()
        finally:
            cp.stop()
    result = {"latency": lat, "rounds": rounds}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
