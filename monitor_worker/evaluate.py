"""Evaluation: the window's summary -> quality, drift and outliers. A pure function of the
config, the reference profile and one merged bucket. (Which alerts fire is decided by the
shared alert table on the exported samples: :meth:`MonitorService.evaluate`.)

Figures below ``window.minSamples`` are absent rather than misleading: quality needs that many
labelled records, drift and outliers that many records."""

from __future__ import annotations

import dataclasses
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
    cbpe,
    dle,
    drift_share,
    numeric_drift,
    reconstruction,
)
from .stats import quality as q
from .stats.bands import SAMPLING_ERROR_RANGE, Estimate
from .stats.embedding import domain_classifier_drift
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


@dataclass(frozen=True)
class EstimatedFigure:
    """One metric estimated without labels (the fields of ``/v1/status`` estimatedQuality)."""

    value: float
    lower: float
    upper: float
    sampling_error: float
    sample_error: float | None
    lower_threshold: float | None
    upper_threshold: float | None
    outside_band: bool
    records: int


@dataclass(frozen=True)
class MultivariateDrift:
    method: str
    value: float
    upper_threshold: float | None
    lower_threshold: float | None
    drifted: bool
    records: int
    sampling_error: float | None = None
    reference_band: dict[str, float | None] | None = None
    message: str = ""


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
    estimated: dict[str, EstimatedFigure] = field(default_factory=dict)
    #: Why estimation is on and yet this window has no estimate (None otherwise).
    estimation_note: str | None = None
    estimation_records: int = 0
    multivariate: MultivariateDrift | None = None
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
    rows = bucket.reservoir.sample[:, : profile.schema.tabular_width]
    if rows.shape[0] > config.outliers.sample_size:
        rng = np.random.default_rng(int(ev.at))
        rows = rows[rng.choice(rows.shape[0], config.outliers.sample_size, replace=False)]
    ev.outlier_ratio = profile.detector.ratio(rows)
    ev.outliers_scored = int(rows.shape[0])


# -- quality without labels and multivariate drift (monitor_worker/estimation.py) -------------


def _figure(e: Estimate, sample_error: float | None = None, high: float = 1.0) -> EstimatedFigure:
    lower, upper = e.lower, e.upper
    if sample_error:  # DLE scored a sample: its error widens the confidence band
        spread = SAMPLING_ERROR_RANGE * math.hypot(e.sampling_error, sample_error)
        lower, upper = max(0.0, e.value - spread), min(high, e.value + spread)
    return EstimatedFigure(
        value=e.value,
        lower=lower,
        upper=upper,
        sampling_error=e.sampling_error,
        sample_error=sample_error,
        lower_threshold=e.thresholds.lower,
        upper_threshold=e.thresholds.upper,
        outside_band=e.alert,
        records=e.n,
    )


def _estimated_quality(
    config: WorkerConfig, profile: Profile, bucket: Bucket, ev: Evaluation
) -> None:
    """CBPE from the bucket's expected confusion matrix; DLE from scoring the window's uniform
    sample (the reservoir, whose last column is the prediction) standing for its records."""
    est, need = profile.estimation, config.window.min_samples
    if est.cbpe is not None:
        n = bucket.cbpe.n if bucket.cbpe is not None else 0
        ev.estimation_records = n
        if n < need:
            ev.estimation_note = (
                f"{n} records with a prediction and a score in the window, fewer than "
                f"window.minSamples ({need})"
            )
            return
        assert bucket.cbpe is not None
        ev.estimated = {m: _figure(e) for m, e in cbpe.estimate_all(bucket.cbpe, need).items()}
    elif est.dle is not None:
        sample = bucket.reservoir.sample
        rows = sample[np.isfinite(sample[:, -1])]
        n = round(bucket.n * rows.shape[0] / sample.shape[0]) if sample.shape[0] else 0
        ev.estimation_records = n
        if n < need:
            ev.estimation_note = (
                f"{n} records with a prediction in the window, fewer than window.minSamples "
                f"({need})"
            )
            return
        loss = dle.LossState.from_rows(est.dle, rows, n=n)
        ev.estimated = {}
        for metric in dle.DLE_METRICS:
            e = dle.estimate(loss, metric, need)
            if e is not None:
                ev.estimated[metric] = _figure(e, dle.sample_error(loss, metric), high=math.inf)


def _multivariate_drift(
    config: WorkerConfig, profile: Profile, bucket: Bucket, ev: Evaluation
) -> None:
    mv, model = config.drift.multivariate, profile.estimation.reconstruction
    if mv is None or model is None or bucket.n < config.window.min_samples:
        return
    if mv.method == "pca-reconstruction":
        if bucket.reconstruction is None:
            return
        e = reconstruction.estimate(bucket.reconstruction, config.window.min_samples)
        if e is None:
            return
        band = e.thresholds
        lower: float | None = band.lower
        upper: float | None = band.upper
        drifted = e.alert
        if mv.threshold is not None:
            lower, upper, drifted = None, mv.threshold, e.value > mv.threshold
        ev.multivariate = MultivariateDrift(
            "pca-reconstruction",
            e.value,
            upper,
            lower,
            drifted,
            e.n,
            sampling_error=e.sampling_error,
            reference_band={"lower": band.lower, "upper": band.upper},
        )
    else:
        assert profile.estimation.domain_reference is not None
        rows = model.encode(bucket.reservoir.sample[:, : model.n_features])
        try:
            r = domain_classifier_drift(
                profile.estimation.domain_reference, rows, threshold=mv.threshold
            )
        except ValueError:  # too few rows for both halves of the split
            return
        ev.multivariate = MultivariateDrift(
            "domain-classifier", r.score, r.threshold, None, r.drifted, r.n_current
        )
    ev.multivariate = _explained(ev.multivariate, ev)


def _explained(mv: MultivariateDrift, ev: Evaluation) -> MultivariateDrift:
    """Which signal fired: the joint figure, the per-feature tests, both or neither."""
    figure = "reconstruction error" if mv.method == "pca-reconstruction" else "domain ROC-AUC"
    if mv.drifted:
        side = (
            "below the lower"
            if mv.lower_threshold is not None and mv.value <= mv.lower_threshold
            else "above the"
        )
        bound = mv.lower_threshold if side.startswith("below") else mv.upper_threshold
        joint = f"{figure} {mv.value:.4g} is {side} threshold {bound or float('nan'):.4g}: "
        joint += "drifted together"
    else:
        joint = f"{figure} {mv.value:.4g} is within its threshold: no joint drift"
    drifted = sorted(f for f, r in ev.features.items() if r.drifted)
    features = f"{len(drifted)} of {len(ev.features)} features drifted one by one" + (
        f" ({', '.join(drifted[:5])}{', ...' if len(drifted) > 5 else ''})" if drifted else ""
    )
    if mv.drifted and not drifted:
        features += ": a change in how the features move together, not in any one of them"
    return dataclasses.replace(mv, message=f"{joint}; {features}")


def evaluate(config: WorkerConfig, profile: Profile, bucket: Bucket, at: float) -> Evaluation:
    ev = Evaluation(at=at, records=bucket.n, labelled=bucket.labelled)
    ev.sufficient = bucket.n >= config.window.min_samples
    ev.quality = _quality(config, bucket, profile)
    _drift(config, profile, bucket, ev)
    if config.outliers.enabled:
        _outliers(config, profile, bucket, ev)
    _estimated_quality(config, profile, bucket, ev)
    if config.drift.enabled:
        _multivariate_drift(config, profile, bucket, ev)
    if bucket.rich is not None:  # serving measures
        from .rich.evaluate import measure_figures

        ev.measures = measure_figures(config, bucket.rich)
    return ev
