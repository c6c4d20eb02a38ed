"""``python -m demo --kserve`` (``make demo KSERVE=1``): the journey with KServe as the feed.

The same control plane, Prometheus, Alertmanager, chart and operator as the first path; then
KServe's InferenceService CRD (from KServe's Go module), ``examples/kserve-inferenceservice.yaml``
applied as written (an InferenceService whose logger posts over https, and its ModelMonitor
with ``worker.tls`` and ``worker.auth.kserveLogger``), the worker run from the operator's pod
spec, and KServe's own agent in front of MLServer with the logger flags KServe's webhook
would give it. Traffic goes through the agent; the worker hears of it only from the logger's
CloudEvents, over https, trusting the CA bundle the operator wrote; labels follow by
``<Ce-Id>/<i>``. No KServe controller runs here, so the demo sets the InferenceService's Ready
condition as KServe's would, and runs the agent itself (in a private mount namespace: the
agent reads its CA from the fixed path /etc/tls/logger)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from devcluster.controlplane import REPO, wait_for_default_service_account
from devcluster.kserve import (
    KServeAgent,
    LoggerSettings,
    LoggerTls,
    can_run_logger_tls,
    inferenceservice_crd,
    install_inferenceservice_crd,
)
from devcluster.podrunner import PodRunner
from devcluster.tools import TOOLS_BIN, Cluster

from . import install, monitor, server, stack, state, venv, watch
from .data import transactions
from .oip import infer
from .traffic import TrafficProcess

if TYPE_CHECKING:
    from .__main__ import Demo

NAMESPACE, NAME = "models", "fraud-detector"
EXAMPLE = "examples/kserve-inferenceservice.yaml"
WORKER = f"mm-{NAME}"
LOGGER_CA = "model-monitor-logger-ca"  # the chart's operator.loggerCABundle.name
LOGGER_CA_FILE = "service-ca.crt"


def rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def get(kube: Cluster, kind: str, name: str) -> dict:
    return json.loads(kube.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json"))


def run(demo: Demo) -> bool:
    n = demo.n
    why_not = can_run_logger_tls()
    if why_not:
        n.error(f"the KServe path runs KServe's agent with its CA at /etc/tls/logger: {why_not}")
        return False
    if not venv.ready():
        n.say("the model server's environment .venv-demo is missing: creating it")
    python = venv.ensure(log=n.say)
    n.say(f"model server environment: {rel(venv.VENV)} (MLServer 1.7.1, demo/requirements.txt)")

    with n.step(1, "Start a local Kubernetes control plane, Prometheus and Alertmanager",
                "etcd, kube-apiserver, controller-manager, scheduler, and kwok simulating\n"
                "three nodes (pods get scheduled and Ready; images do not run here)."):  # fmt: skip
        demo.stack = stack.start(demo.work, demo.running)
        demo.kube = kube = Cluster(demo.stack.control_plane.kubeconfig)
        cp, am, prom = demo.stack.control_plane, demo.stack.alertmanager, demo.stack.prometheus
        demo.running.note(kubeconfig=str(cp.kubeconfig), prometheus=prom.url, alertmanager=am.url)  # fmt: skip
        n.say(f"Kubernetes API: {cp.server}   kubeconfig: {rel(cp.kubeconfig)}")
        n.say(f"Prometheus:     {prom.url}")
        n.say(f"Alertmanager:   {am.url}")

    with n.step(2, "KServe's InferenceService CRD; install Model Monitor with Helm and run its operator",
                "KServe first, as in a cluster that serves models with it: its CRD from KServe's Go\n"
                "module (the agent below is built from the same). Then, as in the first path, the\n"
                "chart, and the operator as a local process from the Deployment's command and env,\n"
                "under the chart-created ServiceAccount; it watches InferenceServices."):  # fmt: skip
        install_inferenceservice_crd(kube.kubeconfig)
        n.cmd(f"kubectl apply --server-side -f {rel(inferenceservice_crd())}",
              "customresourcedefinition.apiextensions.k8s.io/inferenceservices.serving.kserve.io serverside-applied")  # fmt: skip
        shown, out = install.helm_install(kube, install.helm_values(prom.url, am.url))
        n.cmd(" ".join(shown), "\n".join(out.splitlines()[:5]))
        op, account = install.operator_process(kube, demo.work / "operator")
        try:
            op.start()
        finally:
            demo.running.add("operator", op.stop, [op.process] if op.process else [])
        n.say(f"operator running as system:serviceaccount:{install.NAMESPACE}:{account}")

    with n.step(3, "Train the fraud model and serve it with MLServer",
                "The first path's scikit-learn Pipeline, served over the Open Inference Protocol."):  # fmt: skip
        model_dir = demo.work / "model"
        subprocess.run([str(python), "-m", "demo.model", "--out", str(model_dir)],
                       cwd=REPO, check=True, capture_output=True, text=True)  # fmt: skip
        mls = server.ModelServer(model_dir / "model.joblib", demo.work / "mlserver")
        try:
            mls.start()
        finally:
            demo.running.add("MLServer", mls.stop, [mls.process] if mls.process else [])
        n.say(f"MLServer ready at {mls.url}")

    with n.step(4, "KServe's InferenceService and its ModelMonitor, as the example writes them",
                f"{EXAMPLE}: the logger posts over https to the worker's Service; the\n"
                "monitor has worker.tls (the operator issues the certificate) and\n"
                "worker.auth.kserveLogger (no token for the logger; allowed only with the\n"
                "NetworkPolicy, which admits the predictor's pods, Prometheus and the operator)."):  # fmt: skip
        n.cmd(
            f"kubectl create namespace {NAMESPACE}", kube.kubectl("create", "namespace", NAMESPACE)
        )
        wait_for_default_service_account(kube.kubeconfig, NAMESPACE, timeout=30)
        reference = model_dir / "reference.csv"
        out = kube.kubectl("create", "configmap", "fraud-reference", "-n", NAMESPACE,
                           f"--from-file=reference.csv={reference}")  # fmt: skip
        n.cmd(f"kubectl create configmap fraud-reference -n {NAMESPACE} --from-file=reference.csv={rel(reference)}", out)  # fmt: skip
        n.cmd(f"kubectl apply -f {EXAMPLE}", kube.kubectl("apply", "-f", str(REPO / EXAMPLE)))
        patch = json.dumps(monitor.DEMO_TIMINGS, separators=(",", ":"))
        out = kube.kubectl("patch", "mm", NAME, "-n", NAMESPACE, "--type=merge", "-p", patch)
        n.cmd(f"kubectl patch mm {NAME} -n {NAMESPACE} --type=merge -p '{patch}'", out)
        ready = {"status": {"conditions": [{"type": "Ready", "status": "True",
                                            "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}}  # fmt: skip
        kube.kubectl("patch", "inferenceservice", NAME, "-n", NAMESPACE, "--subresource=status",
                     "--type=merge", "-p", json.dumps(ready))  # fmt: skip
        n.say("no KServe controller runs here: the demo set the InferenceService's Ready condition\n"
              "as KServe's would (the operator watches InferenceServices and hears of it at once)")  # fmt: skip
        monitor.wait_configured(kube, namespace=NAMESPACE, name=NAME)
        n.cmd(f"kubectl get inferenceservice,mm -n {NAMESPACE}",
              kube.kubectl("get", "inferenceservice,mm", "-n", NAMESPACE))  # fmt: skip
        n.cmd(f"kubectl get deploy,svc,networkpolicy,secret,configmap -n {NAMESPACE}",
              kube.kubectl("get", "deploy,svc,networkpolicy,secret,configmap", "-n", NAMESPACE))  # fmt: skip
        n.say(f"{WORKER}-tls: the worker's certificate (the operator wrote it and cannot read it);\n"
              f"{WORKER}-ca: its CA and when it is renewed; {LOGGER_CA}: the CAs KServe's logger\n"
              "trusts (KServe's inferenceservice-config names it as logger.caBundle)")  # fmt: skip

    with n.step(5, "Start the worker, point Prometheus at it, and put KServe's agent before MLServer",
                "The worker runs from the operator's pod spec, serving https with the operator's\n"
                "certificate; Prometheus scrapes it as the ServiceMonitor says (https, the CA, the\n"
                "Service's name). KServe's agent, unmodified, gets the flags KServe's webhook\n"
                "derives from the InferenceService's logger, its CA bundle at /etc/tls/logger and\n"
                "the Service's name resolving to the worker (a private mount namespace)."):  # fmt: skip
        with state.signals_deferred():
            worker = PodRunner(kube.kubeconfig, NAMESPACE, WORKER, demo.work / "worker").start()
            demo.running.add("worker", worker.stop, [worker.process])
        demo.running.note(worker=worker.url)
        n.say(f"worker {WORKER} at {worker.url} (log {rel(worker.process.log_path)})")  # type: ignore[union-attr]
        rules = monitor.wire_prometheus(kube, prom, worker, namespace=NAMESPACE, service=WORKER,
                                        workdir=demo.work)  # fmt: skip
        n.say(f"Prometheus scrapes it over https and evaluates {len(rules)} alert rules")
        agent = _start_agent(demo, kube, mls.port, worker.port)
        code_ok = _show_one_inference(demo, agent)
        if not code_ok:
            n.error("the worker did not take the logger's events: see " + rel(agent.workdir / "agent.log"))  # fmt: skip
            return False

    ca = get(kube, "configmap", f"{WORKER}-ca")["data"]["ca.crt"]
    demo.traffic = TrafficProcess(demo.work / "traffic", agent.url, worker.url, worker.token,
                                  via_kserve=True, ca=ca)  # fmt: skip
    with n.step(6, "Healthy traffic, through KServe",
                "Transactions like the training data -> KServe's agent -> MLServer; the agent's\n"
                "logger posts each request and response to the worker, which joins them by\n"
                "Ce-Id; labels follow 2s later for <Ce-Id>/<i> (POST /v1/labels, with the token)."):  # fmt: skip
        demo.traffic.start()
        demo.running.add("traffic generator", demo.traffic.stop, [demo.traffic.process])
        healthy = demo.watch(lambda: demo.healths[-1:] == ["Healthy"],
                             min_seconds=20 if demo.ci else 60, max_seconds=150)  # fmt: skip
        if not healthy:
            n.error("the monitor did not become Healthy: " + demo._health_message())
            return False

    with n.step(7, "The world changes: drifted traffic",
                "The first path's new market, through KServe: features drift and accuracy falls;\n"
                "Prometheus fires, Alertmanager gets it."):  # fmt: skip
        demo.traffic.set_mode("drifted")
        demo.t_drift = time.monotonic()
        n.say(f"switched the traffic to drifted at {n.clock()}")
        done = demo.watch(lambda: demo.healths[-1:] == ["Critical"] and demo._has_alert("critical"),
                          min_seconds=0, max_seconds=180, print_now=False)  # fmt: skip
        ok = demo.first_alert is not None and demo.healths[-1:] in (["Critical"], ["Warning"])
        if not done and not ok:
            n.error("no alert reached Alertmanager in time: " + demo._health_message())
            return False
        n.cmd(f"kubectl describe mm {NAME} -n {NAMESPACE}   (conditions and events)",
              watch.describe_excerpt(kube, NAMESPACE, NAME))  # fmt: skip
        statuses = agent.sent_statuses()
        n.say(f"KServe's logger posted {len(statuses)} events; the worker answered "
              f"{statuses.count(200)} of them with 200")  # fmt: skip
    demo._result()
    return True


def _start_agent(demo: Demo, kube: Cluster, model_port: int, worker_port: int) -> KServeAgent:
    """KServe's agent with what its webhook would give it for this InferenceService: the
    logger URL and mode from ``spec.predictor.logger``, the CA bundle ConfigMap mounted at
    /etc/tls/logger. Only the port differs: 8080 in a cluster, the worker's local port here."""
    n = demo.n
    logger = get(kube, "inferenceservice", NAME)["spec"]["predictor"]["logger"]
    url = urllib.parse.urlsplit(logger["url"])
    assert url.hostname is not None
    local = url._replace(netloc=f"{url.hostname}:{worker_port}").geturl()
    ca_dir = demo.work / "logger-ca"  # the ConfigMap volume
    ca_dir.mkdir(parents=True, exist_ok=True)
    (ca_dir / LOGGER_CA_FILE).write_text(get(kube, "configmap", LOGGER_CA)["data"][LOGGER_CA_FILE])
    settings = LoggerSettings(url=local, inference_service=NAME, namespace=NAMESPACE,
                              mode=logger.get("mode", "all"))  # fmt: skip
    tls = LoggerTls(ca_dir=ca_dir, hosts={url.hostname: "127.0.0.1"})
    agent = KServeAgent(demo.work / "agent", model_port, settings, tls=tls)
    try:
        agent.start()
    finally:
        demo.running.add("KServe agent", agent.stop, [agent.process] if agent.process else [])
    n.say(f"the InferenceService's logger: {logger['url']}  (here port {worker_port})")
    n.cmd(
        "agent " + " ".join(settings.args()) + f" --logger-ca-cert-file {LOGGER_CA_FILE}",
        f"KServe agent ready at {agent.url}, CA bundle {LOGGER_CA} at /etc/tls/logger/{LOGGER_CA_FILE},\n"
        f"{url.hostname} -> 127.0.0.1 (log {rel(agent.workdir / 'agent.log')})",
    )  # fmt: skip
    return agent


def _show_one_inference(demo: Demo, agent: KServeAgent) -> bool:
    sample = transactions(3, seed=3)
    predicted, fraud = infer(agent.url, sample, headers={"Ce-Id": "hello"})
    statuses = agent.wait_sent(2)
    demo.n.say(
        f"by hand through the agent (Ce-Id: hello): predict {predicted}, fraud probability "
        f"{[round(p, 3) for p in fraud]};\n  the logger posted the request and the response: "
        f"the worker answered {statuses} (rows hello/0..2, waiting for labels)"
    )
    return statuses == [200, 200]


def keep_instructions(demo: Demo) -> None:
    cp, am, prom = demo.stack.control_plane, demo.stack.alertmanager, demo.stack.prometheus
    demo.n.banner("The demo keeps running (DEMO_KEEP=1); traffic stays drifted")
    print(
        f"""  export KUBECONFIG={cp.kubeconfig} PATH={TOOLS_BIN}:$PATH
  kubectl get inferenceservice,mm -n {NAMESPACE} -o wide
  kubectl describe mm {NAME} -n {NAMESPACE}
  kubectl get configmap {LOGGER_CA} -n {NAMESPACE} -o yaml
  Prometheus:   {prom.url}/alerts
  Alertmanager: {am.url}/#/alerts
  back to healthy traffic:  echo healthy > {rel(demo.traffic.dir / "mode")}
  stop everything:          make demo-down""",
        flush=True,
    )
