"""Texts the worker embeds itself (``embed: true``), through the service: the packaged model
loaded offline on the device the config asks for (cuda falling back to cpu, and saying so,
where torch sees no GPU), the embeddings' drift under ``drift.features["<feature>"]`` beside
the descriptors', and the device in /v1/status and ``modelmonitor_embedder_info``.

Needs the [text] extra: run by ``make test-text`` in .venv-text."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from mm_api.worker_config import parse_config
from monitor_worker.embedder import NumpyEmbedder
from monitor_worker.exporter import WindowCollector
from monitor_worker.profile import build_profile
from monitor_worker.reference import ReferenceData
from monitor_worker.service import MonitorService
from monitor_worker.stats.embedding import embedding_drift
from tests.unit.worker.test_embedder import topic_texts

pytestmark = pytest.mark.text
NOW = 1_000_000.0
PARCELS = ["parcel", "delivery", "courier", "package", "shipment"]
SCREENS = ["screen", "display", "monitor", "panel", "touchscreen"]


def embedding_service(device: str = "cpu", **drift) -> MonitorService:
    config = parse_config(
        {
            "monitor": {"name": "m"},
            "model": {"name": "m", "task": "binary-classification"},
            "data": {"features": [{"name": "review", "type": "text", "embed": True}]},
            "window": {"minSamples": 50},
            "outliers": {"enabled": False},
            "drift": {"embedding": {"sampleSize": 300, **drift}},
            "embedder": {"device": device},
        }
    )
    reference = ReferenceData(pa.table({"review": topic_texts(1, 300, PARCELS)}), "seeded")
    return MonitorService(config, build_profile(config, reference), clock=lambda: NOW)


def post_texts(svc: MonitorService, texts: list[str]) -> None:
    svc.ingest_records(orjson.dumps({"records": [{"features": {"review": t}} for t in texts]}))


@pytest.fixture(scope="module")
def same_and_shifted() -> tuple[MonitorService, MonitorService]:
    same, shifted = embedding_service(), embedding_service()
    post_texts(same, topic_texts(2, 200, PARCELS))
    post_texts(shifted, topic_texts(3, 200, SCREENS))
    return same, shifted


def test_embedded_texts_drift_under_the_features_name(same_and_shifted):
    same, shifted = same_and_shifted
    for svc, drifted in ((same, False), (shifted, True)):
        ev = svc.evaluate(svc.window_summary())
        review = ev.features["review"]
        assert review.method == "mmd" and review.exact  # auto: fewer than 1000 texts
        assert review.drifted is drifted
        assert "review.chars" in ev.features  # the descriptors too
        doc = svc.status_document()
        assert doc["drift"]["features"]["review"]["drifted"] is drifted


def test_the_worker_embeds_what_the_embedder_gives_for_the_same_texts(same_and_shifted):
    """The window's drift equals the stats function on vectors embedded here directly."""
    _, shifted = same_and_shifted
    ev = shifted.evaluate(shifted.window_summary())
    embedder = NumpyEmbedder()
    reference = embedder.embed(topic_texts(1, 300, PARCELS))
    current = embedder.embed(topic_texts(3, 200, SCREENS))
    direct = embedding_drift(reference, current, method="mmd")
    assert ev.features["review"].statistic == pytest.approx(direct.statistic, rel=1e-4)
    assert ev.features["review"].score == pytest.approx(direct.score, abs=0.02)


def test_each_sampled_text_is_embedded_once(same_and_shifted):
    _, shifted = same_and_shifted
    embeddings = shifted.profile.rich.embeddings
    before = embeddings.embedded
    shifted.evaluate(shifted.window_summary())
    shifted.evaluate(shifted.window_summary())
    assert embeddings.embedded == before  # the cache answered
    post_texts(shifted, ["a brand new sentence about a panel"])
    shifted.evaluate(shifted.window_summary())
    assert embeddings.embedded == before + 1


def test_status_and_metric_say_which_device_is_used(same_and_shifted):
    same, _ = same_and_shifted
    same.evaluate(same.window_summary())
    doc = same.status_document()["embedder"]
    # Each distinct text once: the reference's and the window's (the cache answers repeats).
    distinct = set(topic_texts(1, 300, PARCELS)) | set(topic_texts(2, 200, PARCELS))
    assert doc.pop("textsEmbedded") == len(distinct)
    assert doc.pop("seconds") > 0 and doc.pop("cpuSeconds") > 0
    assert doc == {"device": "cpu", "runtime": "numpy", "requestedDevice": "cpu",
                   "fallback": None, "model": "all-MiniLM-L6-v2"}  # fmt: skip
    registry = CollectorRegistry()
    registry.register(WindowCollector({"modelmonitor": "m", "model": "m"}, "x", lambda: same))
    info = [
        s for f in registry.collect() for s in f.samples if s.name == "modelmonitor_embedder_info"
    ]
    assert [(s.labels["device"], s.labels["runtime"], s.value) for s in info] == [
        ("cpu", "numpy", 1.0)
    ]


def test_a_gpu_request_without_a_gpu_runs_on_cpu_and_says_why():
    import torch

    svc = embedding_service(device="cuda")
    info = svc.status_document()["embedder"]
    assert info["requestedDevice"] == "cuda"
    if torch.cuda.is_available():
        assert (info["device"], info["runtime"], info["fallback"]) == (
            "cuda",
            "sentence-transformers",
            None,
        )
    else:
        assert (info["device"], info["runtime"]) == ("cpu", "numpy")
        assert "cuda requested" in info["fallback"]


def test_the_embedding_sample_is_bounded():
    svc = embedding_service()
    rng = np.random.default_rng(0)
    for seed in range(4):
        post_texts(svc, topic_texts(10 + seed, 250, PARCELS if rng.random() < 0.5 else SCREENS))
    sample = svc.window_summary().rich.texts["review"]
    assert len(sample.texts) == 300 and sample.n_seen == 1000 and not sample.exact
