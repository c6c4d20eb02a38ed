"""The monitor worker: ingestion, streaming quality/drift/outlier statistics, Prometheus export."""
