"""Texts, embeddings and serving measures in the worker: what a feature of type ``text`` or
``embedding`` and a record's ``measures`` become between ingestion and the exported figures.

- :mod:`.profile` - the reference side, built once at start: each text feature's vocabulary
  and descriptor sketches, the reference's vectors (sampled; embedded by the packaged model for
  ``embed: true``), and the embedder with its cache. It also turns a batch's texts into
  descriptor columns (``review.chars``...), once per batch, on the ingest thread.
- :mod:`.bucket` - the window side: per time bucket, descriptor histograms and a sample of
  their rows, a bounded sample of vectors (float32) or of texts to embed, and a DDSketch per
  serving measure; mergeable across buckets and replicas, serialisable for snapshots.
- :mod:`.evaluate` - one merged bucket -> descriptor drift (like any numerical feature),
  embedding drift (MMD or domain classifier), serving-measure quantiles. Texts are embedded
  here, on the evaluator thread, never on the ingest path.

The statistics live in :mod:`monitor_worker.stats` (text, embedding, quantiles); parsing in
:mod:`monitor_worker.ingest.rich_values`. Design and figures: docs/text-and-embeddings.md.
"""

from .bucket import RichBucket
from .profile import RichProfile, build_rich_profile

__all__ = ["RichBucket", "RichProfile", "build_rich_profile"]
