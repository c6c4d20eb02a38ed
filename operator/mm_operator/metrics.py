"""The operator's own Prometheus metrics (served on MM_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

API_REQUESTS = Counter(
    "modelmonitor_operator_api_requests_total", "Kubernetes API requests sent.", ["method"]
)
API_RETRIES = Counter(
    "modelmonitor_operator_api_retries_total",
    "Kubernetes API requests retried after 409/429/5xx or a connection error.",
)
RECONCILES = Counter(
    "modelmonitor_operator_reconciles_total", "Reconciliations of ModelMonitors.", ["result"]
)
RECONCILE_SECONDS = Histogram(
    "modelmonitor_operator_reconcile_duration_seconds",
    "Time to render and apply a ModelMonitor's children.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
STATUS_REFRESHES = Counter(
    "modelmonitor_operator_status_refreshes_total", "Status refreshes.", ["result"]
)
MONITORS = Gauge(
    "modelmonitor_operator_monitors", "ModelMonitors by health, as last reported.", ["health"]
)
