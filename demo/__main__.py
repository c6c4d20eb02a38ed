"""``python -m demo``: the whole Model Monitor journey on this machine, narrated.

A local Kubernetes control plane, Prometheus and Alertmanager; the Helm chart and the operator;
a scikit-learn fraud model served by MLServer; a ModelMonitor watching it; healthy traffic, then
a drifted world, until the alert reaches Alertmanager and ``kubectl get mm`` turns Critical.
Everything it starts is stopped at the end (also on Ctrl-C or an error) unless ``--keep``
(``DEMO_KEEP=1``); ``python -m demo down`` stops a demo left running.

``--ci`` shortens the phases and prints a ``RESULT:`` line; the exit code says whether the
health changed and the alert arrived. ``--kserve`` (``make demo KSERVE=1``) takes the KServe
path instead: the model behind KServe's own agent, whose payload logger feeds the worker over
https (:mod:`demo.kserve`)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from devcluster.controlplane import REPO
from devcluster.tools import TOOLS_BIN, Cluster

from . import install, kserve, monitor, realpods, server, stack, state, venv, watch
from .narrate import Narrator
from .oip import request_body
from .state import Running
from .traffic import TrafficProcess

STEPS = 8
SEVERE = ("warning", "critical")


def rel(path: Path) -> str:
    """``path`` relative to the repository, as a person in it would type it."""
    path = Path(os.path.abspath(path))
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


class Demo:
    #: The ModelMonitor the demo follows.
    namespace, name = monitor.NAMESPACE, monitor.NAME

    def __init__(self, args: argparse.Namespace, n: Narrator, running: Running) -> None:
        self.args = args
        self.n = n
        self.running = running
        self.work: Path = args.workdir
        self.ci: bool = args.ci
        self.healths: list[str] = []  # distinct consecutive health values seen
        self.first_alert: tuple[float, list[dict]] | None = None

    # -- the journey ---------------------------------------------------------------------------

    def run(self) -> bool:
        n = self.n
        if not venv.ready():
            n.say("the model server's environment .venv-demo is missing: creating it")
        python = venv.ensure(log=n.say)
        n.say(f"model server environment: {rel(venv.VENV)} (MLServer 1.7.1, demo/requirements.txt)")
        why_not_real = realpods.unavailable()
        self.real = why_not_real is None
        if self.real:
            n.say(
                "pods: REAL - the operator and the worker run as pods of our image on a real node"
            )
        else:
            n.say(f"pods: simulated by kwok - operator and worker run as local processes ({why_not_real})")  # fmt: skip

        nodes_why = (
            "etcd, kube-apiserver, controller-manager, scheduler, kwok simulating three nodes,\n"
            "and a real node (containerd + kubelet) where our image's pods run."
            if self.real else
            "etcd, kube-apiserver, controller-manager, scheduler, and kwok simulating\n"
            "three nodes (pods get scheduled and Ready; images do not run here)."
        )  # fmt: skip
        with n.step(1, "Start a local Kubernetes control plane, Prometheus and Alertmanager",
                    nodes_why):  # fmt: skip
            self.stack = stack.start(self.work, self.running)
            self.kube = Cluster(self.stack.control_plane.kubeconfig)
            cp, am, prom = self.stack.control_plane, self.stack.alertmanager, self.stack.prometheus
            self.running.note(kubeconfig=str(cp.kubeconfig), prometheus=prom.url, alertmanager=am.url)  # fmt: skip
            n.say(f"Kubernetes API: {cp.server}   kubeconfig: {rel(cp.kubeconfig)}")
            n.say(f"Prometheus:     {prom.url}")
            n.say(f"Alertmanager:   {am.url}")
            if self.real:
                self.node, self.image = realpods.start_node(cp, self.work / "node", self.running, n.say)  # fmt: skip
                n.say(f"real node {self.node.name} Ready: containerd 1.6 + kubelet, pods in its own network namespace")  # fmt: skip
            n.cmd("kubectl get nodes", self.kube.kubectl("get", "nodes"))

        install_why = (
            "The chart installs the ModelMonitor CRD, the operator Deployment and its RBAC.\n"
            "The operator pod runs on the real node, from the image built from the Dockerfile."
            if self.real else
            "The chart installs the ModelMonitor CRD, the operator Deployment and its RBAC.\n"
            "kwok reports the operator pod Ready, but no image can run here: so the demo\n"
            "ALSO runs the operator as a local process, from the Deployment's command and\n"
            "env, authenticated with a token of the chart-created ServiceAccount."
        )  # fmt: skip
        with n.step(2, "Install Model Monitor with Helm, and run its operator", install_why):
            if self.real:
                extra = realpods.helm_args(self.node, self.image, prom, am)
                shown, out = install.helm_install(self.kube, [], extra)
            else:
                shown, out = install.helm_install(self.kube, install.helm_values(prom.url, am.url))
            n.cmd(" ".join(shown), "\n".join(out.splitlines()[:5]))
            n.cmd(
                f"kubectl get deploy,sa -n {install.NAMESPACE}",
                self.kube.kubectl("get", "deploy,sa", "-n", install.NAMESPACE),
            )
            if self.real:
                pod = realpods.operator_pod(self.kube, install.NAMESPACE, install.RELEASE)
                n.say(f"operator pod {pod['metadata']['name']} Running and Ready on node "
                      f"{pod['spec']['nodeName']} ({pod['status']['containerStatuses'][0]['containerID'][:25]}...)")  # fmt: skip
            else:
                op, account = install.operator_process(self.kube, self.work / "operator")
                try:
                    op.start()
                finally:
                    self.running.add("operator", op.stop, [op.process] if op.process else [])
                n.say(
                    f"operator running as system:serviceaccount:{install.NAMESPACE}:{account}"
                    f" (pid {op.process.pid}, log {rel(op.process.log_path)})"  # type: ignore[union-attr]
                )

        with n.step(3, "Train the fraud model and serve it with MLServer",
                    "A scikit-learn Pipeline (one-hot + gradient boosting) on synthetic card\n"
                    "transactions; the reference data is a validation set with its predictions.\n"
                    "Trained in .venv-demo, so the pickle matches the scikit-learn that serves it."):  # fmt: skip
            model_dir = self.work / "model"
            out = subprocess.run(
                [str(python), "-m", "demo.model", "--out", str(model_dir)],
                cwd=REPO, check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            n.cmd(f"{rel(python)} -m demo.model --out {rel(model_dir)}", out)
            mls = server.ModelServer(model_dir / "model.joblib", self.work / "mlserver")
            try:
                mls.start()
            finally:
                self.running.add("MLServer", mls.stop, [mls.process] if mls.process else [])
            self.model_url = mls.url
            n.say(f"MLServer ready at {mls.url} (Open Inference Protocol v2)")
            self._show_inference()

        with n.step(4, "Put the model and its ModelMonitor in the cluster",
                    "The Deployment stands for the model in the cluster (MLServer runs locally).\n"
                    "The operator answers the ModelMonitor with a worker Deployment, a Service, a\n"
                    "ServiceMonitor and a PrometheusRule, all owned by the monitor."):  # fmt: skip
            monitor.create(self.kube, model_dir / "reference.csv", n.cmd)
            if self.real:  # the worker's pod on the real node too
                patch = json.dumps(
                    {"spec": {"worker": realpods.placement()}}, separators=(",", ":")
                )
                out = self.kube.kubectl("patch", "mm", monitor.NAME, "-n", monitor.NAMESPACE, "--type=merge", "-p", patch)  # fmt: skip
                n.cmd(f"kubectl patch mm {monitor.NAME} -n {monitor.NAMESPACE} --type=merge -p '{patch}'", out)  # fmt: skip
            monitor.wait_configured(self.kube)
            n.cmd(
                f"kubectl get deploy,svc,servicemonitor,prometheusrule -n {monitor.NAMESPACE}",
                self.kube.kubectl(
                    "get", "deploy,svc,servicemonitor,prometheusrule", "-n", monitor.NAMESPACE
                ),
            )

        worker_why = (
            "The operator's worker Deployment runs as a pod on the real node; a relay gives\n"
            "this machine a port for it. Prometheus scrapes it as the ServiceMonitor says and\n"
            "evaluates the operator's PrometheusRule."
            if self.real else
            "The worker runs as a local process from the exact pod spec the operator\n"
            "wrote (command, args, env, ConfigMap and Secret volumes). Prometheus scrapes\n"
            "it as the ServiceMonitor says and evaluates the operator's PrometheusRule."
        )  # fmt: skip
        with n.step(5, "Start the monitor worker and point Prometheus at it", worker_why):
            if self.real:
                worker = realpods.start_worker(self.kube, self.node, monitor.NAMESPACE, monitor.WORKER)  # fmt: skip
                self.running.add("worker relay", worker.stop, [worker.process])
                n.say(f"worker pod {worker.pod} Running and Ready on node {self.node.name}, relayed to {worker.url}")  # fmt: skip
            else:
                # PodRunner hands the worker over once it is ready: until then, Ctrl-C waits.
                with state.signals_deferred():
                    worker = monitor.start_worker(self.kube, self.work / "worker")
                    self.running.add("worker", worker.stop, [worker.process])
                n.say(f"worker {monitor.WORKER} at {worker.url} (log {rel(worker.process.log_path)})")  # fmt: skip
            self.running.note(worker=worker.url)
            rules = monitor.wire_prometheus(self.kube, prom, worker)
            n.say(f"Prometheus scrapes it and evaluates {len(rules)} alert rules:")
            for r in rules:
                n.say(f"  {r['alert']:<32} {r.get('labels', {}).get('severity', ''):<9} for {r.get('for', '0s')}")  # fmt: skip

        self.traffic = TrafficProcess(
            self.work / "traffic", self.model_url, worker.url, worker.token
        )
        with n.step(6, "Healthy traffic",
                    "Transactions like the training data -> MLServer predictions -> worker records\n"
                    "(POST /v1/records, with ids); their labels follow 2s later (POST /v1/labels).\n"
                    "Watch the monitor fill its 1-minute window and report Healthy."):  # fmt: skip
            self.traffic.start()
            self.running.add("traffic generator", self.traffic.stop, [self.traffic.process])
            healthy = self.watch(
                lambda: self.healths[-1:] == ["Healthy"],
                min_seconds=20 if self.ci else 60,
                max_seconds=150,
            )
            if not healthy:
                n.error("the monitor did not become Healthy: " + self._health_message())
                return False

        with n.step(7, "The world changes: drifted traffic",
                    "A new market: larger amounts at night, other countries and devices (drift=1.0),\n"
                    "and 20% of the labels flipped. The model's accuracy falls below the 0.8 of\n"
                    "its quality threshold, features drift; Prometheus fires, Alertmanager gets it."):  # fmt: skip
            self.traffic.set_mode("drifted")
            self.t_drift = time.monotonic()
            n.say(f"switched the traffic to drifted at {n.clock()}")
            done = self.watch(
                lambda: self.healths[-1:] == ["Critical"] and self._has_alert("critical"),
                min_seconds=0,
                max_seconds=180,
                print_now=False,
            )
            ok = self.first_alert is not None and self.healths[-1:] in (["Critical"], ["Warning"])
            if not done and not ok:
                n.error("no alert reached Alertmanager in time: " + self._health_message())
                return False
            n.cmd(f"kubectl describe mm {monitor.NAME} -n {monitor.NAMESPACE}   (conditions and events)",
                  watch.describe_excerpt(self.kube))  # fmt: skip
        self._result()
        return True

    # -- pieces --------------------------------------------------------------------------------

    def _show_inference(self) -> None:
        from .data import transactions
        from .oip import infer

        sample = transactions(3, seed=3)
        body = request_body(sample)
        first = body["inputs"][0]
        self.n.say(
            f"by hand: POST /v2/models/fraud-detector/infer with parameters.content_type=pd,\n"
            f"  {len(body['inputs'])} inputs (one per column, e.g. {{name: {first['name']}, "
            f"datatype: {first['datatype']}, data: {first['data']}}}; strings as BYTES),\n"
            f"  outputs [predict, predict_proba]"
        )
        predicted, proba = infer(self.model_url, sample)
        self.n.say(f"  -> predict {predicted}, fraud probability {[round(p, 3) for p in proba]}")

    def _alerts(self) -> list[dict]:
        return watch.alerts(self.stack.alertmanager, self.namespace, self.name)

    def _has_alert(self, severity: str) -> bool:
        return any(a["labels"].get("severity") == severity for a in self._alerts())

    def _health_message(self) -> str:
        st = watch.status(self.kube, self.namespace, self.name)
        cond = next((c for c in st.get("conditions", []) if c["type"] == "Healthy"), {})
        return f"health {st.get('health')!r}: {cond.get('reason')}: {cond.get('message')}"

    def watch(
        self, until, *, min_seconds: float, max_seconds: float, every: float = 5,
        print_now: bool = True,
    ) -> bool:  # fmt: skip
        """Print the monitor and its alerts every ``every`` seconds, and changes at once, until
        ``until()`` (after ``min_seconds``) or ``max_seconds``."""
        t0 = time.monotonic()
        last_print = -every if print_now else 0.0
        seen_alerts: set[str] = set()
        while True:
            elapsed = time.monotonic() - t0
            h = watch.health(self.kube, self.namespace, self.name) or "-"
            active = [a for a in self._alerts() if a["labels"].get("severity") in SEVERE]
            changed = False
            if not self.healths or self.healths[-1] != h:
                if self.healths:
                    self.n.say(f"==> {self.n.clock()}  HEALTH {self.healths[-1]} -> {h}")
                    changed = True
                self.healths.append(h)
            for a in active:
                key = a["labels"]["alertname"]
                if key not in seen_alerts:
                    seen_alerts.add(key)
                    since = ""
                    if hasattr(self, "t_drift"):
                        since = f", {time.monotonic() - self.t_drift:.0f}s after the drift began"
                    self.n.say(f"==> {self.n.clock()}  ALERT in Alertmanager: {key} ({a['labels'].get('severity')}){since}")  # fmt: skip
                    changed = True
                    if self.first_alert is None and hasattr(self, "t_drift"):
                        self.first_alert = (time.monotonic() - self.t_drift, active)
            finished = elapsed >= min_seconds and until()
            if changed or finished or elapsed - last_print >= every:
                self._print_block(active)
                last_print = elapsed
            if finished:
                return True
            if elapsed >= max_seconds:
                return False
            time.sleep(1)

    def _print_block(self, active: list[dict]) -> None:
        s = self.traffic.stats()
        traffic = (
            f"traffic {s.get('mode', 'starting')}: {s.get('predictions', 0)} predictions, "
            f"{s.get('labels', 0)} labels"
        )
        if s.get("errors"):
            traffic += f", {s['errors']} errors (last: {s.get('lastError')})"
        self.n.say(f"--- {self.n.clock()}  {traffic}")
        self.n.cmd(watch.get_mm_command(self.namespace), watch.get_mm(self.kube, self.namespace))
        self.n.say("  alerts in Alertmanager:")
        for line in watch.alert_lines(active):
            self.n.say(f"    {line}")

    def _result(self) -> None:
        transitions = " -> ".join(h for h in self.healths if h != "-")
        names = ", ".join(
            f"{a['labels']['alertname']} ({a['labels'].get('severity')})"
            for a in self._alerts()
            if a["labels"].get("severity") in SEVERE
        )
        after = f"{self.first_alert[0]:.0f}s" if self.first_alert else "-"
        print(
            f"\nRESULT: health {transitions}; alerts in Alertmanager: {names or 'none'}; "
            f"first alert {after} after the drift began",
            flush=True,
        )

    def keep_instructions(self) -> None:
        cp, am, prom = self.stack.control_plane, self.stack.alertmanager, self.stack.prometheus
        self.n.banner("The demo keeps running (DEMO_KEEP=1); traffic stays drifted")
        print(
            f"""  export KUBECONFIG={cp.kubeconfig} PATH={TOOLS_BIN}:$PATH
  kubectl get mm -A -o wide
  kubectl describe mm fraud -n fraud
  kubectl get deploy,svc,servicemonitor,prometheusrule -n fraud
  Prometheus:   {prom.url}/alerts
  Alertmanager: {am.url}/#/alerts
  back to healthy traffic:  echo healthy > {rel(self.traffic.dir / "mode")}
  stop everything:          make demo-down""",
            flush=True,
        )


class KServeDemo(Demo):
    """The KServe path (:mod:`demo.kserve`): its own steps, the same watching and narration."""

    namespace, name = kserve.NAMESPACE, kserve.NAME

    def run(self) -> bool:
        return kserve.run(self)

    def keep_instructions(self) -> None:
        kserve.keep_instructions(self)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("command", nargs="?", choices=["run", "down"], default="run")
    parser.add_argument("--ci", action="store_true", help="shorter phases, for tests")
    parser.add_argument("--kserve", action="store_true",
                        help="the KServe path: the model behind KServe's agent, its logger feeding the worker")  # fmt: skip
    parser.add_argument("--keep", action="store_true", default=os.environ.get("DEMO_KEEP") == "1",
                        help="leave everything running at the end (DEMO_KEEP=1)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    if args.command == "down":
        return state.down(args.workdir)

    if state.left_running(args.workdir):
        print(
            f"a demo is already running (see {args.workdir / 'state.json'}): `make demo-down` first"
        )
        return 1
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    state.interrupt_on_signals()

    n = Narrator(STEPS)
    path = " (KServe path)" if args.kserve else ""
    n.banner("Model Monitor: the local demo" + path + (" (CI mode)" if args.ci else ""))
    running = Running(args.workdir)
    demo = (KServeDemo if args.kserve else Demo)(args, n, running)
    ok = False
    try:
        ok = demo.run()
    except KeyboardInterrupt as e:
        n.error(f"interrupted ({e or 'Ctrl-C'}): cleaning up")
    except Exception as e:
        n.error(f"{type(e).__name__}: {e}")
        if isinstance(e, subprocess.CalledProcessError) and e.stderr:
            n.say(str(e.stderr)[-2000:])
        n.say(f"logs are under {rel(args.workdir)}/ (kept)")
    finally:
        if ok and args.keep:
            demo.keep_instructions()
        else:
            for sig in state.STOP_SIGNALS:  # let the cleanup finish
                signal.signal(sig, signal.SIG_IGN)
            with n.step(STEPS, "Clean up: stop everything the demo started"):
                running.stop_all(log=n.say)
    n.banner(f"{'done' if ok else 'FAILED'} in {n.clock()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
