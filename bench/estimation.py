"""Cost of label-free estimation (CBPE, DLE) and multivariate drift (PCA reconstruction) at
20 features and 1M records, beside the ingest path and beside NannyML on the same data.

1. **Fit** on a 100k-row reference: ``fit_cbpe``, ``fit_dle`` (in process here; the worker
   runs them in a child), ``ReconstructionModel.fit``.
2. **Per-batch updates** (1000 records): ``CBPEState.update``, ``ReconstructionState.update``,
   the DLE sample (one more reservoir of features + prediction; an upper bound, since the
   worker can add the prediction column to the reservoir it already keeps), and, to show
   why DLE scores a sample, ``LossState.update`` of every record.
3. **Ingest A/B**: ``MonitorService.ingest_records`` on row-form bodies (as
   ``bench/ingest.py``'s in-process figure) alone, then followed by the estimation updates
   of the same batch, alternated ``--repeat`` times; the best run of each is compared.
4. **Window evaluation** at 1M records in 12 buckets: merging the bucket states and
   estimating; DLE scores each bucket's 2000-row sample (24k rows), compared with scoring
   all 1M records.
5. **NannyML** (``bench/nannyml_side.py`` in ``.venv-nannyml``, same arrays, the 1M records
   as one chunk): fit and estimate times, and its figures beside ours and the truth.

Run: ``.venv/bin/python bench/estimation.py`` (``--records 200000 --no-nannyml`` for a
quick look). Everything is pinned to core 0; check the load average printed at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import (
    ROOT,
    WORKER_CORE,
    batch_values,
    build_service,
    loadavg,
    log,
    pin,
    save_result,
    table,
    tempdir,
    worker_config,
    write_reference,
)
from ingest import Bodies

from monitor_worker.estimators import fit_cbpe, fit_dle
from monitor_worker.stats import cbpe as C
from monitor_worker.stats import dle as L
from monitor_worker.stats import reconstruction as R
from monitor_worker.stats.sketches import Reservoir

NANNYML_PYTHON = Path(os.environ.get("NANNYML_VENV", ROOT / ".venv-nannyml")) / "bin" / "python"


def make_data(n_ref: int, n_cur: int, d: int, seed: int = 3) -> dict[str, np.ndarray]:
    """Correlated features; a binary model with over-confident scores and a regressor with
    heteroscedastic noise; the current period shifted along the features' first direction."""
    rng = np.random.default_rng(seed)
    cov = 0.4 * np.ones((d, d)) + 0.6 * np.eye(d)
    chol = np.linalg.cholesky(cov)
    w = rng.normal(size=d) / np.sqrt(d)

    def period(n: int, shift: float) -> dict[str, np.ndarray]:
        x = rng.normal(size=(n, d)) @ chol.T
        x[:, :3] += shift
        z = x @ w - 0.3
        p = 1 / (1 + np.exp(-z))
        score = 1 / (1 + np.exp(-1.8 * z))
        f = 2.0 * x[:, 0] + np.sin(2 * x[:, 1]) + 0.5 * x[:, 2] ** 2
        return {
            "x": x,
            "y": (rng.random(n) < p).astype(np.int64),
            "score": score,
            "pred": (score >= 0.5).astype(np.int64),
            "target": f + rng.normal(size=n) * (0.3 + 0.6 * np.abs(x[:, 0])),
            "reg_pred": f + 0.3 * x[:, 2],
        }

    ref, cur = period(n_ref, 0.0), period(n_cur, 0.4)
    out = {f"{k}_ref": v for k, v in ref.items()}
    out.update(cur)
    return out


def per_call_us(fn, calls: int) -> float:
    t = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - t) / calls * 1e6


def fits(data: dict[str, np.ndarray], chunk: int) -> dict[str, Any]:
    t = time.perf_counter()
    cbpe = fit_cbpe(data["y_ref"], data["pred_ref"], data["score_ref"], 2, chunk_size=chunk)
    t_cbpe = time.perf_counter() - t
    t = time.perf_counter()
    dle = fit_dle(
        np.column_stack([data["x_ref"], data["reg_pred_ref"]]), data["target_ref"], chunk_size=chunk
    )
    t_dle = time.perf_counter() - t
    t = time.perf_counter()
    recon = R.ReconstructionModel.fit(
        data["x_ref"], np.zeros(data["x_ref"].shape[1], bool), chunk_size=chunk
    )
    t_recon = time.perf_counter() - t
    return {
        "models": (cbpe, dle, recon),
        "seconds": {"cbpe": t_cbpe, "dle": t_dle, "reconstruction": t_recon},
        "dle_trees": [int(dle.abs_error.roots.size), int(dle.squared_error.roots.size)],
        "dle_depth": [dle.abs_error.depth, dle.squared_error.depth],
        "cbpe_bins": int(cbpe.n_bins),
        "pca_components": recon.n_components,
    }


def update_costs(models, data, batch: int, batches: int, sample: int) -> dict[str, float]:
    cbpe, dle, recon = models
    x, pred, score = data["x"], data["pred"], data["score"]
    rows = np.column_stack([x, data["reg_pred"]])
    n = x.shape[0]

    def sl(i: int) -> slice:
        s = (i * batch) % (n - batch)
        return slice(s, s + batch)

    st_c, st_r = C.CBPEState(cbpe), R.ReconstructionState(recon)
    res = Reservoir(rows.shape[1], sample, seed=0)
    st_l = L.LossState(dle)
    return {
        "cbpe_update_us": per_call_us(lambda i: st_c.update(pred[sl(i)], score[sl(i)]), batches),
        "reconstruction_update_us": per_call_us(lambda i: st_r.update(x[sl(i)]), batches),
        "dle_sample_update_us": per_call_us(lambda i: res.update(rows[sl(i)]), batches),
        "dle_every_record_us": per_call_us(
            lambda i: st_l.update(rows[sl(i)]), max(5, batches // 20)
        ),
    }


def ingest_ab(models, features: int, reference: Path, repeat: int, batches: int) -> dict[str, Any]:
    """Records/s of MonitorService.ingest_records alone and followed by the estimation
    updates of the same batch (CBPE + reconstruction + the DLE sample reservoir)."""
    cbpe, _, recon = models
    cfg = worker_config(reference)
    service, _ = build_service(cfg)
    pool = 16
    bodies = Bodies("rows", pool, 1000, features)
    rng = np.random.default_rng(11)  # Bodies' seed: the same arrays its bodies were made of
    arrays = [batch_values(rng, 1000, features) for _ in range(pool)]
    st_c, st_r = C.CBPEState(cbpe), R.ReconstructionState(recon)
    res = Reservoir(features + 1, 2000, seed=0)
    for i in range(120):  # fill the pending-label store (100k), as in steady state
        bodies.in_process(service, i, "warm")

    def run(tag: str, with_estimation: bool) -> float:
        rendered = [bodies.templates[i % pool].render(f"{tag}-{i}") for i in range(batches)]
        t = time.perf_counter()
        for i, body in enumerate(rendered):
            service.ingest_records(body)
            if with_estimation:
                x, pred, score = arrays[i % pool]
                st_c.update(pred, score)
                st_r.update(x)
                res.update(np.column_stack([x, score]))  # stand-in for the prediction column
        return batches * 1000 / (time.perf_counter() - t)

    plain, estimating = [], []
    for rep in range(repeat):
        plain.append(run(f"a{rep}", False))
        estimating.append(run(f"b{rep}", True))
    best_plain, best_est = max(plain), max(estimating)
    return {
        "plain_records_per_s": best_plain,
        "with_estimation_records_per_s": best_est,
        "slowdown": 1 - best_est / best_plain,
        "runs_plain": plain,
        "runs_with_estimation": estimating,
    }


def window(models, data, buckets: int, sample: int) -> dict[str, Any]:
    """Stream the current period into ``buckets`` buckets, then time one evaluation."""
    cbpe, dle, recon = models
    x, pred, score = data["x"], data["pred"], data["score"]
    rows = np.column_stack([x, data["reg_pred"]])
    n = x.shape[0]
    parts = np.array_split(np.arange(n), buckets)
    states = []
    t = time.perf_counter()
    for k, idx in enumerate(parts):
        st_c, st_r = C.CBPEState(cbpe), R.ReconstructionState(recon)
        res = Reservoir(rows.shape[1], sample, seed=k)
        for s in range(idx[0], idx[-1] + 1, 1000):
            e = min(s + 1000, idx[-1] + 1)
            st_c.update(pred[s:e], score[s:e])
            st_r.update(x[s:e])
            res.update(rows[s:e])
        states.append((st_c, st_r, res))
    stream_s = time.perf_counter() - t

    t = time.perf_counter()
    total_c, total_r = C.CBPEState(cbpe), R.ReconstructionState(recon)
    for st_c, st_r, _ in states:
        total_c.merge(st_c)
        total_r.merge(st_r)
    cbpe_est = C.estimate_all(total_c)
    recon_est = R.estimate(total_r)
    t_cr = time.perf_counter() - t
    t = time.perf_counter()
    loss = L.LossState(dle)
    for (_, _, res), idx in zip(states, parts, strict=True):
        loss.merge(L.LossState.from_rows(dle, res.sample, n=idx.size))
    dle_est = L.estimate_all(loss)
    t_dle = time.perf_counter() - t
    t = time.perf_counter()
    exact = L.estimate_all(L.LossState.from_rows(dle, rows))
    t_exact = time.perf_counter() - t
    return {
        "stream_s": stream_s,
        "evaluate_cbpe_and_reconstruction_ms": t_cr * 1000,
        "evaluate_dle_sample_ms": t_dle * 1000,
        "dle_every_record_s": t_exact,
        "cbpe": {m: e.value for m, e in cbpe_est.items()},
        "cbpe_sampling_error": {m: e.sampling_error for m, e in cbpe_est.items()},
        "dle_sample": {m: e.value for m, e in dle_est.items()},
        "dle_sample_error": {m: L.sample_error(loss, m) for m in L.DLE_METRICS},
        "dle_every_record": {m: e.value for m, e in exact.items()},
        "reconstruction": None if recon_est is None else recon_est.value,
        "reconstruction_alert": None if recon_est is None else recon_est.alert,
        "state_bytes_per_bucket": {
            "cbpe": total_c.expected.nbytes + total_c.pos.nbytes + total_c.neg.nbytes,
            "reconstruction": 24,
            "dle_sample_reservoir": sample * rows.shape[1] * 8,
        },
    }


def truth(data: dict[str, np.ndarray]) -> dict[str, float]:
    from sklearn import metrics as skm

    y, pred, score = data["y"], data["pred"], data["score"]
    err = data["target"] - data["reg_pred"]
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc-auc": skm.roc_auc_score(y, score),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt(np.mean(err * err))),
    }


def nannyml(data: dict[str, np.ndarray], tmp: Path, chunk: int) -> dict[str, Any] | None:
    if not NANNYML_PYTHON.exists():
        log(f"no {NANNYML_PYTHON}: run bash bench/setup_nannyml_venv.sh (skipping NannyML)")
        return None
    path = tmp / "data.npz"
    np.savez(path, allow_pickle=False, **data)
    out = tmp / "nannyml.json"
    cmd = [
        str(NANNYML_PYTHON),
        str(ROOT / "bench" / "nannyml_side.py"),
        str(path),
        str(out),
        "--chunk-size",
        str(chunk),
    ]
    log("NannyML: " + " ".join(cmd[1:]))

    def preexec() -> None:
        os.sched_setaffinity(0, {WORKER_CORE})

    subprocess.run(cmd, check=True, preexec_fn=preexec, cwd=ROOT)
    import json

    return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--reference-rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--buckets", type=int, default=12)
    ap.add_argument("--sample", type=int, default=2000, help="DLE rows scored per bucket")
    ap.add_argument("--batches", type=int, default=400, help="timed 1000-record updates")
    ap.add_argument("--ingest-batches", type=int, default=200, help="per A/B run")
    ap.add_argument("--repeat", type=int, default=3, help="A/B runs (best of each)")
    ap.add_argument("--no-nannyml", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    pinned = pin(WORKER_CORE)
    log(f"pinned to core {pinned}; load {loadavg()}")
    data = make_data(args.reference_rows, args.records, args.features)
    chunk = max(args.reference_rows // 10, 1)
    fitted = fits(data, chunk)
    models = fitted.pop("models")
    log(f"fits: {fitted}")
    updates = update_costs(models, data, 1000, args.batches, args.sample)
    log(f"per 1000-record batch: {updates}")
    with tempdir("mm-bench-estimation-") as tmp:
        ref = write_reference(tmp / "reference.parquet", args.reference_rows, args.features)
        ab = ingest_ab(models, args.features, ref, args.repeat, args.ingest_batches)
        log(
            f"ingest A/B: {ab['plain_records_per_s']:,.0f} -> "
            f"{ab['with_estimation_records_per_s']:,.0f} records/s ({ab['slowdown']:.1%} slower)"
        )
        win = window(models, data, args.buckets, args.sample)
        log(f"window of {args.records:,} records: {win}")
        real = truth(data)
        side = None if args.no_nannyml else nannyml(data, tmp, chunk)
    ingest_us = 1e6 / ab["plain_records_per_s"] * 1000
    print()
    print(
        table(
            ["per 1000-record batch", "us", "share of ingest"],
            [
                ["ingest_records (rows form)", ingest_us, 1.0],
                ["CBPE update", updates["cbpe_update_us"], updates["cbpe_update_us"] / ingest_us],
                [
                    "reconstruction update",
                    updates["reconstruction_update_us"],
                    updates["reconstruction_update_us"] / ingest_us,
                ],
                [
                    "DLE sample (reservoir)",
                    updates["dle_sample_update_us"],
                    updates["dle_sample_update_us"] / ingest_us,
                ],
                [
                    "DLE, every record scored",
                    updates["dle_every_record_us"],
                    updates["dle_every_record_us"] / ingest_us,
                ],
            ],
        )
    )
    print()
    ours_cbpe, ours_dle = win["cbpe"], win["dle_sample"]
    rows = []

    def f(v: float | None) -> str:
        return "-" if v is None or v != v else f"{v:.5f}"

    for m in ("accuracy", "precision", "recall", "f1", "roc-auc"):
        theirs = side["cbpe"]["values"][m.replace("-", "_")] if side else None
        rows.append([m, f(ours_cbpe[m]), f(theirs), f(real[m]), f(win["cbpe_sampling_error"][m])])
    for m in ("mae", "rmse"):
        theirs = side["dle"]["values"][m] if side else None
        rows.append([m, f(ours_dle[m]), f(theirs), f(real[m]), f(win["dle_sample_error"][m])])
    theirs_r = side["reconstruction"]["value"] if side else None
    rows.append(["reconstruction error", f(win["reconstruction"]), f(theirs_r), "-", "-"])
    print(
        table(
            [
                f"{args.records:,}-record window",
                "ours",
                "NannyML",
                "truth",
                "ours: sampling / sample error",
            ],
            rows,
        )
    )
    print()
    time_rows = [
        ["CBPE fit", fitted["seconds"]["cbpe"], side["cbpe"]["fit_s"] if side else float("nan")],
        ["DLE fit", fitted["seconds"]["dle"], side["dle"]["fit_s"] if side else float("nan")],
        [
            "reconstruction fit",
            fitted["seconds"]["reconstruction"],
            side["reconstruction"]["fit_s"] if side else float("nan"),
        ],
        [
            "stream 1M records (ours) / estimate (NannyML): CBPE + reconstruction",
            win["stream_s"],
            (side["cbpe"]["estimate_s"] + side["reconstruction"]["estimate_s"])
            if side
            else float("nan"),
        ],
        [
            "evaluate window: CBPE + reconstruction",
            win["evaluate_cbpe_and_reconstruction_ms"] / 1000,
            float("nan"),
        ],
        [
            "evaluate window: DLE (ours: 12 x 2000-row samples)",
            win["evaluate_dle_sample_ms"] / 1000,
            side["dle"]["estimate_s"] if side else float("nan"),
        ],
        ["DLE every record of 1M (ours)", win["dle_every_record_s"], float("nan")],
    ]
    print(table(["seconds", "ours", "NannyML"], time_rows))
    save_result(
        "estimation",
        {
            "fits": fitted,
            "updates_us": updates,
            "ingest_ab": ab,
            "window": win,
            "truth": real,
            "nannyml": side,
            "args": vars(args),
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
