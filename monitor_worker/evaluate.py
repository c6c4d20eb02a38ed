"""Evaluation: the window's summary -> quality, drift and outliers. A pure function of the
config, the reference profile and one merged bucket. (Which alerts fire is decided by the
shared alert table on the exported samples: :meth:`MonitorService.evaluate`.)

Figures below ``window.minSamples`` are absent rather than misleading: quality needs that many
labelled records, drift and outliers that many records."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mm_api.alerts import Firing
from mm_api.worker_config import WorkerConfig

from .profile import Profile
from .stats import (
    CategoricalCounts,
    ClassificationState,
    DriftResult,
    NumericHistogram,
    categorical_drift,
    drift_share,
    numeric_drift,
)
from .stats import quality as q
from .window import Bucket

# Config names (the public API) -> the stats module's names.
METHODS = {
    "ks": "ks",
    "chi-square": "chisquare",
    "z-test": "z",
    "wasserstein": "wasserstein",
    "jensen-shannon": "jensenshannon",
    "psi": "psi",
}
PUBLIC_METHOD = {v: k for k, v in METHODS.items()}


@dataclass(frozen=True)
class FeatureDrift:
    method: str
    score: float  # p-value for tests, distance otherwise
    statistic: float
    threshold: float
    drifted: bool
    exact: bool


@dataclass
class Evaluation:
    at: float
    duration: float = 0.0
    records: int = 0
    labelled: int = 0
    sufficient: bool = False
    quality: dict[str, float] = field(default_factory=dict)
    features: dict[str, FeatureDrift] = field(default_factory=dict)
    drift_share: float | None = None
    dataset_drift: bool | None = None
    prediction_drift: FeatureDrift | None = None
    score_drift: FeatureDrift | None = None
    outlier_ratio: float | None = None
    outliers_scored: int = 0
    #: Serving measures: count, p50, p95, p99 (monitor_worker/rich/evaluate.py).
    measures: dict[str, dict[str, float]] = field(default_factory=dict)
    violations: list[Firing] = field(default_factory=list)  # set by the service (alert table)


def _public(r: DriftResult) -> FeatureDrift:
    return FeatureDrift(
        method=PUBLIC_METHOD.get(r.method, r.method),
        score=float(r.score),
        statistic=float(r.statistic),
        threshold=float(r.threshold),
        drifted=bool(r.drifted),
        exact=bool(r.exact),
    )


def _quality(config: WorkerConfig, bucket: Bucket, profile: Profile) -> dict[str, float]:
    state = bucket.quality
    need = config.window.min_samples
    out: dict[str, Any] = {}
    if isinstance(state, ClassificationState):
        if state.n < need:
            return {}
        binary = profile.class_index is not None and profile.class_index.binary
        average = "binary" if binary else config.quality.average
        out["accuracy"] = q.accuracy(state)
        out["precision"] = q.precision(state, average=average)
        out["recall"] = q.recall(state, average=average)
        out["f1"] = q.f1(state, average=average)
        if state.n_proba >= need:
            out["roc-auc"] = q.roc_auc(state)
            out["log-loss"] = q.log_loss(state)
    else:
        if state.n < need:
            return {}
        out = {
            "mae": q.mae(state),
            "mse": q.mse(state),
            "rmse": q.rmse(state),
            "r2": q.r2(state),
            "mape": q.mape(state),
        }
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


def _feature_settings(config: WorkerConfig) -> dict[str, tuple[bool, str | None, float | None]]:
    base_method = None if config.drift.method == "auto" else METHODS[config.drift.method]
    settings: dict[str, tuple[bool, str | None, float | None]] = {}
    for o in config.drift.features:
        method = (
            base_method if o.method is None else (None if o.method == "auto" else METHODS[o.method])
        )
        settings[o.name] = (
            o.enabled,
            method,
            o.threshold if o.threshold is not None else config.drift.threshold,
        )
    return settings


def _numeric(
    ref: NumericHistogram,
    cur: NumericHistogram,
    method: str | None,
    threshold: float | None,
    ref_sample: np.ndarray | None,
    cur_sample: np.ndarray | None,
) -> FeatureDrift:
    exact = ref_sample is not None and cur_sample is not None
    return _public(
        numeric_drift(
            ref,
            cur,
            method,
            threshold=threshold,
            reference_sample=ref_sample if exact else None,
            current_sample=cur_sample if exact else None,
        )
    )


def _drift(config: WorkerConfig, profile: Profile, bucket: Bucket, ev: Evaluation) -> None:
    if (
        not config.drift.enabled
        or not profile.has_reference
        or bucket.n < config.window.min_samples
    ):
        return
    overrides = _feature_settings(config)
    default_method = None if config.drift.method == "auto" else METHODS[config.drift.method]
    sample = bucket.reservoir.sample if bucket.reservoir.exact else None
    schema = profile.schema
    results: dict[str, FeatureDrift] = {}
    for j, f in enumerate(schema.numerical):
        enabled, method, threshold = overrides.get(
            f, (True, default_method, config.drift.threshold)
        )
        cur = bucket.numeric[f]
        if not enabled or cur.n - cur.n_missing == 0:
            continue
        cur_sample = sample[:, j] if sample is not None else None
        results[f] = _numeric(
            profile.ref_numeric[f], cur, method, threshold, profile.ref_samples.get(f), cur_sample
        )
    for f in schema.categorical:
        enabled, method, threshold = overrides.get(
            f, (True, default_method, config.drift.threshold)
        )
        cur_c = bucket.categorical[f]
        if not enabled or cur_c.n == 0:
            continue
        results[f] = _public(
            categorical_drift(profile.ref_categorical[f], cur_c, method, threshold=threshold)
        )
    if profile.rich is not None and bucket.rich is not None:  # text descriptors, embeddings
        from .rich.evaluate import rich_drift

        default = (True, default_method, config.drift.threshold)
        results.update(rich_drift(config, profile.rich, bucket.rich, overrides, default))
    ev.features = results
    raw = [
        # drift_share only reads .drifted
        DriftResult(r.method, r.statistic, None, r.threshold, r.drifted)
        for r in results.values()
    ]
    share = drift_share(raw, config.drift.share_threshold)
    ev.drift_share = share.share
    ev.dataset_drift = share.drifted

    pd = config.drift.prediction
    if pd.enabled and bucket.prediction is not None and profile.ref_prediction is not None:
        method = None if pd.method == "auto" else METHODS[pd.method]
        if bucket.prediction.n > 0:
            if isinstance(bucket.prediction, NumericHistogram):
                assert isinstance(profile.ref_prediction, NumericHistogram)
                ev.prediction_drift = _numeric(
                    profile.ref_prediction, bucket.prediction, method, pd.threshold, None, None
                )
            else:
                assert isinstance(profile.ref_prediction, CategoricalCounts)
                ev.prediction_drift = _public(
                    categorical_drift(
                        profile.ref_prediction, bucket.prediction, method, threshold=pd.threshold
                    )
                )
        if bucket.score is not None and profile.ref_score is not None and bucket.score.n > 0:
            ev.score_drift = _numeric(
                profile.ref_score, bucket.score, method, pd.threshold, None, None
            )


def _outliers(config: WorkerConfig, profile: Profile, bucket: Bucket, ev: Evaluation) -> None:
    if profile.detector is None or bucket.n < config.window.min_samples:
        return
    rows = bucket.reservoir.sample
    if rows.shape[0] > config.outliers.sample_size:
        rng = np.random.default_rng(int(ev.at))
        rows = rows[rng.choice(rows.shape[0], config.outliers.sample_size, replace=False)]
    ev.outlier_ratio = profile.detector.ratio(rows)
    ev.outliers_scored = int(rows.shape[0])


def evaluate(config: WorkerConfig, profile: Profile, bucket: Bucket, at: float) -> Evaluation:
    ev = Evaluation(at=at, records=bucket.n, labelled=bucket.labelled)
    ev.sufficient = bucket.n >= config.window.min_samples
    ev.quality = _quality(config, bucket, profile)
    _drift(config, profile, bucket, ev)
    if config.outliers.enabled:
        _outliers(config, profile, bucket, ev)
    if bucket.rich is not None:  # serving measures
        from .rich.evaluate import measure_figures

        ev.measures = measure_figures(config, bucket.rich)
    return ev
