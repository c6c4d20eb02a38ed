"""One merged window -> the drift of text descriptors and embeddings, and serving-measure
quantiles. Called by :func:`monitor_worker.evaluate.evaluate`; the results join the other
features' under ``drift.features`` (and count in the drift share like them).

- Each descriptor series (``review.chars``) is tested like a numerical feature: on raw values
  while the window's descriptor sample holds every row, on histograms beyond; a per-feature
  override (``drift.features``) applies by series name, else by the text feature's name.
- Each embedding (an ``embedding`` feature, or the vectors of an ``embed: true`` text feature,
  under the text feature's own name) is tested on the window's vector sample against the
  reference's by ``drift.embedding``: ``mmd`` or ``domain-classifier``, or ``auto``
  (:func:`monitor_worker.stats.embedding.choose_method`). Texts are embedded here, on the
  evaluator thread: at most ``sampleSize`` per evaluation, each text about once (cache).
- Serving measures report count and p50/p95/p99 once ``window.minSamples`` values arrived.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mm_api.worker_config import WorkerConfig

from ..evaluate import PUBLIC_METHOD, FeatureDrift
from ..stats import numeric_drift
from ..stats.embedding import DOMAIN_CLASSIFIER, MMD, choose_method, embedding_drift
from .bucket import RichBucket
from .profile import RichProfile

#: (enabled, stats method or None for auto, threshold or None for the default), by name.
Settings = Mapping[str, tuple[bool, str | None, float | None]]


def rich_drift(
    config: WorkerConfig,
    profile: RichProfile,
    bucket: RichBucket,
    settings: Settings,
    default: tuple[bool, str | None, float | None],
) -> dict[str, FeatureDrift]:
    """Drift of every descriptor series and embedding, by drift key."""
    out = descriptor_drift(profile, bucket, settings, default)
    out.update(embedding_drifts(config, profile, bucket, settings))
    return out


def descriptor_drift(
    profile: RichProfile,
    bucket: RichBucket,
    settings: Settings,
    default: tuple[bool, str | None, float | None],
) -> dict[str, FeatureDrift]:
    sample = bucket.descriptor_sample
    rows = sample.sample if sample is not None and sample.exact else None
    out: dict[str, FeatureDrift] = {}
    j = 0
    for name, text in profile.texts.items():
        feature_setting = settings.get(name, default)
        for series in text.series:
            column = j
            j += 1
            enabled, method, threshold = settings.get(series, feature_setting)
            cur = bucket.descriptors[series]
            if not enabled or cur.n == 0:  # n counts finite values only
                continue
            exact = rows is not None
            r = numeric_drift(
                profile.ref_descriptors[series],
                cur,
                method,
                threshold=threshold,
                reference_sample=profile.ref_samples[series] if exact else None,
                current_sample=rows[:, column] if rows is not None else None,
            )
            out[series] = FeatureDrift(
                method=PUBLIC_METHOD.get(r.method, r.method),
                score=float(r.score),
                statistic=float(r.statistic),
                threshold=float(r.threshold),
                drifted=bool(r.drifted),
                exact=bool(r.exact),
            )
    return out


def embedding_drifts(
    config: WorkerConfig, profile: RichProfile, bucket: RichBucket, settings: Settings
) -> dict[str, FeatureDrift]:
    spec = config.drift.embedding
    # Too few vectors tell nothing (and the classifier needs both classes in both halves).
    need = max(10, min(config.window.min_samples, spec.sample_size))
    out: dict[str, FeatureDrift] = {}
    for name, reference in profile.vectors.items():
        if not settings.get(name, (True, None, None))[0]:
            continue
        if name in bucket.vectors:
            reservoir = bucket.vectors[name]
            current, exact = reservoir.sample, reservoir.exact
        elif name in bucket.texts and profile.embeddings is not None:
            sample = bucket.texts[name]
            if len(sample.texts) < need:
                continue
            current, exact = profile.embeddings.embed(sample.texts), sample.exact
        else:
            continue
        if current.shape[0] < need:
            continue
        method: str = spec.method
        if method == "auto":
            method = choose_method(reference.rows.shape[0], current.shape[0])
        r = embedding_drift(
            reference.rows,
            current,
            method=method,
            threshold=spec.mmd_threshold if method == MMD else spec.classifier_threshold,
            mmd_reference=reference.mmd() if method == MMD else None,
            n_permutations=spec.permutations,
        )
        assert r.method in (MMD, DOMAIN_CLASSIFIER)
        out[name] = FeatureDrift(
            method=r.method,
            score=float(r.score),
            statistic=float(r.statistic),
            threshold=float(r.threshold),
            drifted=bool(r.drifted),
            exact=bool(exact),
        )
    return out


def measure_figures(config: WorkerConfig, bucket: RichBucket) -> dict[str, dict[str, float]]:
    """Per serving measure: ``count``, and p50/p95/p99 once it has window.minSamples values."""
    if bucket.measures is None:
        return {}
    out: dict[str, dict[str, float]] = {}
    for name, sketch in bucket.measures.sketches.items():
        figures: dict[str, float] = {"count": float(sketch.count)}
        if sketch.count >= config.window.min_samples:
            figures.update({k: float(v) for k, v in sketch.quantiles().items() if np.isfinite(v)})
        out[name] = figures
    return out
