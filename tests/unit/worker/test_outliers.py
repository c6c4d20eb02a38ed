"""The worker's numpy scoring of the fitted detectors equals scikit-learn's own predictions,
on seeded data with inliers, outliers and categorical codes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from mm_api.sections import OutlierSpec
from monitor_worker.outliers import OutlierDetector


def data(seed: int, n: int = 3000, d: int = 6):
    rng = np.random.default_rng(seed)
    ref = np.column_stack([rng.normal(size=(n, d - 1)), rng.integers(0, 5, n)])
    cur = np.column_stack([rng.normal(0.3, 1.5, size=(1500, d - 1)), rng.integers(0, 7, 1500)])
    cur[:40, 0] = 12.0  # clear outliers
    return ref, cur


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_isolation_forest_flags_equal_sklearn_predict(seed):
    ref, cur = data(seed)
    detector = OutlierDetector.fit(OutlierSpec(contamination=0.02), ref, seed=seed)
    forest = IsolationForest(n_estimators=100, contamination=0.02, random_state=seed, n_jobs=1).fit(
        ref
    )
    expected = forest.predict(cur) == -1
    np.testing.assert_array_equal(detector.outlier_flags(cur), expected)
    np.testing.assert_allclose(
        detector.model.score_samples(cur), forest.score_samples(cur), rtol=1e-12
    )
    assert expected[:40].mean() > expected[40:].mean()  # the planted outliers stand out


def test_one_class_svm_flags_equal_sklearn_predict():
    ref, cur = data(3, n=1500)
    detector = OutlierDetector.fit(OutlierSpec(method="one-class-svm", contamination=0.05), ref)
    scaler = StandardScaler().fit(ref)
    svm = OneClassSVM(nu=0.05, gamma="scale").fit(scaler.transform(ref))
    x = scaler.transform(cur)
    np.testing.assert_allclose(
        detector.model.decision(x), svm.decision_function(x), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_array_equal(detector.outlier_flags(cur), svm.predict(x) == -1)


def test_missing_values_take_the_reference_median():
    ref, _ = data(4)
    detector = OutlierDetector.fit(OutlierSpec(), ref)
    row = np.array([[np.nan, 0.0, 0.0, 0.0, 0.0, np.nan]])
    filled = np.where(np.isnan(row), detector.medians, row)
    assert detector.outlier_flags(row)[0] == detector.outlier_flags(filled)[0]


def test_serving_does_not_import_sklearn():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from mm_api.sections import OutlierSpec\n"
        "from monitor_worker.outliers import OutlierDetector\n"
        "d = OutlierDetector.fit(OutlierSpec(), np.random.default_rng(0).normal(size=(500, 3)))\n"
        "d.outlier_flags(np.zeros((5, 3)))\n"
        "print(any(m.startswith('sklearn') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
