"""The "Model Monitor" Grafana dashboard, built with Grafana's grafana-foundation-sdk: one
panel (or more) for every series the worker exports (mm_api.metrics), the serving health of
the model's pods (mm_api.exporters), a data-source variable and namespace/monitor variables.
Panel ids come from mm_api.panels, the table the alert rules link to (``dashboard_url``), so a
link opens the panel that shows the alert's series.

``python scripts/gen_dashboards.py`` writes it to the chart; ``tests/unit/test_dashboards.py``
fails when the committed JSON is stale or a metric has no panel."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    GridPos,
    VariableRefresh,
    VariableSort,
)

from mm_api import exporters as x
from mm_api import metrics as m
from mm_api.alerts import TARGET_PODS, dcgm_by_pod
from mm_api.panels import DASHBOARD_UID, PANEL_IDS

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'namespace=~"$namespace", modelmonitor=~"$modelmonitor"'
NS = 'namespace=~"$namespace"'
CONTAINERS = 'container!="", container!="POD"'
#: Per-pod series of other exporters, narrowed to the selected monitors' target pods.
JOIN = f" * on (namespace, pod) group_left (modelmonitor, model) {TARGET_PODS}{{{SEL}}}"
BY_POD = "namespace, modelmonitor, pod, container"
BY_MONITOR = "namespace, modelmonitor"
INFER = 'path=~".*/infer"'  # MLServer's route templates, e.g. /v2/models/{model_name}/infer
NOT_READY = 'condition="false"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    key: str  # its id: mm_api.panels.PANEL_IDS[key]
    kind: str  # stat | timeseries | table | state-timeline
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = ""
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


#: Series a window of KServe's canary endpoint or of a segment exports too, with
#: ``kserve_endpoint`` and ``segment`` labels (mm_api.metrics.KEYED_METRICS); the main window's lack them.
_KEYED_SELECTORS = tuple(f"{metric.series}{{" for metric in m.KEYED_METRICS)
_AGGREGATIONS = ("sum", "max", "min", "count", "avg", "histogram_quantile")


def q(expr: str, legend: str = "", instant: bool = False) -> Query:
    """A query; the legend of a keyed window's series names its endpoint and segment too
    (empty for the main window's)."""
    keyed = any(sel in expr for sel in _KEYED_SELECTORS) and not expr.startswith(_AGGREGATIONS)
    if legend and keyed:
        legend = f"{legend} {{{{kserve_endpoint}}}} {{{{segment}}}}"
    return Query(expr, legend, instant)


def _rate(series: str, extra: str = "", window: str = "5m") -> str:
    return f"rate({series}{{{SEL}{', ' + extra if extra else ''}}}[{window}])"


ALERTS = f'ALERTS{{alertname=~"ModelMonitor.*", alertstate="firing", {SEL}}}'
REFUSED = 'code=~"4..|5.."'
_MON = "{{namespace}}/{{modelmonitor}}"

OVERVIEW = Row("row_overview", "Overview", (
    Panel("records_per_second", "stat", "Records / s", "Records accepted per second.",
          (q(f"sum({_rate(m.RECORDS.series)})"),), "reqps", 5, 4),
    Panel("window_records_stat", "stat", "Window records", "Records in the current windows.",
          (q(f"sum({m.WINDOW_RECORDS.series}{{{SEL}}})"),), "short", 5, 4),
    Panel("drift_share_stat", "stat", "Max drift share", "Largest share of drifted features.",
          (q(f"max({m.DRIFT_SHARE.series}{{{SEL}}})"),), "percentunit", 5, 4),
    Panel("outlier_ratio_stat", "stat", "Max outlier ratio", "Largest outlier ratio.",
          (q(f"max({m.OUTLIER_RATIO.series}{{{SEL}}})"),), "percentunit", 5, 4),
    Panel("firing_alerts_stat", "stat", "Firing alerts", "ModelMonitor alerts firing now.",
          (q(f"count({ALERTS}) or vector(0)"),), "short", 4, 4),
))  # fmt: skip

QUALITY = Row("row_quality", "Quality", (
    Panel("quality", "timeseries", "Quality", "Quality metrics over each window's labelled records.",
          (q(f"{m.QUALITY.series}{{{SEL}}}", f"{_MON} {{{{metric}}}}"),), "short"),
    Panel("firing_alerts", "table", "Firing alerts", "Every firing ModelMonitor alert.",
          (q(ALERTS, instant=True),)),
))  # fmt: skip

DRIFT = Row("row_drift", "Drift", (
    Panel("drift_share", "timeseries", "Dataset drift share",
          "Share of features drifted; dataset drift is 1 at or above drift.shareThreshold.",
          (q(f"{m.DRIFT_SHARE.series}{{{SEL}}}", f"{_MON} share"),
           q(f"{m.DATASET_DRIFT.series}{{{SEL}}}", f"{_MON} dataset drift")), "percentunit", 8),
    Panel("feature_drift_score", "timeseries", "Feature drift score",
          "p-value or distance per feature, and the threshold it is compared with.",
          (q(f"{m.FEATURE_DRIFT_SCORE.series}{{{SEL}}}", "{{feature}} ({{method}})"),
           q(f"{m.FEATURE_DRIFT_THRESHOLD.series}{{{SEL}}}", "{{feature}} threshold")), "short", 8),
    Panel("feature_drift_detected", "state-timeline", "Drifted features",
          "1 while a feature drifts by its method and threshold.",
          (q(f"{m.FEATURE_DRIFT_DETECTED.series}{{{SEL}}}", "{{feature}}"),), "short", 8),
))  # fmt: skip

DATA = Row("row_data", "Data", (
    Panel("outlier_ratio", "timeseries", "Outlier ratio",
          "Share of outliers in the scored sample of the window.",
          (q(f"{m.OUTLIER_RATIO.series}{{{SEL}}}", f"{_MON} ratio"),
           q(f"{m.OUTLIERS_SCORED.series}{{{SEL}}}", f"{_MON} rows scored")), "short", 8),
    Panel("record_rate", "timeseries", "Record rate", "Records accepted, and late records, per second.",
          (q(f"sum by ({BY_MONITOR}, model) ({_rate(m.RECORDS.series)})", f"{_MON} records"),
           q(f"sum by ({BY_MONITOR}) ({_rate(m.LATE_RECORDS.series)})", f"{_MON} late")), "reqps", 8),
    Panel("window_size", "timeseries", "Window size",
          "Records and labelled records in the window; sufficient is 1 at minSamples.",
          (q(f"{m.WINDOW_RECORDS.series}{{{SEL}}}", f"{_MON} records"),
           q(f"{m.WINDOW_LABELLED.series}{{{SEL}}}", f"{_MON} labelled"),
           q(f"{m.WINDOW_SUFFICIENT.series}{{{SEL}}}", f"{_MON} sufficient")), "short", 8),
))  # fmt: skip

PREDICTIONS = Row("row_prediction_drift", "Prediction and score drift", (
    Panel("prediction_drift", "timeseries", "Prediction drift",
          "Drift of the model's predictions against the reference, its threshold and decision.",
          (q(f"{m.PREDICTION_DRIFT_SCORE.series}{{{SEL}}}", f"{_MON} {{{{method}}}}"),
           q(f"{m.PREDICTION_DRIFT_THRESHOLD.series}{{{SEL}}}", f"{_MON} threshold"),
           q(f"{m.PREDICTION_DRIFT_DETECTED.series}{{{SEL}}}", f"{_MON} drifted")), "short"),
    Panel("score_drift", "timeseries", "Score drift",
          "Drift of a binary classifier's scores against the reference.",
          (q(f"{m.SCORE_DRIFT_SCORE.series}{{{SEL}}}", f"{_MON} {{{{method}}}}"),
           q(f"{m.SCORE_DRIFT_THRESHOLD.series}{{{SEL}}}", f"{_MON} threshold"),
           q(f"{m.SCORE_DRIFT_DETECTED.series}{{{SEL}}}", f"{_MON} drifted")), "short"),
))  # fmt: skip

LABELS = Row("row_labels", "Labels", (
    Panel("label_outcomes", "timeseries", "Label outcomes",
          "Labels per second by outcome: matched, unmatched, expired or inline.",
          (q(f"sum by ({BY_MONITOR}, outcome) ({_rate(m.LABELS.series)})", f"{_MON} {{{{outcome}}}}"),),
          "reqps", 6),
    Panel("pending_labels", "timeseries", "Pending labels", "Predictions waiting for their label.",
          (q(f"{m.PENDING_LABELS.series}{{{SEL}}}", _MON),), "short", 6),
    Panel("labelled_predictions", "timeseries", "Labelled predictions",
          "Predictions joined with their label, and those that were right, per second.",
          (q(_rate(m.PREDICTIONS_LABELLED.series), f"{_MON} labelled"),
           q(_rate(m.PREDICTIONS_CORRECT.series), f"{_MON} correct")), "reqps", 6),
    Panel("last_arrivals", "timeseries", "Since the last record and label",
          "Seconds since the last record and the last label arrived.",
          (q(f"time() - {m.LAST_RECORD_TIMESTAMP.series}{{{SEL}}}", f"{_MON} record"),
           q(f"time() - {m.LAST_LABEL_TIMESTAMP.series}{{{SEL}}}", f"{_MON} label")), "s", 6),
))  # fmt: skip

INGESTION = Row("row_ingestion", "Ingestion", (
    Panel("ingest_requests", "timeseries", "Ingestion requests",
          "Requests per second by API (records, labels, cloudevents) and HTTP status.",
          (q(f"sum by ({BY_MONITOR}, api, code) ({_rate(m.INGEST_REQUESTS.series)})",
             "{{api}} {{code}}"),), "reqps", 6),
    Panel("ingest_refusals", "timeseries", "Refused: 429s and errors",
          "Overload (429) and refused or failed requests (4xx, 5xx) per second, and KServe "
          "logger events refused whole, by why.",
          (q(f"sum by ({BY_MONITOR}, api, code) "
             f"({_rate(m.INGEST_REQUESTS.series, REFUSED)})", "{{api}} {{code}}"),
           q(f"sum by ({BY_MONITOR}, reason) ({_rate(m.KSERVE_EVENTS_REFUSED.series)})",
             "kserve {{reason}}")),
          "reqps", 6),
    Panel("ingest_queue_depth", "timeseries", "Ingest queue depth",
          "Batches accepted and waiting to be applied.",
          (q(f"{m.INGEST_QUEUE_DEPTH.series}{{{SEL}}}", _MON),), "short", 6),
    Panel("ingest_batch_duration", "timeseries", "Batch apply time (p95)",
          "95th percentile of the time to parse and apply one batch.",
          (q(f"histogram_quantile(0.95, sum by ({BY_MONITOR}, le) "
             f"({_rate(m.INGEST_BATCH_DURATION.series + '_bucket')}))", _MON),), "s", 6),
))  # fmt: skip

WORKER = Row("row_worker", "Worker", (
    Panel("evaluation", "timeseries", "Evaluation",
          "Duration of the last window evaluation, and seconds since it ran.",
          (q(f"{m.EVALUATION_DURATION.series}{{{SEL}}}", f"{_MON} duration"),
           q(f"time() - {m.EVALUATION_TIMESTAMP.series}{{{SEL}}}", f"{_MON} age")), "s", 8),
    Panel("snapshots", "timeseries", "Snapshots",
          "Seconds since the state was last saved, and failed snapshots in the last hour.",
          (q(f"time() - {m.SNAPSHOT_TIMESTAMP.series}{{{SEL}}}", f"{_MON} age"),
           q(f"increase({m.SNAPSHOT_FAILURES.series}{{{SEL}}}[1h])", f"{_MON} failures")), "s", 8),
    Panel("worker_info", "table", "Workers",
          "Each worker's model and task, and whether its reference is loaded.",
          (q(f"{m.INFO.series}{{{SEL}}}", instant=True),
           q(f"{m.REFERENCE_LOADED.series}{{{SEL}}}", instant=True)), "", 8),
    Panel("reference_reloads", "timeseries", "Reference reloads",
          "Seconds since the reference in use was profiled, and reloads in the last hour by "
          "result (failed: the previous reference keeps serving).",
          (q(f"time() - {m.REFERENCE_LOADED_AT.series}{{{SEL}}}", f"{_MON} age"),
           q(f"increase({m.REFERENCE_RELOADS.series}{{{SEL}}}[1h])",
             f"{_MON} {{{{result}}}}")), "s", 12),
))  # fmt: skip

ESTIMATION = Row("row_estimation", "Quality without labels and multivariate drift", (
    Panel("estimated_quality", "timeseries", "Estimated quality (CBPE / DLE)",
          "Quality estimated from scores (classification) or a loss model (regression), with its "
          "confidence band; beside the measured figure once labels come.",
          (q(f"{m.ESTIMATED_QUALITY.series}{{{SEL}}}", "{{metric}}"),
           q(f"{m.ESTIMATED_QUALITY_LOWER.series}{{{SEL}}}", "{{metric}} lower"),
           q(f"{m.ESTIMATED_QUALITY_UPPER.series}{{{SEL}}}", "{{metric}} upper"),
           q(f"{m.ESTIMATED_QUALITY_SAMPLING_ERROR.series}{{{SEL}}}", "{{metric}} sampling error")),
          "percentunit", 8),
    Panel("estimated_quality_band", "timeseries", "Estimate against the reference band",
          "The reference's own band (mean ± 3 std over its chunks) and whether the estimate is "
          "outside it.",
          (q(f"{m.ESTIMATED_QUALITY_LOWER_THRESHOLD.series}{{{SEL}}}", "{{metric}} band low"),
           q(f"{m.ESTIMATED_QUALITY_UPPER_THRESHOLD.series}{{{SEL}}}", "{{metric}} band high"),
           q(f"{m.ESTIMATED_QUALITY_OUTSIDE_BAND.series}{{{SEL}}}", "{{metric}} outside")),
          "short", 8),
    Panel("multivariate_drift", "timeseries", "Multivariate drift",
          "PCA reconstruction error (or the domain classifier's ROC-AUC) against its thresholds.",
          (q(f"{m.MULTIVARIATE_DRIFT.series}{{{SEL}}}", "{{method}}"),
           q(f"{m.MULTIVARIATE_DRIFT_UPPER_THRESHOLD.series}{{{SEL}}}", "{{method}} upper"),
           q(f"{m.MULTIVARIATE_DRIFT_LOWER_THRESHOLD.series}{{{SEL}}}", "{{method}} lower"),
           q(f"{m.MULTIVARIATE_DRIFT_DETECTED.series}{{{SEL}}}", "{{method}} drifted")),
          "short", 8),
))  # fmt: skip

RICH = Row("row_rich", "Serving measures, texts and embeddings", (
    Panel("measure_quantiles", "timeseries", "Serving measures (p50 / p95 / p99)",
          "Window quantiles of the per-record measures declared in spec.measures (latency, "
          "tokens...), within 1 % of the exact value, and how many values the window holds.",
          (q(f"{m.MEASURE_QUANTILE.series}{{{SEL}}}", "{{measure}} {{quantile}}"),
           q(f"{m.MEASURE_VALUES.series}{{{SEL}}}", "{{measure}} values")), "short", 8),
    Panel("text_truncated", "timeseries", "Texts cut at maxChars",
          "Texts per second longer than their feature's maxChars (descriptors and embeddings see "
          "the cut text).",
          (q(f"sum by ({BY_MONITOR}, feature) ({_rate(m.TEXT_TRUNCATED.series)})", "{{feature}}"),),
          "short", 8),
    Panel("embedder", "table", "Embedder",
          "Device and runtime the worker embeds texts with (embed: true).",
          (q(f"{m.EMBEDDER_INFO.series}{{{SEL}}}", instant=True),), "", 8),
))  # fmt: skip

STORE = Row("row_store", "Shared store (replicas)", (
    Panel("store_reachable", "state-timeline", "Store reachable",
          "1 when each replica's last flush reached the shared store (only with worker.store).",
          (q(f"{m.STORE_REACHABLE.series}{{{SEL}}}", "{{pod}}"),), "short", 8),
    Panel("store_backlog", "timeseries", "Waiting to be written",
          "Predictions and KServe halves accepted by each replica and not yet in the store.",
          (q(f"{m.STORE_BACKLOG.series}{{{SEL}}}", "{{pod}}"),), "short", 8),
    Panel("store_flushes", "timeseries", "Flushes",
          "Seconds since each replica's last flush, failed flushes and refused KServe pairs "
          "per minute.",
          (q(f"time() - {m.STORE_LAST_FLUSH.series}{{{SEL}}}", "{{pod}} age"),
           q(f"increase({m.STORE_FLUSH_FAILURES.series}{{{SEL}}}[1m])", "{{pod}} failures"),
           q(f"increase({m.KSERVE_PAIRS_REFUSED.series}{{{SEL}}}[1m])", "{{pod}} refused pairs")),
          "s", 8),
))  # fmt: skip

_FAIL = f"sum by ({BY_MONITOR}) (rate({x.MLSERVER_FAILURE.name}{{{NS}}}[5m]){JOIN})"
_OK = f"sum by ({BY_MONITOR}) (rate({x.MLSERVER_SUCCESS.name}{{{NS}}}[5m]){JOIN})"
_LATENCY = (
    f"(rate({x.MLSERVER_REST_DURATION.name}_bucket{{{NS}, {INFER}}}[5m])"
    f" or rate({x.KSERVE_PREDICT_DURATION.name}_bucket{{{NS}}}[5m])){JOIN}"
)


def _limit(resource: str) -> str:
    return (
        f" / on (namespace, pod, container) max by (namespace, pod, container) "
        f'({x.RESOURCE_LIMITS.name}{{{NS}, resource="{resource}"}})'
    )


SERVING = Row("row_serving", "Serving health (the model's own pods)", (
    Panel("serving_cpu_throttling", "timeseries", "CPU throttled",
          "Share of CFS periods throttled, per container of the target's pods (cAdvisor).",
          (q(f"sum by (namespace, pod, container) (rate({x.CPU_CFS_THROTTLED.name}{{{NS}, {CONTAINERS}}}[5m]))"
             f" / sum by (namespace, pod, container) (rate({x.CPU_CFS_PERIODS.name}{{{NS}, {CONTAINERS}}}[5m])){JOIN}",
             "{{pod}} {{container}}"),), "percentunit", 8),
    Panel("serving_cpu_limit", "timeseries", "CPU of limit",
          "CPU usage as a share of the container's limit (cAdvisor, kube-state-metrics).",
          (q(f"sum by (namespace, pod, container) (rate({x.CPU_USAGE.name}{{{NS}, {CONTAINERS}}}[5m]))"
             f"{_limit('cpu')}{JOIN}", "{{pod}} {{container}}"),), "percentunit", 8),
    Panel("serving_memory_limit", "timeseries", "Memory of limit",
          "Working set as a share of the container's memory limit.",
          (q(f"max by (namespace, pod, container) ({x.MEMORY_WORKING_SET.name}{{{NS}, {CONTAINERS}}})"
             f"{_limit('memory')}{JOIN}", "{{pod}} {{container}}"),), "percentunit", 8),
    Panel("serving_restarts", "timeseries", "Restarts and OOM kills",
          "Container restarts in the last hour; 1 while the last termination was an OOM kill.",
          (q(f"max by (namespace, pod, container) (increase({x.RESTARTS.name}{{{NS}}}[1h])){JOIN}",
             "{{pod}} {{container}} restarts"),
           q(f"max by (namespace, pod, container) ({x.LAST_TERMINATED_REASON.name}"
             f'{{{NS}, reason="OOMKilled"}}){JOIN}', "{{pod}} {{container}} OOMKilled")), "short", 8),
    Panel("serving_replicas_unavailable", "timeseries", "Pods not ready",
          "Target pods whose Ready condition is false (kube-state-metrics).",
          (q(f"sum by ({BY_MONITOR}) ({x.POD_READY.name}{{{NS}, {NOT_READY}}}{JOIN})", _MON),),
          "short", 8),
    Panel("serving_gpu_utilization", "timeseries", "GPU utilization",
          "GPU busy share of the target's GPUs (DCGM exporter).",
          (q(f"max by (namespace, pod, gpu) ({dcgm_by_pod(x.GPU_UTIL)}){JOIN}", "{{pod}} GPU {{gpu}}"),),
          "percent", 8),
    Panel("serving_gpu_memory", "timeseries", "GPU memory used",
          "Framebuffer used as a share of the GPU's (DCGM exporter).",
          (q(f"max by (namespace, pod, gpu) ({dcgm_by_pod(x.GPU_FB_USED)}) / (max by (namespace, pod, gpu) "
             f"({dcgm_by_pod(x.GPU_FB_USED)}) + max by (namespace, pod, gpu) ({dcgm_by_pod(x.GPU_FB_FREE)})){JOIN}",
             "{{pod}} GPU {{gpu}}"),), "percentunit", 8),
    Panel("serving_request_rate", "timeseries", "Inference requests",
          "Inference requests per second to the model server (MLServer), by REST status.",
          (q(f"sum by ({BY_MONITOR}, status_code) (rate({x.MLSERVER_REST_REQUESTS.name}"
             f"{{{NS}, {INFER}}}[5m]){JOIN})", f"{_MON} {{{{status_code}}}}"),
           q(_OK, f"{_MON} answered"), q(_FAIL, f"{_MON} failed")), "reqps", 8),
    Panel("serving_error_ratio", "timeseries", "Inference error ratio",
          "Share of inference requests the model failed (MLServer).",
          (q(f"{_FAIL} / ({_FAIL} + ({_OK} or {_FAIL} * 0))", _MON),), "percentunit", 8),
    Panel("serving_latency", "timeseries", "Inference latency",
          "Median and 95th percentile of inference latency (MLServer REST, KServe predict).",
          (q(f"histogram_quantile(0.5, sum by ({BY_MONITOR}, le) ({_LATENCY}))", f"{_MON} p50"),
           q(f"histogram_quantile(0.95, sum by ({BY_MONITOR}, le) ({_LATENCY}))", f"{_MON} p95")),
          "s", 16),
))  # fmt: skip

ROWS: tuple[Row, ...] = (
    OVERVIEW,
    QUALITY,
    DRIFT,
    DATA,
    PREDICTIONS,
    LABELS,
    INGESTION,
    WORKER,
    ESTIMATION,
    RICH,
    STORE,
    SERVING,
)
_BUILDERS: dict[str, Any] = {
    "stat": stat.Panel,
    "timeseries": timeseries.Panel,
    "table": table.Panel,
    "state-timeline": statetimeline.Panel,
}


def _panel(p: Panel, pos: GridPos) -> Any:
    builder = (
        _BUILDERS[p.kind]()
        .id(PANEL_IDS[p.key])
        .title(p.title)
        .description(p.description)
        .datasource(DATASOURCE)
        .grid_pos(pos)
    )
    if p.unit:
        builder = builder.unit(p.unit)
    for i, query in enumerate(p.queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + i))
        target = target.datasource(DATASOURCE)
        if query.legend:
            target = target.legend_format(query.legend)
        if query.instant:
            target = target.instant()
        builder = builder.with_target(target)
    return builder


def _variables() -> list[Any]:
    def query_variable(name: str, label: str, query: str) -> Any:
        return (
            db.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(query)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )

    records = m.WINDOW_RECORDS.series
    return [
        db.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        query_variable("namespace", "Namespace", f"label_values({records}, namespace)"),
        query_variable(
            "modelmonitor",
            "ModelMonitor",
            f'label_values({records}{{namespace=~"$namespace"}}, modelmonitor)',
        ),
    ]


def build() -> Any:
    """The dashboard model (grafana-foundation-sdk), panels laid out row by row."""
    dashboard = (
        db.Dashboard("Model Monitor")
        .uid(DASHBOARD_UID)
        .description(
            "Quality, drift, outliers, labels, ingestion and the serving health of models "
            "watched by ModelMonitors. Generated by dashboards/model_monitor.py."
        )
        .tags(["model-monitor", "ml"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .variables(_variables())
    )
    y = 0
    for row in ROWS:
        dashboard = dashboard.with_row(
            db.Row(row.title).id(PANEL_IDS[row.key]).grid_pos(GridPos(h=1, w=24, x=0, y=y))
        )
        y, x, line = y + 1, 0, 0
        for p in row.panels:
            if x + p.width > 24:
                y, x, line = y + line, 0, 0
            dashboard = dashboard.with_panel(_panel(p, GridPos(h=p.height, w=p.width, x=x, y=y)))
            x, line = x + p.width, max(line, p.height)
        y += line
    return dashboard.build()


def dashboard_json() -> str:
    return json.dumps(build(), cls=JSONEncoder, indent=2) + "\n"
