"""Stable ids of the "Model Monitor" Grafana dashboard's panels. The dashboard generator
(``dashboards/model_monitor.py``) gives each panel the id named here, and every alert names the
panel that shows its series, so its ``dashboard_url`` opens that panel (``viewPanel=<id>``).
Ids are never reused or renumbered: a link in an old notification keeps pointing at the same
panel. New panels take new numbers."""

from __future__ import annotations

DASHBOARD_UID = "model-monitor"

PANEL_IDS: dict[str, int] = {
    # overview
    "row_overview": 1,
    "records_per_second": 2,
    "window_records_stat": 3,
    "drift_share_stat": 4,
    "outlier_ratio_stat": 5,
    "firing_alerts_stat": 6,
    # quality
    "row_quality": 7,
    "quality": 8,
    "firing_alerts": 9,
    # drift
    "row_drift": 10,
    "drift_share": 11,
    "feature_drift_score": 12,
    "feature_drift_detected": 13,
    # data
    "row_data": 14,
    "outlier_ratio": 15,
    "record_rate": 16,
    "window_size": 17,
    # prediction and score drift
    "row_prediction_drift": 18,
    "prediction_drift": 19,
    "score_drift": 20,
    # labels
    "row_labels": 21,
    "label_outcomes": 22,
    "pending_labels": 23,
    "labelled_predictions": 24,
    "last_arrivals": 25,
    # ingestion
    "row_ingestion": 26,
    "ingest_requests": 27,
    "ingest_refusals": 28,
    "ingest_queue_depth": 29,
    "ingest_batch_duration": 30,
    # the worker
    "row_worker": 31,
    "evaluation": 32,
    "snapshots": 33,
    "worker_info": 34,
    # serving health of the model's own pods
    "row_serving": 35,
    "serving_cpu_throttling": 36,
    "serving_cpu_limit": 37,
    "serving_memory_limit": 38,
    "serving_restarts": 39,
    "serving_replicas_unavailable": 40,
    "serving_gpu_utilization": 41,
    "serving_gpu_memory": 42,
    "serving_request_rate": 43,
    "serving_error_ratio": 44,
    "serving_latency": 45,
    # the shared store of replicas
    "row_store": 46,
    "store_reachable": 47,
    "store_backlog": 48,
    "store_flushes": 49,
    # quality estimated without labels, and multivariate drift
    "row_estimation": 50,
    "estimated_quality": 51,
    "estimated_quality_band": 52,
    "multivariate_drift": 53,
    # texts, embeddings and serving measures
    "row_rich": 54,
    "measure_quantiles": 55,
    "text_truncated": 56,
    "embedder": 57,
    # the worker, again: ids are never reused or renumbered (links to them exist)
    "reference_reloads": 58,
}


def dashboard_link(base: str, namespace: str, monitor: str, panel: str) -> str:
    """The dashboard at ``base`` (e.g. ``https://grafana.example.org/d/model-monitor``) with
    its variables set to one monitor, opened on ``panel``."""
    sep = "&" if "?" in base else "?"
    return (
        f"{base}{sep}var-namespace={namespace}&var-modelmonitor={monitor}"
        f"&viewPanel={PANEL_IDS[panel]}"
    )
