"""Our CBPE, DLE and reconstruction drift against NannyML 0.13.1's numbers on the same seeded
data, recorded by ``nannyml_record.py`` (run in NannyML's venv) into
``nannyml_reference.json``. Each analysis chunk of 5000 rows is one window, fed in batches of
1000 rows as the worker would. Tolerances (measured differences in brackets):

* CBPE accuracy, precision, recall, F1: 1e-9 absolute [< 2e-15]: the same sums.
* CBPE ROC-AUC: 1e-5 binary [4e-9], 2e-5 multiclass [4e-6]: binned scores (see cbpe.py).
* sampling errors and thresholds: 1e-9 relative [exact]: the same formulas.
* DLE MAE and RMSE: 1.5% relative [1.0%]: HistGradientBoosting instead of LightGBM.
* reconstruction error, its sampling error and thresholds: 1e-9 relative [3e-14].
* every alert decision: identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor_worker.estimators import fit_cbpe, fit_dle, needs_calibration
from monitor_worker.stats import cbpe as C
from monitor_worker.stats import dle as L
from monitor_worker.stats import reconstruction as R
from monitor_worker.stats.bands import Estimate
from tests.support import estimation_data as data

RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).with_name("nannyml_reference.json")).read_text()
)
NAMES = {"roc-auc": "roc_auc"}
BATCH = 1000


def chunks(n: int, size: int):
    return [slice(s, s + size) for s in range(0, n, size)]


def compare(ours: list[Estimate | None], theirs: dict[str, list], tol: float, rel: bool) -> None:
    assert len(ours) == len(theirs["value"])
    for i, e in enumerate(ours):
        assert e is not None
        expected = theirs["value"][i]
        assert abs(e.value - expected) <= (tol * abs(expected) if rel else tol), ("value", i)
        assert e.sampling_error == pytest.approx(theirs["sampling_error"][i], rel=1e-9)
        for side in ("lower", "upper"):
            expected = theirs[f"{side}_threshold"][i]
            got = getattr(e.thresholds, side)
            assert (got is None) == (expected is None), (side, i)
            if expected is not None:
                assert got == pytest.approx(expected, rel=1e-9), (side, i)
        assert e.alert == theirs["alert"][i], ("alert", i, e.value)


def cbpe_windows(s: data.ClassificationSet) -> tuple[C.CBPEModel, list[C.CBPEState]]:
    model = fit_cbpe(s.y_ref, s.pred_ref, s.score_ref, s.n_classes, chunk_size=s.chunk_rows)
    states = []
    for c in chunks(s.y.size, s.chunk_rows):
        st = C.CBPEState(model)
        for b in chunks(c.stop - c.start, BATCH):
            rows = slice(c.start + b.start, c.start + b.stop)
            st.update(s.pred[rows], s.score[rows])
        states.append(st)
    return model, states


@pytest.mark.parametrize(
    ("key", "make", "auc_tol"),
    [("cbpe_binary", data.binary, 1e-5), ("cbpe_multiclass", data.multiclass, 2e-5)],
)
def test_cbpe_agrees_with_nannyml(key, make, auc_tol):
    recorded = RECORDED[key]
    s = make()
    assert data.fingerprint(s.x_ref, s.score_ref, s.x, s.score) == pytest.approx(
        recorded["fingerprint"], rel=1e-12
    ), "the generator no longer makes the recorded data: re-run nannyml_record.py"
    model, states = cbpe_windows(s)
    calibrated = [m is not None for m in model.calibration]
    expected = recorded["needs_calibration"]
    assert calibrated == ([expected] if isinstance(expected, bool) else list(expected.values()))
    for metric in C.CBPE_METRICS:
        estimates = [C.estimate(st, metric) for st in states]
        assert all(e is not None for e in estimates)
        tol = auc_tol if metric == "roc-auc" else 1e-9
        compare(estimates, recorded["metrics"][NAMES.get(metric, metric)], tol, rel=False)


def test_calibrated_probabilities_equal_nannyml():
    s = data.binary()
    model, _ = cbpe_windows(s)
    ours = model.calibrate(model.scores_matrix(s.score[:1000], 1000))[:, 1]
    np.testing.assert_allclose(ours, RECORDED["cbpe_binary"]["calibrated_first_1000"], atol=1e-12)


def test_cbpe_estimates_and_nannyml_lie_near_the_realized_values():
    """Both tools near the truth from the held-back labels: accuracy, F1 and ROC-AUC within
    3 sampling errors + 0.01 in every chunk (NannyML's realized values are ours: sklearn)."""
    for key, make in (("cbpe_binary", data.binary), ("cbpe_multiclass", data.multiclass)):
        _, states = cbpe_windows(make())
        for metric in ("accuracy", "f1", "roc-auc"):
            rec = RECORDED[key]["metrics"][NAMES.get(metric, metric)]
            for i, st in enumerate(states):
                e = C.estimate(st, metric)
                assert e is not None
                slack = 3 * e.sampling_error + 0.01
                assert abs(e.value - rec["realized"][i]) <= slack, (key, metric, i)
                assert abs(rec["value"][i] - rec["realized"][i]) <= slack, (key, metric, i)


def test_dle_agrees_with_nannyml():
    recorded = RECORDED["dle"]
    s = data.regression()
    assert data.fingerprint(s.x_ref, s.y_ref, s.x, s.pred) == pytest.approx(
        recorded["fingerprint"], rel=1e-12
    )
    model = fit_dle(np.column_stack([s.x_ref, s.pred_ref]), s.y_ref, chunk_size=s.chunk_rows)
    rows = np.column_stack([s.x, s.pred])
    states = [L.LossState.from_rows(model, rows[c]) for c in chunks(s.y.size, s.chunk_rows)]
    for metric in L.DLE_METRICS:
        estimates = [L.estimate(st, metric) for st in states]
        compare(estimates, recorded["metrics"][metric], 0.015, rel=True)
        # and near the truth: within 3 sampling errors + 2%
        for e, real in zip(estimates, recorded["metrics"][metric]["realized"], strict=True):
            assert e is not None
            assert abs(e.value - real) <= 3 * e.sampling_error + 0.02 * real


def test_reconstruction_drift_agrees_with_nannyml():
    recorded = RECORDED["reconstruction"]
    s = data.multivariate()
    assert data.fingerprint(s.x_ref, s.cat_ref, s.x, s.cat) == pytest.approx(
        recorded["fingerprint"], rel=1e-12
    )
    cat = np.r_[np.zeros(s.x_ref.shape[1], bool), True]
    model = R.ReconstructionModel.fit(
        np.column_stack([s.x_ref, s.cat_ref]), cat, chunk_size=s.chunk_rows
    )
    assert model.n_components == recorded["n_components"]
    np.testing.assert_allclose(model.reference_values, recorded["reference_values"], rtol=1e-9)
    rows = np.column_stack([s.x, s.cat])
    estimates = []
    for c in chunks(s.x.shape[0], s.chunk_rows):
        st = R.ReconstructionState(model)
        for b in chunks(c.stop - c.start, BATCH):
            st.update(rows[c.start + b.start : c.start + b.stop])
        estimates.append(R.estimate(st))
    compare(estimates, recorded["metrics"]["reconstruction_error"], 1e-9, rel=True)
    alerts = [e.alert for e in estimates if e is not None]
    assert alerts == [False] * 5 + [True] * 5  # only the decorrelated half drifts


def test_needs_calibration_decides_as_nannyml_on_near_calibrated_scores():
    """Small sets whose scores are close to calibrated, where the decision goes both ways."""
    cases = RECORDED["needs_calibration_cases"]
    decisions = [
        needs_calibration(*data.calibration_case(c["seed"], c["slope"], c["rows"])) for c in cases
    ]
    assert decisions == [c["needs"] for c in cases]
    assert len(set(decisions)) == 2
