"""Cost of label-free estimation (CBPE, DLE) and multivariate drift (PCA reconstruction, domain
classifier) at 20 features and 1M records, in the worker and beside NannyML on the same data.

1. **Fit** on a 100k-row reference: ``fit_cbpe``, ``fit_dle`` (in process here; the worker
   runs them in a child), ``ReconstructionModel.fit``.
2. **Per-batch updates** of the bare states (1000 records): ``CBPEState.update``,
   ``ReconstructionState.update``, a reservoir of features + prediction (DLE's sample), and,
   to show why DLE scores a sample, ``LossState.update`` of every record.
3. **Ingest A/B, wired**: two real ``MonitorService``s on the same reference and the same
   row-form bodies (``bench/ingest.py``'s in-process figure): estimation off and no
   multivariate drift, against the defaults plus ``drift.multivariate`` (CBPE and PCA
   reconstruction on every record), alternated ``--repeat`` times, best run of each.
4. **Per window, wired**: 1M records posted (column form) into services over 12 buckets;
   ``window_summary`` (the merge, on the ingest thread) and ``evaluate`` (the evaluator
   thread) with estimation off, CBPE + PCA, CBPE + domain classifier, DLE (regression) + PCA.
   The difference to "off" is what estimation and multivariate drift cost per evaluation.
5. **NannyML** (``bench/nannyml_side.py`` in ``.venv-nannyml``, same arrays, the 1M records
   as one chunk): fit and estimate times, and its figures beside the worker's (from the wired
   services' evaluation of that window) and the truth.

Run: ``.venv/bin/python bench/estimation.py`` (``--records 200000 --no-nannyml`` for a
quick look). Everything is pinned to core 0; check the load average printed at the end.
"""

from __future__ import annotations

import os

# As the worker process (monitor_worker/__init__.py): one BLAS thread, before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from benchlib import (
    ROOT,
    WORKER_CORE,
    build_service,
    feature_names,
    loadavg,
    log,
    pin,
    save_result,
    table,
    tempdir,
    worker_config,
)
from ingest import Bodies

from monitor_worker.estimators import fit_cbpe, fit_dle
from monitor_worker.evaluate import Evaluation, _estimated_quality, _multivariate_drift
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


# -- the wired worker ------------------------------------------------------------------------

OFF = {"estimation": {"enabled": False}}
ON_PCA = {"drift": {"multivariate": {"method": "pca-reconstruction"}}}
ON_DC = {"drift": {"multivariate": {"method": "domain-classifier"}}}


def write_references(tmp: Path, data: dict[str, np.ndarray]) -> dict[str, Path]:
    """The bench data's reference as the worker reads it (parquet): a classifier's and a
    regressor's, the same 20 features (``f00``..)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = feature_names(data["x_ref"].shape[1])
    x = {n: data["x_ref"][:, j] for j, n in enumerate(names)}
    paths = {"classifier": tmp / "classifier.parquet", "regressor": tmp / "regressor.parquet"}
    pq.write_table(
        pa.table({**x, "label": data["y_ref"], "prediction": data["pred_ref"],
                  "score": data["score_ref"]}),
        paths["classifier"],
    )  # fmt: skip
    pq.write_table(
        pa.table({**x, "label": data["target_ref"], "prediction": data["reg_pred_ref"]}),
        paths["regressor"],
    )
    return paths


def service_config(reference: Path, sections: dict[str, Any], task: str = "binary-classification"):
    cfg = worker_config(reference, extra=sections)
    cfg["model"]["task"] = task
    if task == "regression":
        cfg["quality"] = {"thresholds": [{"metric": "mae", "max": 5.0}]}
        cfg["model"].pop("positiveClass", None)
    return cfg


def ingest_ab(reference: Path, features: int, repeat: int, batches: int) -> dict[str, Any]:
    """Records/s of ``MonitorService.ingest_records`` (row form) with estimation off and
    without multivariate drift (A) and with CBPE + PCA reconstruction (B), alternated."""
    built = {}
    for key, sections in (("off", OFF), ("on", ON_PCA)):
        service, seconds = build_service(service_config(reference, sections))
        built[key] = service
        log(f"service {key}: profile in {seconds:.2f}s, estimation "
            f"{service.profile.estimation.method}, multivariate "
            f"{service.profile.estimation.multivariate}")  # fmt: skip
    assert built["off"].profile.estimation.method is None
    assert built["on"].profile.estimation.method == "cbpe"
    pool = 16
    bodies = Bodies("rows", pool, 1000, features)
    for key, service in built.items():
        for i in range(120):  # fill the pending-label store (100k), as in steady state
            bodies.in_process(service, i, f"warm-{key}")

    def run(key: str, tag: str) -> tuple[float, float]:
        """(records per wall second, records per CPU second of this process)."""
        rendered = [bodies.templates[i % pool].render(f"{tag}-{i}") for i in range(batches)]
        service = built[key]
        t, c = time.perf_counter(), time.process_time()
        for body in rendered:
            service.ingest_records(body)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        return batches * 1000 / wall, batches * 1000 / cpu

    runs: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for rep in range(repeat):
        for key in ("off", "on") if rep % 2 == 0 else ("on", "off"):
            runs[key].append(run(key, f"{key}{rep}"))
    best = {k: (max(w for w, _ in v), max(c for _, c in v)) for k, v in runs.items()}
    cbpe_n = built["on"].window_summary().cbpe
    return {
        "plain_records_per_s": best["off"][0],
        "with_estimation_records_per_s": best["on"][0],
        "slowdown": 1 - best["on"][0] / best["off"][0],
        # CPU time of this process: what other work on the machine changes least
        "plain_records_per_cpu_s": best["off"][1],
        "with_estimation_records_per_cpu_s": best["on"][1],
        "slowdown_cpu": 1 - best["on"][1] / best["off"][1],
        "runs_plain": runs["off"],
        "runs_with_estimation": runs["on"],
        "cbpe_records_in_window": cbpe_n.n if cbpe_n is not None else 0,
    }


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def column_bodies(data: dict[str, np.ndarray], regression: bool, batch: int = 1000):
    """The current period as column-form bodies (serialised one at a time)."""
    x = data["x"]
    names = feature_names(x.shape[1])
    for lo in range(0, x.shape[0], batch):
        sl = slice(lo, lo + batch)
        cols: dict[str, Any] = {n: np.ascontiguousarray(x[sl, j]) for j, n in enumerate(names)}
        if regression:
            cols["prediction"] = data["reg_pred"][sl]
        else:
            cols["prediction"] = data["pred"][sl]
            cols["score"] = data["score"][sl]
        yield orjson.dumps({"columns": cols}, option=orjson.OPT_SERIALIZE_NUMPY)


def window(
    reference: Path, sections: dict[str, Any], data: dict[str, np.ndarray], buckets: int,
    task: str = "binary-classification", repeat: int = 3,
) -> dict[str, Any]:  # fmt: skip
    """Post the current period into a service over ``buckets`` buckets, then time the merge
    and the evaluation (best of ``repeat``)."""
    cfg = service_config(reference, sections, task)
    cfg["window"] = {"size": "1h", "buckets": buckets, "evaluationInterval": "30s"}
    clock = Clock(1_700_000_000.0)
    service, built = build_service(cfg, clock=clock)
    n = data["x"].shape[0]
    per_bucket = -(-n // 1000 // buckets)
    width = service.state.width
    t = time.perf_counter()
    for i, body in enumerate(column_bodies(data, task == "regression")):
        clock.t = 1_700_000_000.0 + (i // per_bucket) * width
        service.ingest_records(body)
    stream_s = time.perf_counter() - t
    merges, evaluations, estimation, multivariate = [], [], [], []
    ev = None
    for _ in range(repeat):
        t = time.perf_counter()
        summary = service.window_summary()
        merges.append(time.perf_counter() - t)
        t = time.perf_counter()
        ev = service.evaluate(summary)
        evaluations.append(time.perf_counter() - t)
        # the two steps estimation adds to an evaluation, alone (on a fresh Evaluation)
        scratch = Evaluation(at=ev.at, features=ev.features)
        t = time.perf_counter()
        _estimated_quality(service.config, service.profile, summary, scratch)
        estimation.append(time.perf_counter() - t)
        t = time.perf_counter()
        _multivariate_drift(service.config, service.profile, summary, scratch)
        multivariate.append(time.perf_counter() - t)
    assert ev is not None and ev.records == n, (ev.records if ev else None, n)
    cbpe_state = summary.cbpe
    return {
        "profile_s": built,
        "stream_s": stream_s,
        "merge_ms": min(merges) * 1000,
        "evaluate_ms": min(evaluations) * 1000,
        "estimation_ms": min(estimation) * 1000,
        "multivariate_ms": min(multivariate) * 1000,
        "cbpe_state_bytes": (
            cbpe_state.expected.nbytes + cbpe_state.pos.nbytes + cbpe_state.neg.nbytes
            if cbpe_state is not None
            else 0
        ),
        "estimated": {m: e.value for m, e in ev.estimated.items()},
        "sampling_error": {m: e.sampling_error for m, e in ev.estimated.items()},
        "sample_error": {m: e.sample_error for m, e in ev.estimated.items()},
        "outside_band": {m: e.outside_band for m, e in ev.estimated.items()},
        "multivariate": None
        if ev.multivariate is None
        else {
            "method": ev.multivariate.method,
            "value": ev.multivariate.value,
            "drifted": ev.multivariate.drifted,
            "upper_threshold": ev.multivariate.upper_threshold,
        },
        "violations": sorted({v.alert for v in ev.violations}),
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
    ap.add_argument("--sample", type=int, default=2000, help="DLE rows scored (bare states)")
    ap.add_argument("--batches", type=int, default=400, help="timed 1000-record updates")
    ap.add_argument("--ingest-batches", type=int, default=200, help="per A/B run")
    ap.add_argument("--repeat", type=int, default=5, help="A/B runs (best of each)")
    ap.add_argument("--no-nannyml", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    pinned = pin(WORKER_CORE)
    load_start = loadavg()
    log(f"pinned to core {pinned}; load {load_start}")
    data = make_data(args.reference_rows, args.records, args.features)
    chunk = max(args.reference_rows // 10, 1)
    fitted = fits(data, chunk)
    models = fitted.pop("models")
    log(f"fits: {fitted}")
    updates = update_costs(models, data, 1000, args.batches, args.sample)
    log(f"per 1000-record batch (bare states): {updates}")
    windows: dict[str, Any] = {}
    with tempdir("mm-bench-estimation-") as tmp:
        refs = write_references(tmp, data)
        ab = ingest_ab(refs["classifier"], args.features, args.repeat, args.ingest_batches)
        log(
            f"ingest A/B (wired): {ab['plain_records_per_s']:,.0f} -> "
            f"{ab['with_estimation_records_per_s']:,.0f} records/s ({ab['slowdown']:.1%} slower)"
        )
        for key, ref, sections, task in (
            ("off", refs["classifier"], OFF, "binary-classification"),
            ("cbpe+pca", refs["classifier"], ON_PCA, "binary-classification"),
            ("cbpe+domain-classifier", refs["classifier"], ON_DC, "binary-classification"),
            ("regressor off", refs["regressor"], OFF, "regression"),
            ("dle+pca", refs["regressor"], ON_PCA, "regression"),
        ):
            windows[key] = window(ref, sections, data, args.buckets, task)
            w = windows[key]
            log(f"window {key}: merge {w['merge_ms']:.1f} ms, evaluate {w['evaluate_ms']:.1f} ms, "
                f"stream {w['stream_s']:.1f}s; {w['estimated']} {w['multivariate']}")  # fmt: skip
        real = truth(data)
        side = None if args.no_nannyml else nannyml(data, tmp, chunk)
    ingest_us = 1e6 / ab["plain_records_per_s"] * 1000
    print()
    print(
        table(
            ["per 1000-record batch (bare states)", "us", "share of ingest"],
            [
                ["ingest_records (rows form, estimation off)", ingest_us, 1.0],
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
    print(
        table(
            ["ingest, in process (rows form)", "records/s", "slower", "records/CPU-s", "slower"],
            [
                ["estimation off, no multivariate drift", ab["plain_records_per_s"], "-",
                 ab["plain_records_per_cpu_s"], "-"],
                ["CBPE + PCA reconstruction (defaults + drift.multivariate)",
                 ab["with_estimation_records_per_s"], f"{ab['slowdown']:.1%}",
                 ab["with_estimation_records_per_cpu_s"], f"{ab['slowdown_cpu']:.1%}"],
            ],
        )
    )  # fmt: skip
    print()
    rows = [
        [key, w["merge_ms"], w["evaluate_ms"], w["estimation_ms"], w["multivariate_ms"]]
        for key, w in windows.items()
    ]
    print(table([f"window of {args.records:,} records in {args.buckets} buckets", "merge ms",
                 "evaluate ms (all)", "of which estimation ms", "multivariate ms"], rows))  # fmt: skip
    print()
    ours_cbpe, ours_dle = windows["cbpe+pca"], windows["dle+pca"]
    rows = []

    def f(v: float | None) -> str:
        return "-" if v is None or v != v else f"{v:.5f}"

    for m in ("accuracy", "precision", "recall", "f1", "roc-auc"):
        theirs = side["cbpe"]["values"][m.replace("-", "_")] if side else None
        rows.append([m, f(ours_cbpe["estimated"][m]), f(theirs), f(real[m]),
                     f(ours_cbpe["sampling_error"][m])])  # fmt: skip
    for m in ("mae", "rmse"):
        theirs = side["dle"]["values"][m] if side else None
        err = f"{f(ours_dle['sampling_error'][m])} / {f(ours_dle['sample_error'][m])}"
        rows.append([m, f(ours_dle["estimated"][m]), f(theirs), f(real[m]), err])
    theirs_r = side["reconstruction"]["value"] if side else None
    mv = ours_cbpe["multivariate"]
    rows.append(["reconstruction error", f(mv["value"] if mv else None), f(theirs_r), "-", "-"])
    print(table([f"{args.records:,}-record window (the worker, wired)", "ours", "NannyML",
                 "truth", "ours: sampling / sample error"], rows))  # fmt: skip
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
            "worker profile with CBPE + PCA (child-process fit included)",
            windows["cbpe+pca"]["profile_s"],
            float("nan"),
        ],
        [
            "CBPE + reconstruction on the window (ours: merge + evaluate; NannyML: estimate + calculate)",
            (windows["cbpe+pca"]["merge_ms"] + windows["cbpe+pca"]["evaluate_ms"]) / 1000,
            (side["cbpe"]["estimate_s"] + side["reconstruction"]["estimate_s"])
            if side
            else float("nan"),
        ],
        [
            "DLE on the window (ours: merge + evaluate, a 2000-row sample; NannyML: all records)",
            (windows["dle+pca"]["merge_ms"] + windows["dle+pca"]["evaluate_ms"]) / 1000,
            side["dle"]["estimate_s"] if side else float("nan"),
        ],
    ]
    print(table(["seconds", "ours", "NannyML"], time_rows))
    load_end = loadavg()
    print(f"\nload average: {load_start} at start, {load_end} at the end")
    save_result(
        "estimation",
        {
            "fits": fitted,
            "updates_us": updates,
            "ingest_ab": ab,
            "windows": windows,
            "truth": real,
            "nannyml": side,
            "args": vars(args),
            "load": [load_start, load_end],
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
