"""Fitting runs in a child process and the serving side never imports scikit-learn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from monitor_worker.child import in_child
from monitor_worker.estimators import fit_cbpe
from monitor_worker.stats import cbpe as C

ROOT = Path(__file__).resolve().parents[3]


def test_scoring_modules_do_not_import_sklearn():
    code = (
        "import sys\n"
        "import monitor_worker.estimators, monitor_worker.estimation_checks\n"
        "import monitor_worker.stats.cbpe, monitor_worker.stats.dle\n"
        "import monitor_worker.stats.reconstruction\n"
        "assert not [m for m in sys.modules if m.startswith('sklearn')], 'sklearn imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def test_a_fit_in_a_child_equals_the_fit_in_process():
    """One spawned child (a second would only repeat the start-up: DLE's numpy model is
    checked against scikit-learn in test_stats_dle.py)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4000, 3))
    p = 1 / (1 + np.exp(-2 * x[:, 0]))
    y = (rng.random(4000) < 1 / (1 + np.exp(-x[:, 0]))).astype(np.int64)
    pred = (p > 0.5).astype(np.int64)
    here = fit_cbpe(y, pred, p, 2)
    there = in_child(fit_cbpe, y, pred, p, 2)
    st_here, st_there = C.CBPEState(here), C.CBPEState(there)
    st_here.update(pred, p)
    st_there.update(pred, p)
    assert C.estimate_all(st_here) == C.estimate_all(st_there)
    for a, b in zip(here.calibration, there.calibration, strict=True):
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.x, b.x)
