"""The models scikit-learn fits are fitted apart from the reading of the reference: what they
are fitted on pickles, is fitted in a process that never imports pyarrow, and gives the
profile :func:`build_profile` gives."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mm_api.worker_config import parse_config
from monitor_worker.estimation import CbpeFit
from monitor_worker.profile import build_profile, profile_and_fits
from monitor_worker.reference import load_reference

ROOT = Path(__file__).resolve().parents[3]

FIT_APART = """
import pickle, sys
fits = pickle.load(open(sys.argv[1], "rb"))
fitted = fits.run()
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"pyarrow", "sklearn"})
pickle.dump((fitted, loaded), open(sys.argv[2], "wb"))
"""


def test_the_fits_run_where_pyarrow_is_never_imported(tmp_path):
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=(n, 2))
    score = 1 / (1 + np.exp(-2 * x[:, 0]))  # overconfident: CBPE calibrates
    path = tmp_path / "ref.parquet"
    pq.write_table(
        pa.table(
            {
                "f0": x[:, 0],
                "f1": x[:, 1],
                "prediction": (score > 0.5).astype(np.int64),
                "score": score,
                "label": (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(np.int64),
            }
        ),
        path,
    )
    config = parse_config(
        {
            "monitor": {"name": "m", "namespace": "ml"},
            "model": {"name": "m", "task": "binary-classification", "positiveClass": "1"},
            "data": {"reference": {"path": str(path)}},
            "outliers": {"enabled": True},
            "estimation": {"enabled": True, "chunkSize": 500},
        }
    )
    assert config.data.reference is not None
    reference = load_reference(config.data.reference)
    profile, fits = profile_and_fits(config, reference)
    assert profile.detector is None and profile.estimation.cbpe is None
    assert fits.outliers is not None and isinstance(fits.estimator, CbpeFit)

    (tmp_path / "fits.pkl").write_bytes(pickle.dumps(fits))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", FIT_APART, str(tmp_path / "fits.pkl"), str(tmp_path / "out.pkl")],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    fitted, loaded = pickle.loads((tmp_path / "out.pkl").read_bytes())
    assert loaded == ["sklearn"]  # scikit-learn fitted, and pyarrow was never imported
    fits.apply(profile, fitted)

    whole = build_profile(config, reference)
    assert profile.fingerprint == whole.fingerprint
    assert profile.detector is not None and whole.detector is not None
    rows = rng.normal(size=(500, 2))
    np.testing.assert_array_equal(
        profile.detector.outlier_flags(rows), whole.detector.outlier_flags(rows)
    )
    apart, here = profile.estimation.cbpe, whole.estimation.cbpe
    assert apart is not None and here is not None
    for a, b in zip(apart.calibration, here.calibration, strict=True):
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
