"""The monitor worker: ingestion, streaming quality/drift/outlier statistics, Prometheus export."""

import os

# One BLAS thread, set before numpy loads: the worker computes on its ingest thread and one
# evaluator thread, and OpenBLAS's own threads only contend with them for the pod's CPU. On one
# core, a (1536 x 20) @ (20 x 20) product took 20x longer with two BLAS threads than with one;
# the PCA reconstruction update, per batch, made ingestion 40-50% slower that way (7% with one).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
