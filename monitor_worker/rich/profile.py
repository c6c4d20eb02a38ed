"""The reference side of texts, embeddings and serving measures, built once at start-up, and
the one per-batch derivation the window needs: text descriptors.

Memory is bounded whatever the reference's size: a vocabulary of at most 50,000 words per
text feature, the descriptor values of the reference (one float per text and descriptor, as
numerical features keep theirs), and at most ``drift.embedding.sampleSize`` reference vectors
per embedding (float32)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mm_api.worker_config import WorkerConfig

from ..ingest import Batch
from ..reference_files import ReferenceDataError
from ..schema import DataSchema, Feature
from ..stats import NumericBinning, NumericHistogram, reference_histogram
from ..stats.embedding import MMD_MAX_ROWS, MMDReference
from ..stats.text import SAMPLE_MAX_CHARS, Vocabulary, describe, reference_descriptors

if TYPE_CHECKING:
    from ..reference import ReferenceData

log = logging.getLogger(__name__)
#: The packaged model's name, for /v1/status.
MODEL_NAME = "all-MiniLM-L6-v2"


@dataclass
class TextFeature:
    """One text feature's reference side: its vocabulary and its descriptor series names."""

    feature: Feature
    vocabulary: Vocabulary
    series: tuple[str, ...]  # "<feature>.<descriptor>", in stats.text.DESCRIPTORS order


class VectorReference:
    """The reference vectors of one embedding drift test (an embedding feature, or the
    embeddings of an ``embed: true`` text feature): a seeded uniform sample of at most
    ``sampleSize`` rows, float32. The MMD test's kernel block is prepared on first use."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = np.ascontiguousarray(rows, dtype=np.float32)
        self._mmd: MMDReference | None = None

    @property
    def dimension(self) -> int:
        return int(self.rows.shape[1])

    def mmd(self) -> MMDReference:
        if self._mmd is None:
            self._mmd = MMDReference(self.rows.astype(np.float64), max_rows=MMD_MAX_ROWS)
        return self._mmd


#: Niceness of the thread that runs the model: on a busy core, ingestion comes first and the
#: embedding of the window's sample takes what CPU is left (docs/text-and-embeddings.md).
EMBED_NICE = 10


def _lower_priority() -> None:
    # Raising a thread's own niceness needs no privilege (lowering it again would).
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), EMBED_NICE)


class TextEmbeddings:
    """The embedder of ``embed: true`` features with a bounded cache of vectors by text.

    The window's text sample changes little between two evaluations (only the current bucket
    takes new texts), so each sampled text is embedded about once. The cache holds at most
    ``capacity`` vectors (the window's buckets x sampleSize, i.e. as much as every bucket's
    sample): least recently used ones go first. The model runs on a thread of its own at
    niceness :data:`EMBED_NICE`, so that a worker given one core keeps ingesting at full speed
    while it embeds (measured: bench/text_worker.py)."""

    def __init__(self, embedder: Any, capacity: int) -> None:
        self.embedder = embedder
        self._thread = ThreadPoolExecutor(1, "embed", initializer=_lower_priority)
        self.capacity = int(capacity)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.embedded = 0  # texts run through the model so far (cache misses)
        self.seconds = 0.0  # time the model took for them (wall)
        self.cpu_seconds = 0.0  # CPU time of the thread that ran it (BLAS threads aside)

    @property
    def dimension(self) -> int:
        return int(self.embedder.dimension)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32 vectors, from the cache where it has them."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            start = time.perf_counter()
            vectors, cpu = self._thread.submit(self._timed_embed, missing).result()
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += cpu
            self.embedded += len(missing)
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[text] = vector
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._cache[text]
            self._cache.move_to_end(text)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return out

    def _timed_embed(self, texts: list[str]) -> tuple[np.ndarray, float]:
        cpu = time.thread_time()
        vectors = self.embedder.embed(texts)
        return vectors, time.thread_time() - cpu

    def info(self) -> dict[str, Any]:
        e = self.embedder
        return {
            "device": e.device,
            "runtime": e.runtime,
            "requested_device": e.requested_device,
            "fallback": e.fallback,
            "model": MODEL_NAME,
            "texts_embedded": self.embedded,
            "seconds": round(self.seconds, 6),
            "cpu_seconds": round(self.cpu_seconds, 6),
        }


@dataclass
class RichProfile:
    """Everything texts, embeddings and measures need from the reference and the config."""

    texts: dict[str, TextFeature] = field(default_factory=dict)
    #: Reference vectors by drift key: embedding features and embedded text features.
    vectors: dict[str, VectorReference] = field(default_factory=dict)
    embedded: tuple[str, ...] = ()  # text features with embed: true
    binnings: dict[str, NumericBinning] = field(default_factory=dict)  # by descriptor series
    ref_descriptors: dict[str, NumericHistogram] = field(default_factory=dict)
    ref_samples: dict[str, np.ndarray] = field(default_factory=dict)
    measures: tuple[str, ...] = ()
    sample_size: int = 1000
    embeddings: TextEmbeddings | None = None
    max_chars: dict[str, int] = field(default_factory=dict)  # text features' truncation

    @property
    def series(self) -> tuple[str, ...]:
        """Every descriptor series, in the column order of the buckets' descriptor sample."""
        return tuple(s for t in self.texts.values() for s in t.series)

    @property
    def has_reference(self) -> bool:
        return bool(self.texts or self.vectors)

    def describe(self, batch: Batch, truncated: dict[str, int]) -> None:
        """Descriptor columns of the batch's texts (``batch.descriptors``), computed once per
        batch; texts cut at their feature's ``maxChars`` are counted into ``truncated``."""
        if batch.descriptors is not None:
            return
        columns: dict[str, np.ndarray] = {}
        for name, max_chars in self.max_chars.items():
            texts = batch.texts.get(name)
            if texts is None:
                continue
            text = self.texts.get(name)
            if text is None:  # no reference to compare with: only count what is cut
                cut = sum(1 for t in texts.tolist() if t is not None and len(t) > max_chars)
            else:
                described = describe(texts.tolist(), text.vocabulary, max_chars)
                columns.update(described.series(name))
                cut = described.n_truncated
            if cut:
                truncated[name] = truncated.get(name, 0) + cut
        batch.descriptors = columns


def build_rich_profile(
    config: WorkerConfig,
    schema: DataSchema,
    reference: ReferenceData | None,
    digest: Any,  # hashlib object: the profile's fingerprint
) -> RichProfile | None:
    """The reference side of texts, embeddings and measures; None when the schema has none."""
    if not schema.rich:
        return None
    spec = config.drift.embedding
    profile = RichProfile(
        measures=schema.measures,
        sample_size=spec.sample_size,
        max_chars={f.name: f.max_chars for f in schema.texts},
        embedded=tuple(f.name for f in schema.texts if f.embed),
    )
    if reference is None:
        return profile
    rng = np.random.default_rng(0)
    for f in schema.texts:
        texts = reference.texts(f.name)
        digest.update(hashlib.sha256("\x00".join(t or "" for t in texts).encode()).digest())
        vocabulary, described = reference_descriptors(texts, max_chars=f.max_chars)
        series = []
        for key, values in described.series(f.name).items():
            if not np.isfinite(values).any():
                raise ReferenceDataError(
                    f"{reference.source}: column {f.name!r} holds no texts to describe"
                )
            binning, hist, finite = reference_histogram(values)
            profile.binnings[key], profile.ref_descriptors[key] = binning, hist
            profile.ref_samples[key] = finite
            series.append(key)
        profile.texts[f.name] = TextFeature(f, vocabulary, tuple(series))
    for f in schema.embeddings:
        assert f.dimension is not None
        vectors = reference.vectors(f.name, f.dimension)
        digest.update(vectors.tobytes())
        profile.vectors[f.name] = VectorReference(_sample(vectors, spec.sample_size, rng))
    if profile.embedded:
        profile.embeddings = load_text_embeddings(config, spec.sample_size)
        for name in profile.embedded:
            present = [t for t in reference.texts(name) if t is not None and t]
            if len(present) < 2:
                raise ReferenceDataError(
                    f"{reference.source}: column {name!r} needs at least 2 texts to embed"
                )
            take = _sample_indices(len(present), spec.sample_size, rng)
            sampled = [present[i][: profile.max_chars[name]][:SAMPLE_MAX_CHARS] for i in take]
            profile.vectors[name] = VectorReference(profile.embeddings.embed(sampled))
        log.info(
            "embedded %d reference texts on %s (%s)",
            profile.embeddings.embedded,
            profile.embeddings.embedder.device,
            profile.embeddings.embedder.runtime,
        )
    return profile


def load_text_embeddings(config: WorkerConfig, sample_size: int) -> TextEmbeddings:
    """The packaged sentence model on the configured device (``auto``: CUDA when torch sees
    one). Imported only here: a worker without ``embed: true`` never loads it."""
    from ..embedder import EmbedderUnavailable, cuda_available, load_embedder

    spec = config.embedder
    device = spec.device
    if device == "auto":
        device = "cuda" if cuda_available()[0] else "cpu"
    try:
        embedder = load_embedder(device, runtime=spec.runtime, batch_size=spec.batch_size)
    except EmbedderUnavailable as e:
        # The worker image without the [text] extra: a config problem, reported on /readyz.
        raise ValueError(f"data.features[].embed: {e}") from None
    if embedder.fallback:
        log.warning("embedder: %s", embedder.fallback)
    return TextEmbeddings(embedder, capacity=config.window.buckets * sample_size)


def _sample_indices(n: int, k: int, rng: np.random.Generator) -> list[int]:
    if n <= k:
        return list(range(n))
    return np.sort(rng.choice(n, k, replace=False)).tolist()


def _sample(rows: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return rows[_sample_indices(rows.shape[0], k, rng)]
