"""Quality without labels and multivariate drift, set up once at start-up: which estimator a
worker runs (CBPE for classifiers, DLE for regressors), the models fitted on the reference,
and, when estimation is off, why. The profile holds the result; the window's buckets keep
the per-record states (:mod:`monitor_worker.window`), the evaluation reads them
(:mod:`monitor_worker.evaluate`).

``estimation.enabled`` unset: on when the reference allows it, else off with the reason
(``/v1/status`` ``estimation.reason``); ``true``: the same checks refuse to start, naming the
field; ``false``: off. ``drift.multivariate`` is asked for explicitly, so what cannot work is
always refused (:mod:`monitor_worker.estimation_checks`).

The serving process never imports scikit-learn: :func:`prepare_estimation` gathers what CBPE's
calibration or DLE's error models are fitted on (:class:`CbpeFit`, :class:`DleFit`: numpy
arrays), and they are fitted in a short-lived child process that never reads the reference
(:mod:`monitor_worker.profile_fits`); the reconstruction model is numpy."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from mm_api.worker_config import WorkerConfig

from .estimation_checks import EstimationRefused, check_cbpe, check_dle, check_multivariate
from .ingest import PayloadError
from .reference_files import ReferenceDataError
from .stats.bands import chunk_slices, default_chunk_size
from .stats.cbpe import CBPEModel
from .stats.dle import DirectLossModel
from .stats.reconstruction import ReconstructionModel

if TYPE_CHECKING:
    from .profile import Profile
    from .reference import ReferenceData

log = logging.getLogger(__name__)
_OFF = "or set estimation.enabled: false"
#: CBPE keeps, per bucket, a k x k expected confusion matrix and two histograms of about 1200
#: bins per class: 1 MB per bucket at 50 classes, growing with k.
MAX_CBPE_CLASSES = 50


@dataclass
class EstimationModels:
    """What the worker estimates with, fitted on the reference (all None: nothing)."""

    cbpe: CBPEModel | None = None
    dle: DirectLossModel | None = None
    #: Why quality is not estimated (None while it is).
    off_reason: str | None = None
    #: ``drift.multivariate.method`` when multivariate drift is on.
    multivariate: str | None = None
    #: The reconstruction model: pca-reconstruction's figure, and the encoder (imputation,
    #: frequency encoding) of the domain classifier's rows.
    reconstruction: ReconstructionModel | None = None
    #: domain-classifier: a seeded sample of the reference, encoded.
    domain_reference: np.ndarray | None = None

    @property
    def method(self) -> str | None:
        """``cbpe``, ``dle`` or None."""
        return "cbpe" if self.cbpe is not None else "dle" if self.dle is not None else None


@dataclass
class CbpeFit:
    """What CBPE is fitted on: the reference's labelled rows as class indices and scores."""

    labels: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray
    classes: int
    chunk_size: int | None

    def run(self) -> CBPEModel:
        """The fitted model (scikit-learn: run it in a child process)."""
        from .estimators import fit_cbpe

        return fit_cbpe(
            self.labels, self.predictions, self.scores, self.classes, chunk_size=self.chunk_size
        )

    def apply(self, models: EstimationModels, model: CBPEModel) -> None:
        models.cbpe = model
        log.info(
            "CBPE fitted on %d reference rows (calibrated: %s)",
            self.labels.size,
            [m is not None for m in model.calibration],
        )


@dataclass
class DleFit:
    """What DLE is fitted on: the reference rows (features, then the prediction) and labels."""

    rows: np.ndarray
    labels: np.ndarray
    chunk_size: int | None
    labelled: int

    def run(self) -> DirectLossModel:
        """The fitted model (scikit-learn: run it in a child process)."""
        from .estimators import fit_dle

        return fit_dle(self.rows, self.labels, chunk_size=self.chunk_size)

    def apply(self, models: EstimationModels, model: DirectLossModel) -> None:
        models.dle = model
        log.info("DLE fitted on %d labelled reference rows", self.labelled)


EstimatorFit: TypeAlias = CbpeFit | DleFit


def prepare_estimation(
    config: WorkerConfig, profile: Profile, reference: ReferenceData | None
) -> tuple[EstimationModels, EstimatorFit | None]:
    """The estimators ``config`` asks for, on ``reference``: the models but CBPE's or DLE's,
    and what that one is fitted on (None: none is). Raises :class:`EstimationRefused`
    (naming the field) for what was asked for and cannot work."""
    models = EstimationModels()
    fit: EstimatorFit | None = None
    enabled = config.estimation.enabled
    if enabled is False:
        models.off_reason = "estimation.enabled is false"
    else:
        try:
            try:
                if config.model.task == "regression":
                    fit = _dle_fit(config, profile, reference)
                else:
                    fit = _cbpe_fit(config, profile, reference)
            except ReferenceDataError as e:  # e.g. a label column that is not numerical
                raise EstimationRefused("data.reference", f"{e} ({_OFF})") from None
        except EstimationRefused as e:
            if enabled:
                raise
            models.off_reason = str(e)
            log.info("quality estimation is off: %s", e)
    mv = config.drift.multivariate
    if mv is not None and config.drift.enabled:
        check_multivariate(list(profile.schema.names), reference)
        assert reference is not None
        rows = _reference_rows(profile, reference)
        schema = profile.schema
        categorical = [False] * len(schema.numerical) + [True] * len(schema.categorical)
        slots = [0] * len(schema.numerical) + [
            profile.vocabularies[n].n_slots for n in schema.categorical
        ]
        _check_chunks("drift.multivariate.chunkSize", mv.chunk_size, rows.shape[0])
        model = ReconstructionModel.fit(rows, categorical, slots, chunk_size=mv.chunk_size)
        models.multivariate, models.reconstruction = mv.method, model
        if mv.method == "domain-classifier":
            rng = np.random.default_rng(0)
            take = rng.choice(rows.shape[0], min(mv.sample_size, rows.shape[0]), replace=False)
            models.domain_reference = model.encode(rows[np.sort(take)])
    return models, fit


def _reference_rows(
    profile: Profile, reference: ReferenceData, then: tuple[str, ...] = ()
) -> np.ndarray:
    """Every reference row, in order (the alert bands come from consecutive chunks), in the
    reservoir's layout (then the columns ``then``)."""
    from .profile import reference_rows

    return reference_rows(profile, reference, limit=reference.n_rows, then=then)


def _check_chunks(field: str, chunk_size: int | None, rows: int) -> None:
    size = chunk_size or default_chunk_size(rows)
    chunks = len(list(chunk_slices(rows, size)))
    if chunks < 2:
        raise EstimationRefused(
            field,
            f"{size} rows per chunk leave {chunks} chunk of the reference's {rows} rows: the "
            f"alert band needs at least two (lower it, {_OFF})",
        )


def _cbpe_fit(config: WorkerConfig, profile: Profile, reference: ReferenceData | None) -> CbpeFit:
    index = profile.class_index
    assert index is not None
    data = config.data
    if index.binary:
        score_columns = [data.score_column]
    elif not config.model.classes:
        raise EstimationRefused(
            "model.classes",
            "CBPE of a multiclass model needs model.classes: records carry probability vectors "
            f"in that order ({_OFF})",
        )
    elif len(index.classes) > MAX_CBPE_CLASSES:
        raise EstimationRefused(
            "model.classes",
            f"CBPE keeps per-class histograms in every bucket; {len(index.classes)} classes are "
            f"more than the {MAX_CBPE_CLASSES} it serves ({_OFF})",
        )
    else:
        score_columns = data.class_score_columns(index.classes)
    check_cbpe(
        config.model.task,
        reference,
        data.label_column,
        score_columns,
        prediction_column=data.prediction_column,
    )
    assert reference is not None
    labels, no_label = reference.categories(data.label_column)
    predictions, no_prediction = reference.categories(data.prediction_column)
    keep = ~no_label & ~no_prediction
    try:
        y = index.indices(labels[keep], data.label_column)
        pred = index.indices(predictions[keep], data.prediction_column)
    except PayloadError as e:
        column = "data.labelColumn" if e.field == data.label_column else "data.predictionColumn"
        raise EstimationRefused(column, f"the reference's column {e} ({_OFF})") from None
    if index.binary and np.unique(y).size < 2:
        raise EstimationRefused(
            "model.positiveClass",
            f"the reference's labels in {data.label_column!r} are all or none "
            f"{index.positive!r}: CBPE cannot calibrate scores against one class ({_OFF})",
        )
    columns = [reference.numbers(c)[keep] for c in score_columns]
    scores = columns[0] if index.binary else np.column_stack(columns)
    _check_chunks("estimation.chunkSize", config.estimation.chunk_size, int(keep.sum()))
    return CbpeFit(y, pred, scores, len(index.classes), config.estimation.chunk_size)


def _dle_fit(config: WorkerConfig, profile: Profile, reference: ReferenceData | None) -> DleFit:
    data = config.data
    check_dle(config.model.task, reference, data.label_column, data.prediction_column)
    assert reference is not None
    y = reference.numbers(data.label_column)
    rows = _reference_rows(profile, reference, then=(data.prediction_column,))
    labelled = int((np.isfinite(y) & np.isfinite(rows[:, -1])).sum())
    _check_chunks("estimation.chunkSize", config.estimation.chunk_size, labelled)
    return DleFit(rows, y, config.estimation.chunk_size, labelled)
