"""The monitor worker: ingestion, streaming quality/drift/outlier statistics, Prometheus export."""

__version__ = "0.1.0"
