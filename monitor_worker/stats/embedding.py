"""Drift of fixed-dimension vectors (embeddings, or any numeric matrix): MMD and a domain classifier.

Both tests are pure functions of two bounded samples: the reference sample (fixed at start-up)
and the window's sample, a :class:`~monitor_worker.stats.sketches.Reservoir` of vectors whose
memory is ``capacity x dimension`` floats whatever the traffic, merged across time buckets.

MMD (as Alibi Detect 0.13's ``MMDDrift``, PyTorch backend)
    Unbiased MMD^2 with a Gaussian RBF kernel ``exp(-|x - y|^2 / (2 sigma^2))`` whose bandwidth
    comes from the reference alone (``configure_kernel_from_x_ref=True``): ``2 sigma^2`` is the
    median of the off-diagonal squared distances within the reference sample (``sigma_median``,
    lower median). p-value: the share of ``n_permutations`` random relabellings of the pooled
    sample whose MMD^2 is at least the observed one (Alibi's definition, without a +1); drift
    when ``p < threshold`` (0.05). Cost grows with the square of the pooled size, so each side
    is subsampled (seeded) to at most ``max_rows`` (1000) rows; the reference's kernel block is
    computed once (:class:`MMDReference`). All permutations are evaluated with one matrix
    product (``K @ Z`` for a 0/1 membership matrix ``Z``).

Domain classifier (Evidently 0.7.23's default embedding drift, ``ModelDriftMethod``)
    Pool both samples labelled by origin, split 50/50 exactly as Evidently does
    (``train_test_split(test_size=0.5, random_state=42, shuffle=True)``, i.e. the permutation of
    ``numpy.random.RandomState(42)``), fit a linear classifier on one half, score ROC-AUC on the
    other; drift when ``AUC > threshold`` (0.55). When the reference has fewer than 1000 rows,
    Evidently replaces the threshold by the 95th percentile of the AUC of random scores on the
    same test labels (100 seeds); so does this module. Evidently fits scikit-learn's
    ``SGDClassifier(loss="log_loss", random_state=42)``. The worker avoids importing
    scikit-learn (memory, see monitor_worker/outliers.py), so there are two backends:

    * ``numpy`` (default): L2-regularised logistic regression on standardised features, the
      objective of scikit-learn's ``LogisticRegression(C=1)``, minimised with scipy's L-BFGS;
      in process.
    * ``sklearn``: Evidently's exact ``SGDClassifier``, fitted in a short-lived child process.

    Measured by ``bench/embedding_drift.py`` (docs/benchmarks.md): the numpy backend is faster
    at every size measured, the child process costs a fixed start-up of the order of a second
    and a copy of both samples, and the decisions agree with Evidently's on the seeded cases of
    tests/unit/stats/test_stats_embedding.py. Hence ``numpy`` is the default; ``sklearn`` stays
    for users who want Evidently's exact numbers.

Automatic choice (``method="auto"``, :func:`choose_method`)
    MMD's permutation test is calibrated at any sample size and is the stronger test on small
    samples, where a classifier trained on half the data has little to learn from; its cost is
    quadratic. The classifier is linear in the sample size and uses every row. So: ``mmd`` when
    either sample has fewer than :data:`CLASSIFIER_MIN_ROWS` (1000) rows, ``domain-classifier``
    otherwise (Evidently's own switch to a bootstrapped threshold sits at the same 1000).

Inputs must be finite (callers impute or refuse NaN at ingestion: see
monitor_worker/ingest/rich_values.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

MMD = "mmd"
DOMAIN_CLASSIFIER = "domain-classifier"
METHODS = frozenset({MMD, DOMAIN_CLASSIFIER})
DEFAULT_THRESHOLDS = {MMD: 0.05, DOMAIN_CLASSIFIER: 0.55}
#: Rows per side kept for MMD (the kernel matrix is (2 * max_rows)^2 floats: 32 MB at 1000).
MMD_MAX_ROWS = 1000
DEFAULT_PERMUTATIONS = 100
#: ``auto`` picks the classifier when both samples have at least this many rows.
CLASSIFIER_MIN_ROWS = 1000
#: Evidently bootstraps the classifier's threshold when the reference is smaller than this.
BOOTSTRAP_BELOW_ROWS = 1000
BOOTSTRAP_ROUNDS = 100
BOOTSTRAP_QUANTILE = 0.95
SPLIT_SEED = 42  # Evidently's train_test_split random_state
BACKENDS = frozenset({"numpy", "sklearn"})


@dataclass(frozen=True)
class EmbeddingDriftResult:
    """Outcome of one embedding drift test.

    ``score`` is what the threshold is compared with: the p-value for ``mmd`` (drift below the
    threshold), the ROC-AUC for ``domain-classifier`` (drift above). ``statistic`` is MMD^2 or
    the AUC. ``n_reference`` / ``n_current`` are the rows the test used.
    """

    method: str
    score: float
    threshold: float
    drifted: bool
    statistic: float
    p_value: float | None
    n_reference: int
    n_current: int


def _as_matrix(x: ArrayLike, name: str) -> FloatArray:
    m = np.asarray(x, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(-1, 1)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows x dimension), got shape {m.shape}")
    if m.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 rows, got {m.shape[0]}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return m


def _check_pair(reference: FloatArray, current: FloatArray) -> None:
    if reference.shape[1] != current.shape[1]:
        raise ValueError(
            f"reference and current differ in dimension: {reference.shape[1]} vs {current.shape[1]}"
        )


def _subsample(x: FloatArray, max_rows: int, rng: np.random.Generator) -> FloatArray:
    if x.shape[0] <= max_rows:
        return x
    return x[np.sort(rng.choice(x.shape[0], max_rows, replace=False))]


def squared_distances(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise squared Euclidean distances, ``(len(a), len(b))``, in one buffer."""
    d = a @ b.T
    d *= -2.0
    d += np.einsum("ij,ij->i", a, a)[:, None]
    d += np.einsum("ij,ij->i", b, b)[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def median_heuristic(reference: ArrayLike) -> float:
    """``2 sigma^2`` of the RBF kernel: the (lower) median of the off-diagonal squared
    distances within the reference, as Alibi Detect's ``sigma_median`` on ``(x_ref, x_ref)``.
    """
    x = _as_matrix(reference, "reference")
    d = squared_distances(x, x)
    n = x.shape[0]
    # Alibi sorts all n^2 entries and skips the n zeros of the diagonal.
    flat = np.sort(d, axis=None)
    return float(flat[n + (n * n - n) // 2 - 1])


def _rbf(a: FloatArray, b: FloatArray, two_sigma2: float) -> FloatArray:
    k = squared_distances(a, b)
    k *= -1.0 / two_sigma2
    np.exp(k, out=k)
    return k


class MMDReference:
    """The reference side of the MMD test, prepared once: the (subsampled) reference rows, the
    bandwidth, and the reference block of the kernel matrix with its diagonal zeroed."""

    def __init__(self, reference: ArrayLike, max_rows: int = MMD_MAX_ROWS, seed: int = 0) -> None:
        x = _as_matrix(reference, "reference")
        self.rows = _subsample(x, max_rows, np.random.default_rng(seed))
        self.max_rows = int(max_rows)
        self.two_sigma2 = median_heuristic(self.rows)
        if self.two_sigma2 <= 0.0:
            raise ValueError("reference rows are all identical: the RBF bandwidth would be 0")
        self.k_rr = _rbf(self.rows, self.rows, self.two_sigma2)
        np.fill_diagonal(self.k_rr, 0.0)

    @property
    def sigma(self) -> float:
        """The kernel bandwidth (Alibi's ``sigma``)."""
        return math.sqrt(self.two_sigma2 / 2.0)

    @property
    def dimension(self) -> int:
        return int(self.rows.shape[1])


def _mmd2_from_sums(s_rr: Any, s_cc: Any, s_rc: Any, n: int, m: int) -> Any:
    """Unbiased MMD^2 from block sums of a zero-diagonal kernel matrix."""
    return s_rr / (n * (n - 1)) + s_cc / (m * (m - 1)) - 2.0 * s_rc / (n * m)


def mmd_drift(
    reference: MMDReference | ArrayLike,
    current: ArrayLike,
    *,
    threshold: float | None = None,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> EmbeddingDriftResult:
    """MMD^2 between the reference and the current sample, with a permutation-test p-value."""
    ref = reference if isinstance(reference, MMDReference) else MMDReference(reference, seed=seed)
    rng = np.random.default_rng(seed)
    cur = _subsample(_as_matrix(current, "current"), ref.max_rows, rng)
    _check_pair(ref.rows, cur)
    if n_permutations < 1:
        raise ValueError("n_permutations must be >= 1")
    n, m = ref.rows.shape[0], cur.shape[0]
    total = n + m
    k = np.empty((total, total))
    k[:n, :n] = ref.k_rr
    k_rc = _rbf(ref.rows, cur, ref.two_sigma2)
    k[:n, n:] = k_rc
    k[n:, :n] = k_rc.T
    k[n:, n:] = _rbf(cur, cur, ref.two_sigma2)
    np.fill_diagonal(k, 0.0)
    s_rr, s_cc, s_rc = float(ref.k_rr.sum()), float(k[n:, n:].sum()), float(k_rc.sum())
    mmd2 = float(_mmd2_from_sums(s_rr, s_cc, s_rc, n, m))
    # Each permutation draws which m of the pooled rows play "current": z (total x P), 0/1.
    z = np.zeros((total, n_permutations))
    picks = np.argsort(rng.random((n_permutations, total)), axis=1)[:, :m]
    z[picks.T, np.arange(n_permutations)[None, :]] = 1.0
    row_sums = k.sum(axis=1)
    kz = k @ z
    p_cc = np.einsum("ip,ip->p", z, kz)
    p_rc = z.T @ row_sums - p_cc
    p_rr = row_sums.sum() - 2.0 * (z.T @ row_sums) + p_cc
    permuted = _mmd2_from_sums(p_rr, p_cc, p_rc, n, m)
    p_value = float(np.mean(mmd2 <= permuted))
    thr = DEFAULT_THRESHOLDS[MMD] if threshold is None else float(threshold)
    return EmbeddingDriftResult(MMD, p_value, thr, p_value < thr, mmd2, p_value, n, m)


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """ROC-AUC of ``scores`` for the positive class (labels 1) via ranks (Mann-Whitney U);
    ties count one half, as scikit-learn's ``roc_auc_score``."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both classes among the labels")
    from scipy.stats import rankdata  # on the evaluator thread only: the serving imports stay lean

    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evidently_split(n_rows: int, seed: int = SPLIT_SEED) -> tuple[NDArray[Any], NDArray[Any]]:
    """Train and test row indices of ``train_test_split(test_size=0.5, shuffle=True,
    random_state=seed)``: scikit-learn permutes with ``RandomState(seed)`` and takes the first
    ``ceil(n / 2)`` as the test half."""
    perm = np.random.RandomState(seed).permutation(n_rows)
    n_test = math.ceil(0.5 * n_rows)
    return perm[n_test:], perm[:n_test]


def random_auc_threshold(test_labels: ArrayLike) -> float:
    """Evidently's bootstrapped threshold: the 95th percentile of the AUC of uniform random
    scores on the test labels, over seeds 0..99 (``np.random.seed(i); np.random.rand(n)``)."""
    y = np.asarray(test_labels)
    aucs = [roc_auc(y, np.random.RandomState(i).rand(y.size)) for i in range(BOOTSTRAP_ROUNDS)]
    return float(np.percentile(aucs, 100 * BOOTSTRAP_QUANTILE))


@dataclass
class LogisticModel:
    """A linear classifier on standardised features: ``p = sigmoid(((x - mean) / scale) @ w + b)``."""

    mean: FloatArray
    scale: FloatArray
    weights: FloatArray
    intercept: float

    def decision(self, x: FloatArray) -> FloatArray:
        return ((x - self.mean) / self.scale) @ self.weights + self.intercept


def fit_logistic(x: ArrayLike, y: ArrayLike, c: float = 1.0, max_iter: int = 500) -> LogisticModel:
    """L2-regularised logistic regression, scikit-learn ``LogisticRegression(C=c)``'s objective
    (``c * sum(log-loss) + |w|^2 / 2``, intercept not penalised) on standardised features,
    minimised with L-BFGS. Constant columns get weight 0."""
    xm = _as_matrix(x, "x")
    t = np.asarray(y, dtype=np.float64).ravel()
    if t.size != xm.shape[0]:
        raise ValueError("x and y differ in length")
    mean = xm.mean(axis=0)
    scale = xm.std(axis=0)
    scale[scale == 0.0] = 1.0
    xs = (xm - mean) / scale
    sign = 2.0 * t - 1.0  # labels as -1 / +1
    d = xs.shape[1]

    def loss_and_grad(theta: FloatArray) -> tuple[float, FloatArray]:
        w, b = theta[:d], theta[d]
        f = xs @ w + b
        margin = sign * f
        loss = c * float(np.logaddexp(0.0, -margin).sum()) + 0.5 * float(w @ w)
        # d/df log(1 + exp(-s f)) = -s * sigmoid(-s f)
        g_f = -sign * np.exp(-np.logaddexp(0.0, margin)) * c
        grad = np.empty(d + 1)
        grad[:d] = xs.T @ g_f + w
        grad[d] = g_f.sum()
        return loss, grad

    from scipy import optimize

    res = optimize.minimize(
        loss_and_grad,
        np.zeros(d + 1),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": 1e-6},
    )
    return LogisticModel(mean, scale, res.x[:d].copy(), float(res.x[d]))


def _sgd_auc(
    x_train: FloatArray, y_train: FloatArray, x_test: FloatArray, y_test: FloatArray
) -> float:
    """Runs in the child process: Evidently's exact classifier, the only place scikit-learn
    is imported for embedding drift."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score

    clf = SGDClassifier(loss="log_loss", random_state=42)
    clf.fit(x_train, y_train)
    return float(roc_auc_score(y_test, clf.predict_proba(x_test)[:, 1]))


def domain_classifier_drift(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    threshold: float | None = None,
    bootstrap: bool | None = None,
    backend: str = "numpy",
) -> EmbeddingDriftResult:
    """ROC-AUC of telling current rows from reference rows with a linear classifier (any numeric
    matrices of the same width); drift when the AUC exceeds the threshold. Without an explicit
    ``threshold``, ``bootstrap=None`` bootstraps it when the reference has fewer than 1000 rows,
    as Evidently does, and uses 0.55 otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    ref = _as_matrix(reference, "reference")
    cur = _as_matrix(current, "current")
    _check_pair(ref, cur)
    x = np.concatenate([ref, cur])
    y = np.concatenate([np.zeros(ref.shape[0]), np.ones(cur.shape[0])])
    train, test = evidently_split(x.shape[0])
    if np.unique(y[test]).size < 2 or np.unique(y[train]).size < 2:
        raise ValueError("too few rows: both halves of the split need both samples")
    if backend == "sklearn":
        from ..child import in_child

        auc = in_child(_sgd_auc, x[train], y[train], x[test], y[test])
    else:
        model = fit_logistic(x[train], y[train])
        auc = roc_auc(y[test], model.decision(x[test]))
    if bootstrap is None:
        bootstrap = ref.shape[0] < BOOTSTRAP_BELOW_ROWS
    if threshold is not None:
        thr = float(threshold)
    elif bootstrap:
        thr = random_auc_threshold(y[test])
    else:
        thr = DEFAULT_THRESHOLDS[DOMAIN_CLASSIFIER]
    return EmbeddingDriftResult(
        DOMAIN_CLASSIFIER, auc, thr, auc > thr, auc, None, ref.shape[0], cur.shape[0]
    )


def choose_method(n_reference: int, n_current: int) -> str:
    """The ``auto`` choice: MMD below :data:`CLASSIFIER_MIN_ROWS` rows on either side, the domain
    classifier from there on (see the module docstring for why)."""
    if min(n_reference, n_current) < CLASSIFIER_MIN_ROWS:
        return MMD
    return DOMAIN_CLASSIFIER


def embedding_drift(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    method: str = "auto",
    threshold: float | None = None,
    mmd_reference: MMDReference | None = None,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    backend: str = "numpy",
    seed: int = 0,
) -> EmbeddingDriftResult:
    """Embedding drift by ``method`` (``auto``, ``mmd`` or ``domain-classifier``). Pass the
    :class:`MMDReference` built at start-up as ``mmd_reference`` to reuse its kernel block."""
    ref = _as_matrix(reference, "reference")
    cur = _as_matrix(current, "current")
    chosen = choose_method(ref.shape[0], cur.shape[0]) if method == "auto" else method
    if chosen == MMD:
        return mmd_drift(
            mmd_reference if mmd_reference is not None else ref,
            cur,
            threshold=threshold,
            n_permutations=n_permutations,
            seed=seed,
        )
    if chosen == DOMAIN_CLASSIFIER:
        return domain_classifier_drift(ref, cur, threshold=threshold, backend=backend)
    raise ValueError(f"unknown embedding drift method {method!r}")
