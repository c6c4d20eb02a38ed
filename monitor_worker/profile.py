"""The reference profile: built once at start from the reference data and the config. It
fixes the bins and vocabularies every window bucket uses, holds the reference sketches that
drift is measured against, the class index of a classifier, and the fitted outlier detector.

Building it reads the reference with pyarrow and fits models with scikit-learn: the serving
process does that in children (:mod:`monitor_worker.loader`), one that reads and one that fits
(:mod:`monitor_worker.profile_fits`), so this module imports neither until
:func:`build_profile` runs."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mm_api.sections import check_drift_features
from mm_api.worker_config import WorkerConfig

from .child import in_child
from .estimation import EstimationModels, prepare_estimation
from .ingest import PayloadError
from .outliers import MAX_FIT_ROWS, OutlierDetector, OutlierFit
from .profile_fits import ProfileFits
from .rich import RichProfile, build_rich_profile
from .schema import DataSchema, schema_from_config
from .stats import (
    CategoricalCounts,
    CategoricalVocabulary,
    NumericBinning,
    NumericHistogram,
    reference_histogram,
)

if TYPE_CHECKING:
    from .reference import ReferenceData

log = logging.getLogger(__name__)


@dataclass
class ClassIndex:
    """Class label -> index. Binary: index 1 is the positive class, 0 everything else."""

    classes: tuple[str, ...]
    binary: bool
    positive: str = "1"
    _lookup: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lookup = {c: i for i, c in enumerate(self.classes)}

    def indices(self, values: np.ndarray, field_name: str) -> np.ndarray:
        if self.binary:
            return (values == self.positive).astype(np.int64)
        uniques, inverse = np.unique(values, return_inverse=True)
        try:
            codes = np.array([self._lookup[u] for u in uniques], dtype=np.int64)
        except KeyError as e:
            raise PayloadError(
                field_name,
                f"{str(e.args[0])!r} is not one of the classes {list(self.classes)[:20]}",
            ) from None
        return codes[inverse]


@dataclass
class Profile:
    schema: DataSchema
    fingerprint: str
    class_index: ClassIndex | None
    binnings: dict[str, NumericBinning] = field(default_factory=dict)
    vocabularies: dict[str, CategoricalVocabulary] = field(default_factory=dict)
    ref_numeric: dict[str, NumericHistogram] = field(default_factory=dict)
    ref_categorical: dict[str, CategoricalCounts] = field(default_factory=dict)
    ref_samples: dict[str, np.ndarray] = field(default_factory=dict)
    prediction_binning: NumericBinning | None = None
    prediction_vocabulary: CategoricalVocabulary | None = None
    ref_prediction: NumericHistogram | CategoricalCounts | None = None
    score_binning: NumericBinning | None = None
    ref_score: NumericHistogram | None = None
    detector: OutlierDetector | None = None
    #: Quality without labels and multivariate drift (monitor_worker/estimation.py).
    estimation: EstimationModels = field(default_factory=EstimationModels)
    #: Texts, embeddings and serving measures (monitor_worker/rich), when the schema has any.
    rich: RichProfile | None = None

    @property
    def has_reference(self) -> bool:
        return bool(
            self.ref_numeric
            or self.ref_categorical
            or (self.rich is not None and self.rich.has_reference)
        )


def _classes(config: WorkerConfig, reference: ReferenceData | None) -> ClassIndex | None:
    task = config.model.task
    if task == "regression":
        return None
    if task == "binary-classification":
        positive = config.model.positive_class
        classes = tuple(config.model.classes or ("not " + positive, positive))
        return ClassIndex(classes, binary=True, positive=positive)
    if config.model.classes:
        return ClassIndex(tuple(config.model.classes), binary=False)
    seen: set[str] = set()
    if reference is not None:
        columns = [
            c for c in (config.data.label_column, config.data.prediction_column) if reference.has(c)
        ]
        for part in reference.parts(columns) if columns else ():  # every row, not a sample
            for col in (c for c in columns if part.has(c)):
                strings, missing = part.categories(col)
                seen.update(np.unique(strings[~missing]).tolist())
    if len(seen) < 2:
        raise ValueError(
            "model.classes: a multiclass model needs its classes, in the config or as at least "
            "two distinct values in the reference's label or prediction column"
        )
    return ClassIndex(tuple(sorted(seen)), binary=False)


def build_profile(config: WorkerConfig, reference: ReferenceData | None) -> Profile:
    """The profile of ``reference`` (None: a worker without one). A sampled reference
    (larger than ``data.reference.sampleRows``) gives bins, vocabularies, samples and model
    fits from its sample, and exact histograms from one more pass over the whole file. The
    models scikit-learn fits are fitted in a child process."""
    profile, fits = profile_and_fits(config, reference)
    if fits:
        fits.apply(profile, in_child(fits.run))
    return profile


def profile_and_fits(
    config: WorkerConfig, reference: ReferenceData | None
) -> tuple[Profile, ProfileFits]:
    """:func:`build_profile` but the models scikit-learn fits: the profile without them,
    and what they are fitted on."""
    from .reference import check_reference_has, infer_features

    inferred = infer_features(reference, config) if reference is not None else None
    schema = schema_from_config(config, inferred)
    # Declared features were checked with the config; inferred ones only now.
    check_drift_features(config.drift.features, list(schema.names), [f.name for f in schema.texts])
    digest = hashlib.sha256(repr((schema, config.model.model_dump())).encode())
    profile = Profile(schema=schema, fingerprint="", class_index=_classes(config, reference))
    if reference is None:
        profile.rich = build_rich_profile(config, schema, None, digest)
        profile.fingerprint = digest.hexdigest()[:16]
        profile.estimation, _ = prepare_estimation(config, profile, None)  # refuses what needs one
        return profile, ProfileFits()
    check_reference_has(reference, list(schema.features))
    for f in schema.features:
        if f.type in ("text", "embedding"):
            continue  # monitor_worker/rich, below
        if f.numerical:
            values = reference.numbers(f.name)
            digest.update(np.ascontiguousarray(values).data)  # the buffer itself: no copy
            binning, hist, finite = reference_histogram(values)
            profile.binnings[f.name] = binning
            profile.ref_numeric[f.name] = hist
            profile.ref_samples[f.name] = finite
        else:
            strings, missing = reference.categories(f.name)
            digest.update(repr(strings.tolist()).encode())
            vocab = _vocabulary(strings[~missing], reference)
            counts = CategoricalCounts(vocab)
            counts.update(strings[~missing])
            profile.vocabularies[f.name] = vocab
            profile.ref_categorical[f.name] = counts
    pred_col = config.data.prediction_column
    if reference.has(pred_col):
        if schema.regression:
            values = reference.numbers(pred_col)
            profile.prediction_binning, profile.ref_prediction, _ = reference_histogram(values)
        else:
            strings, missing = reference.categories(pred_col)
            profile.prediction_vocabulary = _vocabulary(strings[~missing], reference)
            counts = CategoricalCounts(profile.prediction_vocabulary)
            counts.update(strings[~missing])
            profile.ref_prediction = counts
    score_col = config.data.score_column
    if reference.has(score_col) and config.model.task == "binary-classification":
        values = reference.numbers(score_col)
        profile.score_binning, profile.ref_score, _ = reference_histogram(values)
    if reference.sampled:
        _count_every_row(profile, config, reference, digest)
    profile.rich = build_rich_profile(config, schema, reference, digest)
    profile.fingerprint = digest.hexdigest()[:16]
    fits = ProfileFits()
    if config.outliers.enabled and (schema.numerical or schema.categorical):
        fits.outliers = OutlierFit.of(config.outliers, reference_rows(profile, reference))
    profile.estimation, fits.estimator = prepare_estimation(config, profile, reference)
    if reference.sampled:
        log.info(
            "reference of %d rows: histograms of every row, bins, vocabularies, samples and "
            "fits from a uniform sample of %d",
            reference.total_rows,
            reference.n_rows,
        )
    log.info(
        "reference profile: %d rows, %d numerical, %d categorical, %d text and %d embedding "
        "features",
        reference.n_rows,
        len(schema.numerical),
        len(schema.categorical),
        len(schema.texts),
        len(schema.embeddings),
    )
    return profile, fits


def _vocabulary(strings: np.ndarray, reference: ReferenceData) -> CategoricalVocabulary:
    vocabulary = CategoricalVocabulary.from_reference(strings)
    if reference.sampled:
        # A value the sample missed is in the file: never count it as unseen.
        vocabulary.tail_complete = False
    return vocabulary


def _count_every_row(
    profile: Profile, config: WorkerConfig, reference: ReferenceData, digest: Any
) -> None:
    """Replace the sample's reference histograms by counts over every row of the file, one
    record batch at a time, over the bins and vocabularies the sample fixed."""
    numeric: dict[str, NumericHistogram] = {
        name: NumericHistogram(b) for name, b in profile.binnings.items()
    }
    categorical = {name: CategoricalCounts(v) for name, v in profile.vocabularies.items()}
    pred_col, score_col = config.data.prediction_column, config.data.score_column
    prediction: NumericHistogram | CategoricalCounts | None = None
    score: NumericHistogram | None = None
    if profile.prediction_binning is not None:
        prediction = NumericHistogram(profile.prediction_binning)
    elif profile.prediction_vocabulary is not None:
        prediction = CategoricalCounts(profile.prediction_vocabulary)
    if profile.score_binning is not None:
        score = NumericHistogram(profile.score_binning)
    columns = [*numeric, *categorical]
    columns += [c for c, h in ((pred_col, prediction), (score_col, score)) if h is not None]
    columns = list(dict.fromkeys(columns))
    rows = 0
    for part in reference.parts(columns):  # all the columns of some rows, or one column's
        if not columns or part.has(columns[0]):
            rows += part.n_rows
        for name, hist in numeric.items():
            if part.has(name):
                hist.update(part.numbers(name))
        for name, counts in categorical.items():
            if part.has(name):
                strings, missing = part.categories(name)
                counts.update(strings[~missing])
        if isinstance(prediction, NumericHistogram) and part.has(pred_col):
            prediction.update(part.numbers(pred_col))
        elif prediction is not None and part.has(pred_col):
            strings, missing = part.categories(pred_col)
            prediction.update(strings[~missing])
        if score is not None and part.has(score_col):
            score.update(part.numbers(score_col))
    digest.update(f"every row: {rows}".encode())
    for sketch in (*numeric.values(), *categorical.values(), prediction, score):
        if sketch is not None:
            digest.update(sketch.counts.tobytes())
    profile.ref_numeric.update(numeric)
    profile.ref_categorical.update(categorical)
    if prediction is not None:
        profile.ref_prediction = prediction
    if score is not None:
        profile.ref_score = score


def reference_rows(
    profile: Profile,
    reference: ReferenceData,
    limit: int = MAX_FIT_ROWS,
    then: tuple[str, ...] = (),
) -> np.ndarray:
    """A uniform sample (at most ``limit``) of reference rows in the reservoir's layout:
    numerical values, then categorical slot codes (NaN where missing), then the numerical
    columns ``then``. Filled in place: one copy of the rows (34 MB at 200k rows of 21)."""
    n = reference.n_rows
    take = (
        np.sort(np.random.default_rng(0).choice(n, limit, replace=False))
        if n > limit
        else np.arange(n)
    )
    schema = profile.schema
    rows = np.empty((take.size, len(schema.numerical) + len(schema.categorical) + len(then)))
    for j, name in enumerate(schema.numerical):
        rows[:, j] = reference.numbers(name)[take]
    for j, name in enumerate(schema.categorical, start=len(schema.numerical)):
        strings, missing = reference.categories(name)
        rows[:, j] = category_codes(profile.vocabularies[name], strings[take])
        rows[missing[take], j] = np.nan
    for j, name in enumerate(then, start=len(schema.numerical) + len(schema.categorical)):
        rows[:, j] = reference.numbers(name)[take]
    return rows


def category_codes(vocabulary: CategoricalVocabulary, strings: np.ndarray) -> np.ndarray:
    """Vocabulary slot of each category string, as floats (the reservoir's row layout)."""
    uniques, inverse = np.unique(strings, return_inverse=True)
    return vocabulary.slots_of(uniques.tolist())[inverse].astype(np.float64)
