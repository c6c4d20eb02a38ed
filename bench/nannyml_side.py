"""NannyML's side of ``bench/estimation.py``: runs in ``.venv-nannyml`` on the arrays that
script saved, and writes NannyML's times and figures as JSON.

    .venv-nannyml/bin/python bench/nannyml_side.py DATA.npz OUT.json

The current period is one chunk (one window of all its records), the reference is chunked
like the worker's fit (``--chunk-size``). Times are ``fit`` and ``estimate``/``calculate``
only; the import (several seconds) and the DataFrame construction are reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # it would post usage to the internet

t_import = time.perf_counter()
import nannyml as nml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - t_import
METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]


def frame(x: np.ndarray, **extra: np.ndarray) -> pd.DataFrame:
    cols: dict[str, Any] = {f"f{j:02d}": x[:, j] for j in range(x.shape[1])}
    cols.update(extra)
    return pd.DataFrame(cols)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--chunk-size", type=int, required=True)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    d = np.load(args.data)
    n_cur = d["x"].shape[0]
    names = [f"f{j:02d}" for j in range(d["x"].shape[1])]
    result: dict[str, Any] = {"nannyml": nml.__version__, "import_s": IMPORT_SECONDS}

    t = time.perf_counter()
    ref = frame(d["x_ref"], y_true=d["y_ref"], y_pred=d["pred_ref"], y_score=d["score_ref"])
    cur = frame(d["x"], y_pred=d["pred"], y_score=d["score"])
    result["frames_s"] = time.perf_counter() - t
    cbpe = nml.CBPE(
        y_pred_proba="y_score",
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_binary",
        metrics=METRICS,
        chunk_size=args.chunk_size,
    )
    _, fit_s = timed(lambda: cbpe.fit(ref))
    cbpe.chunker = nml.chunk.SizeBasedChunker(chunk_size=n_cur)
    for m in cbpe.metrics:
        m.chunker = cbpe.chunker
    res, est_s = timed(lambda: cbpe.estimate(cur))
    df = res.filter(period="analysis").to_df()
    result["cbpe"] = {
        "fit_s": fit_s,
        "estimate_s": est_s,
        "values": {m: float(df[(m, "value")].iloc[0]) for m in METRICS},
        "sampling_error": {m: float(df[(m, "sampling_error")].iloc[0]) for m in METRICS},
    }

    ref_r = frame(d["x_ref"], y_true=d["target_ref"], y_pred=d["reg_pred_ref"])
    cur_r = frame(d["x"], y_pred=d["reg_pred"])
    dle = nml.DLE(
        feature_column_names=names,
        y_pred="y_pred",
        y_true="y_true",
        metrics=["mae", "rmse"],
        chunk_size=args.chunk_size,
        hyperparameters={"verbosity": -1},  # LightGBM's defaults, without its log lines
    )
    _, fit_s = timed(lambda: dle.fit(ref_r))
    dle.chunker = nml.chunk.SizeBasedChunker(chunk_size=n_cur)
    for m in dle.metrics:
        m.chunker = dle.chunker
    res, est_s = timed(lambda: dle.estimate(cur_r))
    df = res.filter(period="analysis").to_df()
    result["dle"] = {
        "fit_s": fit_s,
        "estimate_s": est_s,
        "values": {m: float(df[(m, "value")].iloc[0]) for m in ("mae", "rmse")},
    }

    calc = nml.DataReconstructionDriftCalculator(column_names=names, chunk_size=args.chunk_size)
    _, fit_s = timed(lambda: calc.fit(frame(d["x_ref"])))
    calc.chunker = nml.chunk.SizeBasedChunker(chunk_size=n_cur)
    res, est_s = timed(lambda: calc.calculate(frame(d["x"])))
    df = res.filter(period="analysis").to_df()
    result["reconstruction"] = {
        "fit_s": fit_s,
        "estimate_s": est_s,
        "value": float(df[("reconstruction_error", "value")].iloc[0]),
        "alert": bool(df[("reconstruction_error", "alert")].iloc[0]),
        "thresholds": [calc.lower_threshold_value, calc.upper_threshold_value],
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
