"""The embedder: the numpy runtime against sentence-transformers, offline loading, no torch
unless asked, and the device reported.

Needs the [text] extra: marked ``text``, run by ``make test-text`` in .venv-text (created by
scripts/setup-text.sh), where a missing part fails; in a venv without the extra these tests are
deselected (tests/conftest.py). Tolerance: 1e-5 per component between the numpy runtime and
sentence-transformers on CPU (both float32; measured 2e-7).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from monitor_worker.embedder import (
    NumpyEmbedder,
    SentenceTransformersEmbedder,
    load_embedder,
    model_path,
)
from tests.unit.stats.peer_cases import texts

pytestmark = pytest.mark.text
ROOT = Path(__file__).resolve().parents[3]
TEXTS = [
    *texts(3, 60),
    "",
    "a",
    "The delivery was late again.",
    "Die Lieferung kam wieder zu spät.",
    "配達がまた遅れた 😀",
    "word " * 400,  # beyond the 256-token limit: truncated by both runtimes
]


@pytest.fixture(scope="module")
def numpy_embedder() -> NumpyEmbedder:
    return NumpyEmbedder(batch_size=16)


def test_numpy_runtime_equals_sentence_transformers(numpy_embedder: NumpyEmbedder) -> None:
    ours = numpy_embedder.embed(TEXTS)
    theirs = SentenceTransformersEmbedder(device="cpu").embed(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_order_and_batching_do_not_change_vectors(numpy_embedder: NumpyEmbedder) -> None:
    whole = numpy_embedder.embed(TEXTS)
    one_by_one = np.concatenate([numpy_embedder.embed([t]) for t in TEXTS[:8]])
    np.testing.assert_allclose(one_by_one, whole[:8], atol=1e-5)
    assert numpy_embedder.embed([]).shape == (0, 384)


def test_embeddings_carry_meaning(numpy_embedder: NumpyEmbedder) -> None:
    v = numpy_embedder.embed(
        ["The parcel arrived late.", "My delivery came after the promised date.", "I love jazz."]
    )
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


OFFLINE_PROBE = textwrap.dedent(
    """
    import json, socket, sys

    def refuse(*args, **kwargs):
        raise OSError("network access attempted: " + repr(args[:2]))

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from monitor_worker.embedder import load_embedder

    runtime = sys.argv[1]
    emb = load_embedder("cpu", runtime=runtime)
    v = emb.embed(["offline works", "no hub needed"])
    print(json.dumps({
        "shape": list(v.shape),
        "runtime": emb.runtime,
        "device": emb.device,
        "torch_imported": "torch" in sys.modules,
    }))
    """
)


@pytest.mark.parametrize("runtime", ["numpy", "sentence-transformers"])
def test_loads_offline_with_sockets_blocked_and_an_empty_hub_cache(
    runtime: str, tmp_path: Path
) -> None:
    hf_home = tmp_path / "hf-home"
    hf_home.mkdir()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("TRANSFORMERS_CACHE", None)
    out = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE, runtime],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["shape"] == [2, 384]
    assert report["runtime"] == runtime and report["device"] == "cpu"
    # The numpy runtime never imports torch; sentence-transformers needs it.
    assert report["torch_imported"] is (runtime == "sentence-transformers")
    assert not any(hf_home.rglob("*")), "something was written to the hub cache"


def test_importing_the_module_loads_no_heavy_library() -> None:
    code = (
        "import sys, monitor_worker.embedder, monitor_worker.stats.text, "
        "monitor_worker.stats.embedding, monitor_worker.stats.quantiles; "
        "print([m for m in ('torch', 'tokenizers', 'sentence_transformers', 'transformers', "
        "'sklearn') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_gpu_request_reports_the_device_really_used() -> None:
    import torch

    emb = load_embedder("cuda")
    assert emb.requested_device == "cuda"
    if torch.cuda.is_available():
        assert (emb.device, emb.runtime, emb.fallback) == ("cuda", "sentence-transformers", None)
    else:
        assert (emb.device, emb.runtime) == ("cpu", "numpy")
        assert emb.fallback is not None and "cuda requested" in emb.fallback


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="device"):
        load_embedder("tpu")
    with pytest.raises(ValueError, match="runtime"):
        load_embedder("cpu", runtime="onnx")
    with pytest.raises(ValueError, match="CPU only"):
        load_embedder("cuda", runtime="numpy")
    assert (model_path() / "model.safetensors").is_file()


def topic_texts(seed: int, n: int, nouns: list[str]) -> list[str]:
    """Short reviews from one template, so only the topic differs between two calls."""
    import random

    rng = random.Random(seed)
    adjectives = ["late", "broken", "great", "slow", "fine", "cheap", "noisy", "perfect"]
    verbs = ["arrived", "looked", "worked", "felt", "seemed"]
    return [
        f"The {rng.choice(nouns)} {rng.choice(verbs)} {rng.choice(adjectives)} "
        f"and the {rng.choice(nouns)} was {rng.choice(adjectives)}."
        for _ in range(n)
    ]


def test_embedding_drift_flags_a_topic_shift_in_texts_of_the_same_shape(
    numpy_embedder: NumpyEmbedder,
) -> None:
    """Same template, another topic: word and sentence counts cannot tell (only the OOV share
    can, through the new nouns), the MMD of the sentence vectors flags it, and two samples of
    the same topic do not drift."""
    from monitor_worker.stats.embedding import MMDReference, mmd_drift
    from monitor_worker.stats.text import describe, reference_descriptors

    parcels = ["parcel", "delivery", "courier", "package", "shipment"]
    screens = ["screen", "display", "monitor", "panel", "touchscreen"]
    ref_texts = topic_texts(1, 300, parcels)
    ref = MMDReference(numpy_embedder.embed(ref_texts))
    same = mmd_drift(ref, numpy_embedder.embed(topic_texts(2, 200, parcels)))
    shifted = mmd_drift(ref, numpy_embedder.embed(topic_texts(3, 200, screens)))
    assert not same.drifted and shifted.drifted
    vocab, ref_desc = reference_descriptors(ref_texts)
    cur_desc = describe(topic_texts(3, 200, screens), vocab)
    # Word and sentence counts are identical by construction; only the OOV share moves.
    for name in ("words", "sentences"):
        assert np.nanmean(ref_desc.columns[name]) == np.nanmean(cur_desc.columns[name])
