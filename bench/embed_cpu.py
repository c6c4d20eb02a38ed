"""Text features on one CPU core: descriptors alone, and descriptors plus embedding with each
runtime (numpy forward pass, sentence-transformers/torch); texts/s and worker memory with the
model loaded.

Run with the text venv (scripts/setup-text.sh):

    .venv-text/bin/python bench/embed_cpu.py [--texts 2000] [--out bench/results/embed_cpu.json]

The last row loads the numpy runtime into a process that first imported the serving worker's
modules (``monitor_worker.main``, ``monitor_worker.server``): a worker's memory with the model.
Each runtime runs in a fresh child process pinned to core 0 with one thread
(``torch.set_num_threads(1)``; OPENBLAS/OMP/MKL_NUM_THREADS=1 for numpy), so its memory is its
own: RSS after importing the worker's modules (the floor), after loading the model, and the
peak after embedding. Throughput is texts per CPU-second of the child (less disturbed by other
work on this shared machine than wall time, which is reported too). The texts are the seeded
review-like texts of tests/unit/stats/peer_cases.py (~90 characters, ~25 tokens). The numpy
runtime is also run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset, which this machine sets
for old OpenBLAS builds (see the BLAS kernel column).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import benchlib
from benchlib import log, table

ROOT = benchlib.ROOT


def child(runtime: str, n_texts: int) -> None:
    os.sched_setaffinity(0, {0})
    status = benchlib.proc_status
    from monitor_worker.stats.text import Vocabulary, describe
    from tests.unit.stats.peer_cases import texts

    batch = texts(5, n_texts)
    worker = runtime.startswith("worker+")
    if worker:
        # The serving worker's own modules (HTTP server, service, window, exporter, reference
        # readers): the floor of a real worker process before the model.
        import monitor_worker.main
        import monitor_worker.server  # noqa: F401

        runtime = runtime.removeprefix("worker+")
    floor = status(os.getpid())
    t_load = time.perf_counter()
    if runtime == "descriptors":
        vocab = Vocabulary.from_texts(texts(6, 5000))
        describe(batch[:100], vocab)  # builds the character tables
        load_s = time.perf_counter() - t_load
        loaded = status(os.getpid())
        c0, w0 = time.process_time(), time.perf_counter()
        for i in range(0, len(batch), 1000):
            describe(batch[i : i + 1000], vocab)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        blas, torch_loaded = None, "torch" in sys.modules
    else:
        if runtime == "sentence-transformers":
            import torch

            torch.set_num_threads(1)
        from monitor_worker.embedder import load_embedder

        emb = load_embedder("cpu", runtime=runtime)
        load_s = time.perf_counter() - t_load
        loaded = status(os.getpid())
        emb.embed(batch[:64])  # warm-up
        c0, w0 = time.process_time(), time.perf_counter()
        emb.embed(batch)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        torch_loaded = "torch" in sys.modules
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i.get('internal_api')} {i.get('architecture')} x{i.get('num_threads')}"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        )
    end = status(os.getpid())
    print(
        json.dumps(
            {
                "runtime": f"worker modules + {runtime}" if worker else runtime,
                "texts": n_texts,
                "load_s": load_s,
                "cpu_s": cpu,
                "wall_s": wall,
                "texts_per_cpu_s": n_texts / cpu,
                "texts_per_wall_s": n_texts / wall,
                "rss_floor_mb": floor["VmRSS"] / 1024,
                "rss_loaded_mb": loaded["VmRSS"] / 1024,
                "rss_peak_mb": end["VmHWM"] / 1024,
                "torch_imported": torch_loaded,
                "blas": blas,
                "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
            }
        )
    )


def run_child(runtime: str, n_texts: int, unset_coretype: bool = False) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT)
    if unset_coretype:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    cmd = [sys.executable, __file__, "--child", runtime, "--texts", str(n_texts)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{runtime} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--texts", type=int, default=2000, help="texts embedded per runtime")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument(
        "--only", nargs="+", help="run only these rows (descriptors, numpy, numpy-native, torch)"
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.texts)
        return 0
    runs = []
    rows_wanted = {
        "descriptors": ("descriptors", False),
        "numpy": ("numpy", False),
        "numpy-native": ("numpy", True),
        "torch": ("sentence-transformers", False),
        "worker": ("worker+numpy", False),
    }
    for key, (runtime, unset) in rows_wanted.items():
        if args.only and key not in args.only and key != "descriptors":
            continue
        n = args.texts * 50 if runtime == "descriptors" else args.texts
        log(f"{runtime}{' (OPENBLAS_CORETYPE unset)' if unset else ''}: {n} texts ...")
        runs.append(run_child(runtime, n, unset))
        log(json.dumps(runs[-1]))
    desc = runs[0]["texts_per_cpu_s"]
    rows = []
    for r in runs:
        with_desc = (
            desc if r["runtime"] == "descriptors" else 1 / (1 / desc + 1 / r["texts_per_cpu_s"])
        )
        rows.append(
            [
                r["runtime"],
                r["openblas_coretype"],
                r["blas"] or "-",
                r["texts_per_cpu_s"],
                r["texts_per_wall_s"],
                with_desc,
                r["load_s"],
                r["rss_floor_mb"],
                r["rss_loaded_mb"],
                r["rss_peak_mb"],
                r["torch_imported"],
            ]
        )
    print(
        table(
            [
                "runtime",
                "OPENBLAS_CORETYPE",
                "BLAS kernel",
                "texts/CPU-s",
                "texts/wall-s",
                "with descriptors",
                "load s",
                "RSS floor MB",
                "RSS loaded MB",
                "peak MB",
                "torch",
            ],
            rows,
        )
    )
    benchlib.save_result("embed_cpu", {"runs": runs}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
