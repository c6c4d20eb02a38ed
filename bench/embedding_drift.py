"""Embedding drift evaluation time: reference n x 384 against current n x 384 (seeded Gaussian
vectors, the current shifted by 0.05 on a quarter of the coordinates), for each method:

* ``domain-classifier`` with the ``numpy`` backend (logistic regression, in process),
* ``domain-classifier`` with the ``sklearn`` backend (Evidently's SGDClassifier in a spawned
  child process: start-up and the copy of both samples included),
* ``mmd`` (each side subsampled to 1000 rows, 100 permutations; the reference's kernel block
  prepared once, timed apart as "prepare"),
* Evidently 0.7.23's ``EmbeddingsDrift`` (default method) in the bench venv, when present.

Run from the repository root with the project's venv (scikit-learn needed for the sklearn
backend):

    .venv/bin/python bench/embedding_drift.py [--sizes 1000 2000 5000 10000] [--out ...]

Pinned to core 0 with one BLAS thread (OPENBLAS_NUM_THREADS=1 is set before numpy loads);
wall and CPU time of the best of ``--repeat`` runs. CPU time of the sklearn backend is the
parent's only, so compare its wall time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import benchlib
import numpy as np
from benchlib import log, table

from monitor_worker.stats import embedding as E

EVIDENTLY_SIDE = """
import json, sys, time
import numpy as np, pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import EmbeddingsDrift
d = sys.argv[1]
ref, cur = np.load(d + "/ref.npy"), np.load(d + "/cur.npy")
cols = [f"e{i}" for i in range(ref.shape[1])]
definition = DataDefinition(numerical_columns=cols, embeddings={"vec": cols})
r = Dataset.from_pandas(pd.DataFrame(ref, columns=cols), data_definition=definition)
c = Dataset.from_pandas(pd.DataFrame(cur, columns=cols), data_definition=definition)
t, p = time.perf_counter(), time.process_time()
snap = Report([EmbeddingsDrift(embeddings_name="vec")]).run(current_data=c, reference_data=r)
wall, cpu = time.perf_counter() - t, time.process_time() - p
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "score": snap.dict()["metrics"][0]["value"]}))
"""


def timed(fn, repeat: int) -> tuple[float, float, object]:
    best_wall, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best_wall, best_cpu, out


def evidently(ref: np.ndarray, cur: np.ndarray) -> dict | None:
    py = benchlib.BENCH_VENV_PYTHON
    if not py.exists():
        return None
    with benchlib.tempdir("emb-drift-") as d:
        np.save(d / "ref.npy", ref)
        np.save(d / "cur.npy", cur)
        env = dict(os.environ)
        out = subprocess.run(
            ["taskset", "-c", "0", str(py), "-c", EVIDENTLY_SIDE, str(d)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if out.returncode != 0:
        log(f"evidently side failed: {out.stderr[-500:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    benchlib.pin(benchlib.WORKER_CORE)
    rows, results = [], []
    for n in args.sizes:
        rng = np.random.default_rng(n)
        ref = rng.normal(size=(n, args.dim))
        cur = rng.normal(size=(n, args.dim))
        cur[:, : args.dim // 4] += 0.05
        log(f"{n} x {args.dim} against {n} x {args.dim} ...")
        rec: dict = {"n": n, "dim": args.dim}
        w, c, res = timed(lambda r=ref, x=cur: E.domain_classifier_drift(r, x), args.repeat)
        rec["classifier_numpy"] = {
            "wall_s": w,
            "cpu_s": c,
            "auc": res.score,
            "drifted": res.drifted,
        }
        w, c, res = timed(
            lambda r=ref, x=cur: E.domain_classifier_drift(r, x, backend="sklearn"), 1
        )
        rec["classifier_sklearn"] = {
            "wall_s": w,
            "cpu_s": c,
            "auc": res.score,
            "drifted": res.drifted,
        }
        wp, _, prepared = timed(lambda r=ref: E.MMDReference(r), 1)
        w, c, res = timed(lambda p=prepared, x=cur: E.mmd_drift(p, x), args.repeat)
        rec["mmd"] = {
            "prepare_wall_s": wp,
            "wall_s": w,
            "cpu_s": c,
            "p_value": res.p_value,
            "drifted": res.drifted,
            "rows_per_side": res.n_current,
        }
        ev = None if args.no_evidently else evidently(ref, cur)
        rec["evidently"] = ev
        results.append(rec)
        log(json.dumps(rec))
        rows.append(
            [
                n,
                rec["classifier_numpy"]["wall_s"],
                rec["classifier_numpy"]["cpu_s"],
                rec["classifier_numpy"]["auc"],
                rec["classifier_sklearn"]["wall_s"],
                rec["classifier_sklearn"]["auc"],
                rec["mmd"]["wall_s"],
                rec["mmd"]["p_value"],
                ev["wall_s"] if ev else float("nan"),
                ev["score"] if ev else float("nan"),
            ]
        )
    print(
        table(
            [
                "rows per side",
                "numpy clf s",
                "numpy clf CPU s",
                "numpy AUC",
                "sklearn child s",
                "sklearn AUC",
                "MMD s",
                "MMD p",
                "Evidently s",
                "Evidently AUC",
            ],
            rows,
        )
    )
    benchlib.save_result("embedding_drift", {"results": results}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
