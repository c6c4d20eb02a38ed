"""Every example and every ModelMonitor shown in the docs parses with the operator's parser
(and the worker example with the worker's); tests/cluster/test_examples_apply.py sends the
same documents, and every other Kubernetes object in examples/, to the real API server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mm_api.worker_config import load_config
from mm_operator.render import WORKER_PORT, Names, render_worker_config, service_names
from mm_operator.spec import parse_monitor

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "helm/model-monitor/README.md",
]


def monitor_documents() -> list[tuple[str, dict]]:
    """(where, document) for every ModelMonitor in examples/ and in ```yaml blocks of the docs."""
    found = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and doc.get("kind") == "ModelMonitor":
                found.append((f"{path.relative_to(REPO)}#{i}", doc))
    for path in DOC_FILES:
        if not path.exists():
            continue
        for j, block in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)):
            for doc in yaml.safe_load_all(block):
                if isinstance(doc, dict) and doc.get("kind") == "ModelMonitor":
                    found.append((f"{path.relative_to(REPO)}:block{j}", doc))
    return found


def example_objects() -> list[tuple[str, dict]]:
    """(where, object) for every Kubernetes object in examples/ that is not a ModelMonitor."""
    found = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and "kind" in doc and "apiVersion" in doc and doc["kind"] != "ModelMonitor":
                found.append((f"{path.relative_to(REPO)}#{i}", doc))
    return found


DOCS = monitor_documents()
OBJECTS = example_objects()
KSERVE_EXAMPLE = REPO / "examples" / "kserve-inferenceservice.yaml"


def test_examples_exist():
    names = {w.split("#")[0] for w, _ in DOCS}
    assert {
        "examples/fraud-monitor.yaml",
        "examples/churn-gpu-monitor.yaml",
        "examples/price-regression-monitor.yaml",
        "examples/kserve-inferenceservice.yaml",
        "examples/review-classifier-monitor.yaml",
        "examples/intent-embedding-monitor.yaml",
    } <= names
    kinds = {d["kind"] for _, d in OBJECTS}
    assert {"Deployment", "InferenceService"} <= kinds


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_monitor_parses(where, doc):
    monitor = parse_monitor({**doc, "metadata": {**doc["metadata"], "uid": "u", "generation": 1}})
    assert monitor.name == doc["metadata"]["name"]


def test_worker_example_parses():
    cfg = load_config(REPO / "examples" / "worker.yaml")
    assert cfg.data.reference is not None and cfg.data.reference.path == "examples/reference.csv"


def test_text_and_embedding_examples_render_workers_for_them():
    """The text classifier's worker embeds its reviews on the GPU it asks for, on the text
    image; the embedding model's watches 384-number vectors and three serving measures."""
    from mm_operator.render import embeds_texts, render_worker_config

    docs = dict(DOCS)
    review = parse_monitor({**(d := docs["examples/review-classifier-monitor.yaml#0"]),
                            "metadata": {**d["metadata"], "uid": "u", "generation": 1}})  # fmt: skip
    cfg = render_worker_config(review)
    assert embeds_texts(review) and cfg.embedder.device == "cuda"
    assert [(f.name, f.type, f.embed) for f in cfg.data.features or []] == [
        ("review", "text", True)
    ]
    intent = parse_monitor({**(d := docs["examples/intent-embedding-monitor.yaml#0"]),
                            "metadata": {**d["metadata"], "uid": "u", "generation": 1}})  # fmt: skip
    cfg = render_worker_config(intent)
    assert not embeds_texts(intent)
    assert [(f.type, f.dimension) for f in cfg.data.features or []] == [
        ("embedding", 384),
        ("categorical", None),
    ]
    assert [m.name for m in cfg.measures] == ["latency_ms", "prompt_tokens", "completion_tokens"]


def test_text_worker_example_starts_on_its_jsonl_reference(monkeypatch):
    from monitor_worker.profile import build_profile
    from monitor_worker.reference import reference_for

    monkeypatch.chdir(REPO)  # the example names its reference relative to the repository
    cfg = load_config(REPO / "examples" / "text-worker.yaml")
    profile = build_profile(cfg, reference_for(cfg))
    assert profile.rich is not None and set(profile.rich.vectors) == {"vec"}
    assert "review.oov_share" in profile.rich.series and profile.schema.measures == (
        "latency_ms",
        "tokens",
    )


def test_kserve_example_logs_to_the_worker_the_operator_makes():
    """The InferenceService's logger posts to the Service the operator creates for the
    ModelMonitor that targets it, over https by the name its certificate is for, and that
    worker takes events without a bearer token (KServe's logger sends none) while records and
    labels keep it. tests/cluster/test_examples_work.py runs the pair as written."""
    docs = {d["kind"]: d for d in yaml.safe_load_all(KSERVE_EXAMPLE.read_text())}
    isvc, mm = docs["InferenceService"], docs["ModelMonitor"]
    monitor = parse_monitor({**mm, "metadata": {**mm["metadata"], "uid": "u", "generation": 1}})
    target = monitor.spec.model.target_ref
    assert (target.kind, target.name) == ("InferenceService", isvc["metadata"]["name"])
    namespace = isvc["metadata"]["namespace"]
    assert monitor.namespace == namespace
    host = service_names(monitor)[0]
    assert host == f"{Names(monitor.name).worker}.{namespace}.svc"
    url = f"https://{host}:{WORKER_PORT}/v1/cloudevents"
    assert isvc["spec"]["predictor"]["logger"] == {"mode": "all", "url": url}
    config = render_worker_config(monitor)
    assert config.ingestion.auth_token_file and config.ingestion.kserve_logger_without_token
    assert config.tls is not None


def test_every_inference_service_monitor_takes_the_logger_without_401():
    """Found in review: examples/price-regression-monitor.yaml targets an InferenceService
    with the token on, so every event of its logger got 401."""
    for where, doc in DOCS:
        monitor = parse_monitor({**doc, "metadata": {**doc["metadata"], "uid": "u"}})
        if monitor.spec.model.target_ref.kind == "InferenceService":
            config = render_worker_config(monitor)
            open_to_logger = config.ingestion.auth_token_file is None or (
                config.ingestion.kserve_logger_without_token
            )
            assert open_to_logger, f"{where}: KServe's logger would get 401"
