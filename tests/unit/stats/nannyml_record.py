"""Record NannyML 0.13.1's estimates on the seeded sets of ``tests/support/estimation_data.py``
into ``tests/unit/stats/nannyml_reference.json``, which ``test_stats_estimation_vs_nannyml.py``
compares our implementation with. Run in NannyML's own venv (not collected by pytest):

    bash bench/setup_nannyml_venv.sh
    .venv-nannyml/bin/python tests/unit/stats/nannyml_record.py

Per chunk of 5000 rows it keeps NannyML's value, sampling error, thresholds and alert for
CBPE (binary and multiclass: roc_auc, f1, precision, recall, accuracy), DLE (mae, rmse) and
DataReconstructionDriftCalculator, plus the realized values from the held-back labels.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # it would post usage to the internet
import nannyml as nml  # noqa: E402

from tests.support import estimation_data as data  # noqa: E402

OUT = Path(__file__).with_name("nannyml_reference.json")
CBPE_METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
FIELDS = ("value", "sampling_error", "realized", "lower_threshold", "upper_threshold", "alert")


def _clean(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.floating, float, np.integer, int)):
        return float(v)
    return v


def _columns(result_df: pd.DataFrame, metric: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in FIELDS:
        if (metric, f) in result_df.columns:
            out[f] = [_clean(v) for v in result_df[(metric, f)].tolist()]
    return out


def features_frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({f"f{i}": x[:, i] for i in range(x.shape[1])})


def cbpe_binary() -> dict[str, Any]:
    s = data.binary()
    ref = features_frame(s.x_ref).assign(y_true=s.y_ref, y_pred=s.pred_ref, y_score=s.score_ref)
    ana = features_frame(s.x).assign(y_true=s.y, y_pred=s.pred, y_score=s.score)
    est = nml.CBPE(
        y_pred_proba="y_score",
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_binary",
        metrics=CBPE_METRICS,
        chunk_size=s.chunk_rows,
    )
    est.fit(ref)
    df = est.estimate(ana).filter(period="analysis").to_df()
    calibrated = est.calibrator.calibrate(s.score[:1000]) if est.needs_calibration else None
    return {
        "fingerprint": data.fingerprint(s.x_ref, s.score_ref, s.x, s.score),
        "needs_calibration": bool(est.needs_calibration),
        "calibrated_first_1000": None if calibrated is None else np.asarray(calibrated).tolist(),
        "metrics": {m: _columns(df, m) for m in CBPE_METRICS},
    }


def cbpe_multiclass() -> dict[str, Any]:
    s = data.multiclass()
    classes = [str(c) for c in range(s.n_classes)]

    def frame(x, y, pred, score):
        df = features_frame(x).assign(
            y_true=[classes[i] for i in y], y_pred=[classes[i] for i in pred]
        )
        for c in range(s.n_classes):
            df[f"p{c}"] = score[:, c]
        return df

    est = nml.CBPE(
        y_pred_proba={c: f"p{c}" for c in classes},
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_multiclass",
        metrics=CBPE_METRICS,
        chunk_size=s.chunk_rows,
    )
    est.fit(frame(s.x_ref, s.y_ref, s.pred_ref, s.score_ref))
    df = est.estimate(frame(s.x, s.y, s.pred, s.score)).filter(period="analysis").to_df()
    needs = {c: type(cal).__name__ != "NoopCalibrator" for c, cal in est._calibrators.items()}
    return {
        "fingerprint": data.fingerprint(s.x_ref, s.score_ref, s.x, s.score),
        "needs_calibration": needs,
        "metrics": {m: _columns(df, m) for m in CBPE_METRICS},
    }


def dle() -> dict[str, Any]:
    s = data.regression()
    names = [f"f{i}" for i in range(s.x_ref.shape[1])]
    ref = features_frame(s.x_ref).assign(y_true=s.y_ref, y_pred=s.pred_ref)
    ana = features_frame(s.x).assign(y_true=s.y, y_pred=s.pred)
    est = nml.DLE(
        feature_column_names=names,
        y_pred="y_pred",
        y_true="y_true",
        metrics=["mae", "rmse"],
        chunk_size=s.chunk_rows,
    )
    est.fit(ref)
    df = est.estimate(ana).filter(period="analysis").to_df()
    return {
        "fingerprint": data.fingerprint(s.x_ref, s.y_ref, s.x, s.pred),
        "metrics": {m: _columns(df, m) for m in ("mae", "rmse")},
    }


def reconstruction() -> dict[str, Any]:
    s = data.multivariate()

    def frame(x, cat):
        return features_frame(x).assign(cat=pd.Series([s.categories[i] for i in cat], dtype=object))

    names = [f"f{i}" for i in range(s.x_ref.shape[1])] + ["cat"]
    calc = nml.DataReconstructionDriftCalculator(column_names=names, chunk_size=s.chunk_rows)
    calc.fit(frame(s.x_ref, s.cat_ref))
    df = calc.calculate(frame(s.x, s.cat)).filter(period="analysis").to_df()
    ref_df = calc.result.filter(period="reference").to_df()
    return {
        "fingerprint": data.fingerprint(s.x_ref, s.cat_ref, s.x, s.cat),
        "n_components": int(calc._pca.n_components_),
        "reference_values": [_clean(v) for v in ref_df[("reconstruction_error", "value")]],
        "metrics": {"reconstruction_error": _columns(df, "reconstruction_error")},
    }


def calibration_decisions() -> list[dict[str, Any]]:
    from nannyml.calibration import IsotonicCalibrator, needs_calibration

    out = []
    for seed, slope, rows in data.CALIBRATION_CASES:
        y, score = data.calibration_case(seed, slope, rows)
        decision = needs_calibration(pd.Series(y), pd.Series(score), IsotonicCalibrator())
        out.append({"seed": seed, "slope": slope, "rows": rows, "needs": bool(decision)})
    return out


def main() -> int:
    warnings.simplefilter("ignore")
    doc = {
        "nannyml": nml.__version__,
        "pandas": pd.__version__,
        "chunk_rows": data.CHUNK_ROWS,
        "cbpe_binary": cbpe_binary(),
        "cbpe_multiclass": cbpe_multiclass(),
        "dle": dle(),
        "reconstruction": reconstruction(),
        "needs_calibration_cases": calibration_decisions(),
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
