"""Fitting the label-free estimators on the reference: CBPE's calibration and DLE's error
models, with scikit-learn, and what NannyML derives beside them (sampling-error components,
alert thresholds from the reference's chunks).

Why a child process: importing scikit-learn costs the worker over 100 MB of resident memory
for its whole life (see :mod:`monitor_worker.outliers`). :func:`monitor_worker.child.in_child`
runs any of the ``fit_*`` functions in a short-lived spawned process and hands back the numpy models of
:mod:`monitor_worker.stats.cbpe` and :mod:`monitor_worker.stats.dle`; the serving process
never imports scikit-learn. (Multivariate drift needs no scikit-learn:
:meth:`monitor_worker.stats.reconstruction.ReconstructionModel.fit`.) Tests call the
``fit_*`` functions in process.

Inputs are the reference as arrays: class indices (the worker's ``ClassIndex``), scores
(binary: the positive-class score ``(n,)``; multiclass ``(n, k)``), and feature rows in the
reservoir layout (numerical values, then categorical slot codes, NaN for missing).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .stats.bands import Thresholds, chunk_slices, default_chunk_size, reference_thresholds
from .stats.cbpe import CBPE_METRICS, CBPEModel, IsotonicMap
from .stats.dle import DirectLossModel, TreeEnsemble

#: Reference quantiles added to the ROC-AUC histogram's edges (besides the isotonic breakpoints).
SCORE_QUANTILES = 1000
#: A fit on more reference rows than this uses a seeded uniform sample of them.
MAX_FIT_ROWS = 200_000


# -- CBPE ---------------------------------------------------------------------------------------


def _bin_index_edges(length: int, bin_count: int) -> list[tuple[int, int]]:
    """NannyML's ``_get_bin_index_edges``: equal-count bins of the sorted vector."""
    if length <= 2 * bin_count:
        bin_count = length // 2
        if bin_count < 2:
            raise ValueError(f"cannot split {length} reference scores into 2 calibration bins")
    width = length // bin_count
    edges = np.asarray(range(0, length + 1, width))
    edges[-1] = length
    return list(itertools.pairwise(int(e) for e in edges))


def _expected_calibration_error(y: np.ndarray, p: np.ndarray, edges: list[tuple[int, int]]):
    order = p.argsort()
    p, y = p[order], y[order]
    return float(np.sum([(b - a) / p.size * abs(p[a:b].mean() - y[a:b].mean()) for a, b in edges]))


def needs_calibration(y: np.ndarray, scores: np.ndarray) -> bool:
    """NannyML's ``needs_calibration`` with its ``IsotonicCalibrator``: calibrate when, over
    10 stratified 90/10 splits (seed 42), isotonic regression fitted on the 90% lowers the
    expected calibration error (10 equal-count bins) of the pooled 10%. Not when the
    reference has one class or its ROC-AUC exceeds 0.999."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedShuffleSplit

    if np.isnan(scores).any():
        raise ValueError("reference scores contain NaN")
    if np.unique(y).size == 1:
        return False
    if roc_auc_score(y, scores) > 0.999:
        return False
    splits = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=42)
    truth, raw, calibrated = [], [], []
    for train, test in splits.split(scores, y):
        iso = IsotonicRegression(out_of_bounds="clip", increasing=True)
        iso.fit(scores[train], y[train])
        truth.append(y[test])
        raw.append(scores[test])
        calibrated.append(iso.predict(scores[test]))
    t, r, c = np.concatenate(truth), np.concatenate(raw), np.concatenate(calibrated)
    edges = _bin_index_edges(r.size, 10)
    return _expected_calibration_error(t, r, edges) > _expected_calibration_error(t, c, edges)


def _isotonic(y: np.ndarray, scores: np.ndarray) -> IsotonicMap:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(scores, y)
    return IsotonicMap(
        np.asarray(iso.X_thresholds_, dtype=np.float64),
        np.asarray(iso.y_thresholds_, dtype=np.float64),
    )


def _score_edges(scores: np.ndarray, calibration: IsotonicMap | None, quantiles: int):
    q = np.quantile(scores, np.linspace(0, 1, quantiles + 1)[1:-1])
    parts = [q] if calibration is None else [q, calibration.x]
    return np.unique(np.concatenate(parts))


def _auroc_components(y: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    """NannyML's per-class AUROC components: (std, variance, positive fraction) of the
    normalised count of negatives ranked below each positive."""
    y = np.asarray(y, dtype=np.int64)
    if y.mean() > 0.5:
        y, scores = 1 - y, 1 - scores
    order = np.argsort(scores)
    y = y[order]
    positive_ranks = y * np.arange(y.size)
    indexes = np.unique(positive_ranks)[1:]
    ser = (indexes - np.arange(indexes.size)) / (y.size - y.sum())
    return float(np.std(ser)), float(np.var(ser)), float(y.sum() / y.size)


def _binary_components(y: np.ndarray, pred: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    tp = int(np.sum((y == pred) & (pred == 1)))
    fp = int(np.sum((y != pred) & (pred == 1)))
    fn = int(np.sum((y != pred) & (pred == 0)))
    n = y.size
    out: dict[str, Any] = {"accuracy": float(np.std(y == pred))}
    out["precision"] = (float(np.std(np.r_[np.ones(tp), np.zeros(fp)])), float(pred.mean()))
    out["recall"] = (float(np.std(np.r_[np.ones(tp), np.zeros(fn)])), float(y.sum() / n))
    if tp + fp + fn == 0:
        out["f1"] = (float("nan"), 0.0)
    else:
        obs = np.r_[np.ones(tp), np.zeros(fn + fp)]
        correcting = obs.size / ((fn + fp) * 0.5 + tp)
        out["f1"] = (float(np.std(obs * correcting)), obs.size / n)
    std, _, fraction = _auroc_components(y, scores)
    out["roc-auc"] = (std, fraction)
    return {
        k: np.asarray(v, dtype=np.float64) if isinstance(v, tuple) else v for k, v in out.items()
    }


def _multiclass_components(
    y: np.ndarray, pred: np.ndarray, scores: np.ndarray, k: int
) -> dict[str, Any]:
    rows: dict[str, list[tuple[float, float]]] = {m: [] for m in ("precision", "recall", "f1")}
    auc = []
    for c in range(k):
        yc, pc = (y == c).astype(np.int64), (pred == c).astype(np.int64)
        tp = int(np.sum((yc == pc) & (pc == 1)))
        fp = int(np.sum((yc != pc) & (pc == 1)))
        fn = int(np.sum((yc != pc) & (pc == 0)))
        prec = np.r_[np.ones(tp), np.zeros(fp)]
        rec = np.r_[np.ones(tp), np.zeros(fn)]
        f1 = np.r_[np.ones(tp), np.zeros(fn + fp)]
        rows["precision"].append((float(np.var(prec)), float(pc.sum() / pc.size)))
        rows["recall"].append((float(np.var(rec)), float(yc.sum() / yc.size)))
        rows["f1"].append((float(np.var(f1)), f1.size / pc.size))
        _, var, fraction = _auroc_components(yc, scores[:, c])
        auc.append((var, fraction))
    out: dict[str, Any] = {m: np.asarray(v, dtype=np.float64) for m, v in rows.items()}
    out["roc-auc"] = np.asarray(auc, dtype=np.float64)
    out["accuracy"] = float(np.std(y == pred))
    return out


def _realized(y: np.ndarray, pred: np.ndarray, scores: np.ndarray, k: int) -> dict[str, float]:
    """NannyML's realized metrics of one reference chunk (NaN where it returns NaN)."""
    from sklearn import metrics as skm

    nan = float("nan")
    out = {"accuracy": float(skm.accuracy_score(y, pred))}
    labels = list(range(k))
    one_class = np.unique(y).size <= 1 or np.unique(pred).size <= 1
    if k == 2:
        for name, fn in (
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
        ):
            out[name] = nan if one_class else float(fn(y, pred, zero_division=0))
        out["roc-auc"] = nan if np.unique(y).size <= 1 else float(skm.roc_auc_score(y, scores))
        return out
    for name, fn in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        out[name] = (
            nan
            if one_class
            else float(fn(y, pred, average="macro", labels=labels, zero_division=0))
        )
    all_classes = np.unique(y).size == k
    out["roc-auc"] = (
        float(skm.roc_auc_score(y, scores, multi_class="ovr", average="macro", labels=labels))
        if all_classes
        else nan
    )
    return out


def fit_cbpe(
    y_true_idx: ArrayLike,
    y_pred_idx: ArrayLike,
    scores: ArrayLike,
    n_classes: int,
    chunk_size: int | None = None,
    score_quantiles: int = SCORE_QUANTILES,
) -> CBPEModel:
    """CBPE fitted on a labelled reference, as NannyML's ``CBPE.fit``: per class (binary: the
    positive class), isotonic calibration where :func:`needs_calibration` says so; the
    sampling-error components; thresholds from the realized metrics of reference chunks of
    ``chunk_size`` rows (default: 10 chunks). Rows with a NaN score or label are left out."""
    y = np.asarray(y_true_idx).astype(np.int64).ravel()
    pred = np.asarray(y_pred_idx).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64)
    binary = n_classes == 2
    if binary and s.ndim == 2:
        s = s[:, 1] if s.shape[1] == 2 else s.ravel()
    ok = np.isfinite(s) if s.ndim == 1 else np.isfinite(s).all(axis=1)
    y, pred, s = y[ok], pred[ok], s[ok]
    if y.size < 4:
        raise ValueError("CBPE needs a reference with at least 4 labelled, scored rows")
    columns = s.reshape(-1, 1) if binary else s
    calibration: list[IsotonicMap | None] = []
    edges = []
    for c in range(columns.shape[1]):
        yc = y if binary else (y == c).astype(np.int64)
        cal = _isotonic(yc, columns[:, c]) if needs_calibration(yc, columns[:, c]) else None
        calibration.append(cal)
        edges.append(_score_edges(columns[:, c], cal, score_quantiles))
    sampling = (
        _binary_components(y, pred, s) if binary else _multiclass_components(y, pred, s, n_classes)
    )
    size = chunk_size or default_chunk_size(y.size)
    chunks = [_realized(y[c], pred[c], s[c], n_classes) for c in chunk_slices(y.size, size)]
    thresholds: dict[str, Thresholds] = {
        m: reference_thresholds(np.array([ch[m] for ch in chunks]), low=0.0, high=1.0)
        for m in CBPE_METRICS
    }
    return CBPEModel(n_classes, calibration, edges, sampling, thresholds, size)


# -- DLE ----------------------------------------------------------------------------------------


def export_trees(model: Any) -> TreeEnsemble:
    """A fitted ``HistGradientBoostingRegressor`` (squared-error loss, numerical splits) as a
    :class:`TreeEnsemble`."""
    nodes_list = [predictors[0].nodes for predictors in model._predictors]
    if any(n["is_categorical"].any() for n in nodes_list):
        raise ValueError("categorical splits are not exported; fit with numerical features")
    feature, threshold, missing, left, right, value, roots = [], [], [], [], [], [], []
    depth, offset = 0, 0
    for nodes in nodes_list:
        m = nodes.shape[0]
        own = np.arange(offset, offset + m, dtype=np.int64)
        leaf = nodes["is_leaf"].astype(bool)
        feature.append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
        threshold.append(np.where(leaf, 0.0, nodes["num_threshold"]))
        missing.append(nodes["missing_go_to_left"].astype(bool))
        left.append(np.where(leaf, own, nodes["left"].astype(np.int64) + offset))
        right.append(np.where(leaf, own, nodes["right"].astype(np.int64) + offset))
        value.append(np.where(leaf, nodes["value"], 0.0))
        roots.append(offset)
        depth = max(depth, int(nodes["depth"].max()))
        offset += m
    cat = np.concatenate
    return TreeEnsemble(
        feature=cat(feature) if feature else np.zeros(0, np.int64),
        threshold=cat(threshold) if threshold else np.zeros(0),
        missing_left=cat(missing) if missing else np.zeros(0, bool),
        left=cat(left) if left else np.zeros(0, np.int64),
        right=cat(right) if right else np.zeros(0, np.int64),
        value=cat(value) if value else np.zeros(0),
        roots=np.asarray(roots, dtype=np.int64),
        depth=depth,
        baseline=float(np.ravel(model._baseline_prediction)[0]),
    )


def fit_loss_model(rows: np.ndarray, target: np.ndarray, seed: int = 0) -> Any:
    """The error model: ``HistGradientBoostingRegressor`` with its defaults (100 iterations
    at most, 31 leaves, learning rate 0.1, early stopping on a 10% split above 10k rows)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(random_state=seed).fit(rows, target)


def fit_dle(
    rows: ArrayLike,
    y_true: ArrayLike,
    chunk_size: int | None = None,
    seed: int = 0,
    max_rows: int = MAX_FIT_ROWS,
) -> DirectLossModel:
    """DLE fitted on a labelled reference, as NannyML's ``DLE.fit``: ``rows`` are the features
    then the prediction (last column); one model of ``|y - y_hat|``, one of ``(y - y_hat)^2``;
    sampling components and thresholds (realized MAE/RMSE of reference chunks of
    ``chunk_size`` rows, default 10 chunks) from every labelled row. Rows whose label or
    prediction is NaN are left out."""
    x = np.asarray(rows, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] != y.size or x.shape[1] < 2:
        raise ValueError("rows must be (n, features + 1) with the prediction last, y (n,)")
    ok = np.isfinite(y) & np.isfinite(x[:, -1])
    if not ok.all():  # a copy of the rows only when some are left out (34 MB at 200k by 21)
        x, y = x[ok], y[ok]
    if y.size < 10:
        raise ValueError("DLE needs a reference with at least 10 labelled rows")
    err = y - x[:, -1]
    abs_e, sq_e = np.abs(err), err * err
    size = chunk_size or default_chunk_size(y.size)
    mae = np.array([abs_e[c].mean() for c in chunk_slices(y.size, size)])
    rmse = np.array([np.sqrt(sq_e[c].mean()) for c in chunk_slices(y.size, size)])
    thresholds: dict[str, Thresholds] = {
        "mae": reference_thresholds(mae, low=0.0),
        "rmse": reference_thresholds(rmse, low=0.0),
    }
    sampling = {"mae": float(np.std(abs_e)), "rmse": (float(np.std(sq_e)), float(np.mean(sq_e)))}
    fit_x, fit_abs, fit_sq = x, abs_e, sq_e
    if y.size > max_rows:
        pick = np.random.default_rng(seed).choice(y.size, max_rows, replace=False)
        fit_x, fit_abs, fit_sq = x[pick], abs_e[pick], sq_e[pick]
    return DirectLossModel(
        n_features=x.shape[1] - 1,
        abs_error=export_trees(fit_loss_model(fit_x, fit_abs, seed)),
        squared_error=export_trees(fit_loss_model(fit_x, fit_sq, seed)),
        sampling=sampling,
        thresholds=thresholds,
        chunk_size=size,
    )
