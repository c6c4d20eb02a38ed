"""Pure, mergeable, bounded-memory statistics for the monitor worker.

No I/O, no configuration, no HTTP: every object here is a small state with one verb to learn
(``update``) and one to combine (``merge`` / ``+=``), and every statistic is a pure function of
such states. Windows are sums of time buckets, so every state is mergeable and serialisable.

* :mod:`.sketches` - per-feature streaming state (numeric histograms, categorical counts,
  row reservoir).
* :mod:`.drift` - per-feature drift tests matching Evidently's definitions and defaults.
* :mod:`.quality` - classification and regression quality accumulators and metrics.
* :mod:`.text` - text descriptors (``<feature>.<descriptor>`` numerical series).
* :mod:`.embedding` - drift of vectors: MMD permutation test and domain classifier.
* :mod:`.quantiles` - DDSketch window quantiles of serving measures.
"""

from monitor_worker.stats.drift import (
    DatasetDrift,
    DriftResult,
    categorical_drift,
    choose_method,
    drift_share,
    numeric_drift,
)
from monitor_worker.stats.quality import ClassificationState, RegressionState
from monitor_worker.stats.sketches import (
    CategoricalCounts,
    CategoricalVocabulary,
    NumericBinning,
    NumericHistogram,
    Reservoir,
    reference_histogram,
)

__all__ = [
    "CategoricalCounts",
    "CategoricalVocabulary",
    "ClassificationState",
    "DatasetDrift",
    "DriftResult",
    "NumericBinning",
    "NumericHistogram",
    "RegressionState",
    "Reservoir",
    "categorical_drift",
    "choose_method",
    "drift_share",
    "numeric_drift",
    "reference_histogram",
]
