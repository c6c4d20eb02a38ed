"""Reading a monitor's health: firing alerts and key figures.

Sources, in order of preference:
1. Alertmanager (``MM_ALERTMANAGER_URL``): alerts after grouping, silences and inhibitions;
2. Prometheus (``MM_PROMETHEUS_URL``): firing alerts from ``/api/v1/alerts``, figures by query;
3. the worker's own ``/v1/status``: threshold violations the worker computes from the same
   thresholds (no ``for:`` delay), when neither URL is configured.
One fetch serves every monitor for a couple of seconds, so 200 monitors cost one request."""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from mm_api import metrics
from mm_api.alerts import PREFIX
from mm_api.status import WorkerStatus

from .render import WORKER_PORT, Names, scheme
from .settings import Settings
from .spec import Monitor
from .status import Alert, HealthReading


def _get_json(
    url: str,
    timeout: float = 3.0,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Any:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
        return json.loads(r.read())


@functools.lru_cache(maxsize=256)
def _client_context(ca: str | None) -> ssl.SSLContext:
    """Verifies the worker's certificate with ``ca`` (PEM; None: the system's trust store),
    and its name: the URL's host is the worker Service's DNS name."""
    return ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()


class _Cached:
    """A value fetched at most once per ``ttl`` seconds, shared by threads."""

    def __init__(self, fetch: Callable[[], Any], ttl: float) -> None:
        self.fetch, self.ttl = fetch, ttl
        self._lock = threading.Lock()
        self._at = -1e9
        self._value: Any = None
        self._error: Exception | None = None

    def get(self) -> Any:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                try:
                    self._value, self._error = self.fetch(), None
                except Exception as e:  # reported per monitor as HealthSourceUnavailable
                    self._value, self._error = None, e
                self._at = time.monotonic()
            if self._error is not None:
                raise self._error
            return self._value


class HealthReader:
    def __init__(self, settings: Settings, ttl: float | None = None) -> None:
        self.settings = settings
        ttl = ttl if ttl is not None else min(2.0, settings.status_interval / 2)
        self._am = _Cached(self._fetch_alertmanager, ttl) if settings.alertmanager_url else None
        self._prom_alerts = _Cached(self._fetch_prometheus_alerts, ttl)
        self._prom_figures = _Cached(self._fetch_prometheus_figures, ttl)

    # -- sources ---------------------------------------------------------------------------

    def _fetch_alertmanager(self) -> list[dict]:
        query = urllib.parse.urlencode(
            [
                ("filter", f'alertname=~"{PREFIX}.*"'),
                ("active", "true"),
                ("silenced", "false"),
                ("inhibited", "false"),
            ]
        )
        return _get_json(f"{self.settings.alertmanager_url}/api/v2/alerts?{query}")

    def _fetch_prometheus_alerts(self) -> list[dict]:
        out = _get_json(f"{self.settings.prometheus_url}/api/v1/alerts")
        return [a for a in out["data"]["alerts"] if a.get("state") == "firing"]

    def _fetch_prometheus_figures(self) -> dict[tuple[str, str], dict[str, Any]]:
        figures: dict[tuple[str, str], dict[str, Any]] = {}
        # The main window's figures: a KServe canary's or segment's series (kserve_endpoint,
        # segment labels) are figures of their own, not the monitor's (docs/kserve.md).
        main = f"{{{metrics.MAIN_WINDOW}}}"
        queries = {
            "records": metrics.WINDOW_RECORDS.series + main,
            "labelled": metrics.WINDOW_LABELLED.series + main,
            "quality": metrics.QUALITY.series + main,
            "driftShare": metrics.DRIFT_SHARE.series + main,
            "outlierRatio": metrics.OUTLIER_RATIO.series + main,
            "sufficient": metrics.WINDOW_SUFFICIENT.series + main,
            "predictionDrift": f"max by (namespace, modelmonitor) ({metrics.PREDICTION_DRIFT_DETECTED.series}{main})",
            "estimatedQuality": metrics.ESTIMATED_QUALITY.series + main,
            "multivariateDrift": f"max by (namespace, modelmonitor) ({metrics.MULTIVARIATE_DRIFT_DETECTED.series}{main})",
            "drifted": f"{metrics.FEATURE_DRIFT_DETECTED.series}{main} == 1",
        }
        for key, expr in queries.items():
            q = urllib.parse.urlencode({"query": expr})
            data = _get_json(f"{self.settings.prometheus_url}/api/v1/query?{q}")["data"]["result"]
            for sample in data:
                m = sample["metric"]
                entry = figures.setdefault((m.get("namespace", ""), m.get("modelmonitor", "")), {})
                value = float(sample["value"][1])
                if key in ("quality", "estimatedQuality"):
                    entry.setdefault(key, {})[m.get("metric", "")] = value
                elif key == "drifted":
                    entry.setdefault("driftedFeatures", []).append(m.get("feature", ""))
                elif key in ("records", "labelled"):
                    entry[key] = int(value)
                elif key in ("sufficient", "predictionDrift", "multivariateDrift"):
                    entry[key] = value >= 1
                else:
                    entry[key] = value
        return figures

    def worker_url(self, monitor: Monitor) -> str:
        return self.settings.worker_url_template.format(
            scheme=scheme(monitor),
            service=Names(monitor.name).worker,
            namespace=monitor.namespace,
            port=WORKER_PORT,
            name=monitor.name,
        )

    # -- reading ---------------------------------------------------------------------------

    def read(self, monitor: Monitor, ca: str | None = None) -> HealthReading:
        """``ca``: the CAs of a worker that serves https (PEM), for reads of its status."""
        key = (monitor.namespace, monitor.name)
        if self._am is not None or self.settings.prometheus_url:
            return self._read_alerting(monitor, key, ca)
        return self._read_worker(monitor, ca)

    def _read_alerting(
        self, monitor: Monitor, key: tuple[str, str], ca: str | None = None
    ) -> HealthReading:
        source = "alertmanager" if self._am is not None else "prometheus"
        try:
            raw = self._am.get() if self._am is not None else self._prom_alerts.get()
        except Exception as e:
            return HealthReading(source, error=_describe(e))
        alerts = tuple(
            sorted(
                {
                    Alert(
                        name=a["labels"]["alertname"],
                        severity=a["labels"].get("severity", "warning"),
                        since=a.get("startsAt") or a.get("activeAt"),
                        summary=a.get("annotations", {}).get("summary", ""),
                    )
                    for a in raw
                    if (a["labels"].get("namespace"), a["labels"].get("modelmonitor")) == key
                },
                key=lambda a: (a.name, a.since or ""),
            )
        )
        if not self.settings.prometheus_url:
            # Alertmanager only: the figures come from the worker itself.
            worker = self._read_worker(monitor, ca)
            return HealthReading(
                source,
                alerts=alerts,
                summary=worker.summary,
                enough_data=worker.enough_data,
                error=worker.error,
            )
        try:
            figures = dict(self._prom_figures.get().get(key, {}))
        except Exception as e:
            return HealthReading(source, alerts=alerts, error=f"prometheus: {_describe(e)}")
        if not figures:
            return HealthReading(
                source, alerts=alerts, error="prometheus has no modelmonitor series for it yet"
            )
        enough = figures.pop("sufficient", None)
        return HealthReading(source, alerts=alerts, summary=figures, enough_data=enough)

    def _read_worker(self, monitor: Monitor, ca: str | None = None) -> HealthReading:
        url = f"{self.worker_url(monitor)}/v1/status"
        context = _client_context(ca) if url.startswith("https:") else None
        try:
            st = _get_json(url, context=context)
        except Exception as e:
            return HealthReading("worker", error=_describe(e))
        return reading_from_worker_status(st)


def reading_from_worker_status(document: dict[str, Any]) -> HealthReading:
    """A worker's ``/v1/status`` document -> HealthReading (violations become alerts)."""
    st = WorkerStatus.model_validate(document)
    summary: dict[str, Any] = {"records": st.window.records, "labelled": st.window.labelled or 0}
    if st.quality:
        summary["quality"] = dict(st.quality)
    drift = st.drift
    if drift is not None and drift.share is not None:
        summary["driftShare"] = drift.share
        summary["driftedFeatures"] = sorted(f for f, r in drift.features.items() if r.drifted)
    if drift is not None and drift.prediction is not None:
        summary["predictionDrift"] = drift.prediction.drifted
    if drift is not None and drift.multivariate is not None:
        summary["multivariateDrift"] = drift.multivariate.drifted
    if st.estimated_quality:
        summary["estimatedQuality"] = {k: v.value for k, v in st.estimated_quality.items()}
    if st.outliers is not None and st.outliers.ratio is not None:
        summary["outlierRatio"] = st.outliers.ratio
    alerts = tuple(Alert(v.alert, v.severity, v.since, v.message) for v in st.violations or ())
    return HealthReading("worker", alerts=alerts, summary=summary, enough_data=st.window.sufficient)


def _describe(e: Exception) -> str:
    if isinstance(e, urllib.error.HTTPError):
        # A worker that cannot start (a reference it cannot use, estimation it refuses)
        # answers 503 with the cause, naming the field: that is what the status shows.
        try:
            error = json.loads(e.read() or b"{}").get("error")
        except (ValueError, OSError, AttributeError):
            error = None
        if isinstance(error, str) and error:
            return f"worker not ready: {error}" if e.code == 503 else f"HTTP {e.code}: {error}"
    reason = getattr(e, "reason", None)
    return f"{type(e).__name__}: {reason or e}"
