"""HTTP API of the worker (aiohttp). Thin: authenticate, bound, queue, answer.

- Ingestion (``POST /v1/records``, ``/v1/labels``, ``/v1/cloudevents``) needs the bearer token
  when ``ingestion.authTokenFile`` is set (401 otherwise), except ``/v1/cloudevents`` with
  ``ingestion.kserveLoggerWithoutToken`` (KServe's logger sends no credentials; the operator
  sets it only behind a NetworkPolicy); probes, ``/metrics``, ``/v1/status`` and
  ``/openapi.json`` stay open for the kubelet and Prometheus.
- With ``tls``, everything is https on the same port (:mod:`.tls` reloads the certificate).
- Bodies over ``ingestion.maxBodyBytes`` get 413; more than ``ingestion.maxQueue`` batches
  waiting get 429 with ``Retry-After``. A 2xx means the batch is in the window state.
- Parsing and applying run on one thread, in arrival order; the event loop stays free.
- SIGTERM: stop accepting, apply what was accepted, save a snapshot, exit."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from mm_api.durations import parse_duration
from mm_api.worker_config import WorkerConfig

from .exporter import Ingestion, WindowCollector
from .ingest import PayloadError, refusal_reason
from .loader import Loader
from .openapi import openapi_document
from .reference_files import ReferenceDataError
from .service import MonitorService
from .store import StoreUnavailable
from .tls import ServingCertificate

log = logging.getLogger(__name__)
WORKER: web.AppKey[Worker] = web.AppKey("worker", object)  # type: ignore[arg-type]


def _json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class TokenFile:
    """The ingestion token, re-read when its file changes (Secret rotation needs no restart)."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self._mtime = -1.0
        self._token: bytes | None = None
        self._checked = 0.0

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def current(self) -> bytes | None:
        assert self.path is not None
        now = time.monotonic()
        if now - self._checked > 2.0:
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime
                if mtime != self._mtime:
                    self._token = self.path.read_bytes().strip() or None
                    self._mtime = mtime
            except OSError:
                self._token = None  # refuse everything rather than accept anything
        return self._token

    def allows(self, header: str | None) -> bool:
        token = self.current()
        if token is None or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), token)


class Worker:
    """The running worker: service + executor + background loops.

    The service is built by ``load`` (reading the reference and fitting the profile). When that
    fails - a reference not mounted yet, a URL down, a bad file - the worker stays up rather
    than crash-looping: ``/healthz`` answers, ``/readyz`` and ingestion answer 503 with the
    cause, and loading is retried with backoff (30 s doubling to 5 min)."""

    RETRY_FIRST, RETRY_MAX = 30.0, 300.0
    TLS_CHECK_INTERVAL = 5.0

    def __init__(
        self,
        config: WorkerConfig,
        load: Loader,
        certificate: ServingCertificate | None = None,
    ) -> None:
        self.config = config
        self.load = load
        #: Reloads profile a new reference here, beside ingestion (the profile's child
        #: process does the work; this thread waits for it).
        self.reloader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reload")
        self.service: MonitorService | None = None
        self.problem: str | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")
        self.evaluator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate")
        self.store_io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.queued = 0
        self.ready = False
        self.stopping = False
        self.token = TokenFile(config.ingestion.auth_token_file)
        self.certificate = certificate
        self.registry = CollectorRegistry()
        labels = {"modelmonitor": config.monitor.name, "model": config.model.name}
        self.ingestion = Ingestion(self.registry, labels)
        self.registry.register(WindowCollector(labels, config.model.task, lambda: self.service))
        self.snapshot_dir = Path(config.snapshot.directory) if config.snapshot.directory else None
        self._tasks: list[asyncio.Task] = []

    # -- background --------------------------------------------------------------------------

    async def evaluate_once(self) -> None:
        service = self.service
        if service is None:
            return
        loop = asyncio.get_running_loop()
        bucket = await loop.run_in_executor(self.executor, service.window_summary)

        def merged_and_evaluated() -> None:
            service.evaluate(service.with_other_replicas(bucket))

        await loop.run_in_executor(self.evaluator, merged_and_evaluated)

    async def _evaluation_loop(self) -> None:
        interval = parse_duration(self.config.window.evaluation_interval)
        while True:
            try:
                await self.evaluate_once()
            except Exception:
                log.exception("evaluation failed; retrying at the next interval")
            await asyncio.sleep(interval)

    async def save_snapshot(self) -> None:
        service = self.service
        if self.snapshot_dir is None or service is None:
            return
        loop = asyncio.get_running_loop()
        try:
            # Writing reads the live arrays, so it runs on the ingest thread (~10 MB to the
            # page cache: tens of ms).
            await loop.run_in_executor(self.executor, service.save, self.snapshot_dir)
        except OSError as e:
            self.ingestion.snapshot_failures.labels(**self._labels()).inc()
            log.warning("snapshot to %s failed: %s", self.snapshot_dir, e)

    def _labels(self) -> dict[str, str]:
        return {"modelmonitor": self.config.monitor.name, "model": self.config.model.name}

    async def flush_once(self) -> bool:
        """Hand this replica's changes to the shared store; False when it is unreachable
        (the work is kept and retried at the next flush)."""
        service = self.service
        if service is None or service.store is None:
            return True
        loop = asyncio.get_running_loop()
        work = await loop.run_in_executor(self.executor, service.take_flush_work)
        try:
            result = await loop.run_in_executor(self.store_io, service.store.flush, work)
        except StoreUnavailable as e:
            await loop.run_in_executor(self.executor, service.return_flush_work, work)
            self.ingestion.store_flush_failures.labels(**self._labels()).inc()
            log.warning("%s; %d predictions and halves kept for the next flush", e, len(work))
            return False
        await loop.run_in_executor(self.executor, service.apply_flush_result, result)
        return True

    async def _flush_loop(self) -> None:
        interval = parse_duration(self.config.store.flush_interval) if self.config.store else 1.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush_once()
            except Exception:
                log.exception("flush failed; retrying at the next interval")

    async def _snapshot_loop(self) -> None:
        interval = parse_duration(self.config.snapshot.interval)
        while True:
            await asyncio.sleep(interval)
            await self.save_snapshot()

    async def reload_once(self) -> bool:
        """Profile the reference again when it has new contents; True when the service was
        replaced. A new reference that cannot be used keeps the old one serving."""
        old = self.service
        if old is None:
            return False
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(self.reloader, self.load.reload)
        except StoreUnavailable as e:
            log.error("reloading the reference: %s; the previous one keeps serving", e)
            return False
        except (ReferenceDataError, ValueError) as e:
            log.error("cannot use the new reference: %s; the previous one keeps serving", e)
            return False
        if new is None or self.stopping:
            return False

        def swap() -> None:  # in the ingest thread: no batch lands in the old service after
            new.carry_over(self.service or old)
            self.service = new

        await loop.run_in_executor(self.executor, swap)
        log.info("reference reloaded: a fresh window on %s", new.profile.fingerprint)
        return True

    async def _reload_loop(self) -> None:
        source = self.config.data.reference
        assert source is not None and source.reload_interval is not None
        interval = parse_duration(source.reload_interval)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload_once()
            except Exception:
                log.exception("checking the reference for new contents failed; retrying")

    async def _certificate_loop(self) -> None:
        assert self.certificate is not None
        while True:
            await asyncio.sleep(self.TLS_CHECK_INTERVAL)
            try:
                self.certificate.refresh()
            except Exception:
                log.exception("checking the certificate files failed; retrying")

    async def _load(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            service = await loop.run_in_executor(self.executor, self.load)
        except StoreUnavailable as e:
            self.problem = str(e)
            log.error("%s; retrying", self.problem)
            return False
        except (ReferenceDataError, ValueError) as e:
            self.problem = f"cannot use the reference: {e}"
            log.error("%s; retrying", self.problem)
            return False
        if self.snapshot_dir is not None and service.store is None:
            await loop.run_in_executor(self.executor, service.restore, self.snapshot_dir)
        self.service, self.problem, self.ready = service, None, True
        log.info("ready: %d features", len(service.profile.schema.features))
        return True

    async def _load_until_done(self) -> None:
        # An unreachable store is retried soon (it usually comes back in seconds); an
        # unusable reference needs someone to fix it.
        delay = self.RETRY_FIRST
        store_delay = 1.0
        while not await self._load():
            if self.problem and self.problem.startswith("store "):
                await asyncio.sleep(store_delay)
                store_delay = min(store_delay * 2, 30.0)
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RETRY_MAX)

    async def start(self, app: web.Application) -> None:
        if not await self._load():
            self._tasks.append(asyncio.create_task(self._load_until_done()))
        self._tasks += [
            asyncio.create_task(self._evaluation_loop()),
            asyncio.create_task(self._snapshot_loop()),
            asyncio.create_task(self._flush_loop()),
        ]
        if self.certificate is not None:
            self._tasks.append(asyncio.create_task(self._certificate_loop()))
        source = self.config.data.reference
        if source is not None and source.reload_interval is not None:
            self._tasks.append(asyncio.create_task(self._reload_loop()))

    async def stop(self, app: web.Application) -> None:
        """Graceful shutdown: the server stopped accepting; drain, save, stop."""
        self.stopping = True
        self.ready = False
        for t in self._tasks:
            t.cancel()
        loop = asyncio.get_running_loop()
        # Everything answered 2xx went through the executor; wait for what is still queued.
        await loop.run_in_executor(None, self.executor.shutdown, True)
        service = self.service
        if service is not None and service.store is not None:
            # What was accepted goes to the store before the process ends.
            work = service.take_flush_work()
            for attempt in range(3):
                try:
                    result = service.store.flush(work)
                    service.apply_flush_result(result)  # pairs completed now count too
                    if service.backlog() == 0 and not service.state.dirty:
                        log.info("final flush to %s done", service.store.url)
                        break
                    work = service.take_flush_work()
                except StoreUnavailable as e:
                    log.error("final flush failed (attempt %d): %s", attempt + 1, e)
                    time.sleep(1.0)
        if self.snapshot_dir is not None and service is not None and service.store is None:
            try:
                service.save(self.snapshot_dir)
                log.info("final snapshot saved to %s", self.snapshot_dir)
            except OSError as e:
                log.error("final snapshot to %s failed: %s", self.snapshot_dir, e)
        self.evaluator.shutdown(wait=False, cancel_futures=True)
        self.store_io.shutdown(wait=False, cancel_futures=True)
        self.reloader.shutdown(wait=False, cancel_futures=True)

    # -- handlers ------------------------------------------------------------------------------

    def _needs_token(self, endpoint: str) -> bool:
        if not self.token.enabled:
            return False
        return not (endpoint == "cloudevents" and self.config.ingestion.kserve_logger_without_token)

    async def _ingest(self, request: web.Request, endpoint: str, apply) -> web.Response:
        if self._needs_token(endpoint) and not self.token.allows(
            request.headers.get("Authorization")
        ):
            self.ingestion.request(endpoint, 401)
            return _json_response(
                {"error": "missing or wrong bearer token", "field": "Authorization"},
                401,
                {"WWW-Authenticate": 'Bearer realm="model-monitor"'},
            )
        if self.stopping:
            self.ingestion.request(endpoint, 503)
            return _json_response({"error": "shutting down"}, 503, {"Retry-After": "5"})
        if self.service is None:
            self.ingestion.request(endpoint, 503)
            return _json_response(
                {"error": f"not ready: {self.problem or 'starting'}"}, 503, {"Retry-After": "30"}
            )
        limit = self.config.ingestion.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            self.ingestion.request(endpoint, 413)
            return _json_response(
                {"error": f"body larger than {limit} bytes", "field": "body"}, 413
            )
        if self.store_full():
            self.ingestion.request(endpoint, 503)
            store = self.service.store if self.service else None
            return _json_response(
                {
                    "error": f"{store.last_error if store else 'store unreachable'}; "
                    f"{self.config.store.max_buffered if self.config.store else 0} predictions "
                    "and halves are kept meanwhile, and that many are waiting: retry later"
                },
                503,
                {"Retry-After": "5"},
            )
        if self.queued >= self.config.ingestion.max_queue:
            self.ingestion.request(endpoint, 429)
            return _json_response(
                {"error": "overloaded: too many batches waiting; retry later"},
                429,
                {"Retry-After": "1"},
            )
        try:
            body = await request.read()  # bounded by the app's client_max_size
        except web.HTTPRequestEntityTooLarge:
            self.ingestion.request(endpoint, 413)
            return _json_response(
                {"error": f"body larger than {limit} bytes", "field": "body"}, 413
            )
        self.queued += 1
        self.ingestion.queue_depth.labels(**self._labels()).set(self.queued)
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            result = await loop.run_in_executor(self.executor, apply, body)
        except PayloadError as e:
            self.ingestion.request(endpoint, e.status)
            if endpoint == "cloudevents":
                self.ingestion.kserve_refused(refusal_reason(e))
            return _json_response(e.to_json(), e.status)
        except StoreUnavailable as e:  # labels are joined in the store: nothing was applied
            self.ingestion.request(endpoint, 503)
            return _json_response({"error": f"{e}; retry later"}, 503, {"Retry-After": "5"})
        finally:
            self.queued -= 1
            self.ingestion.queue_depth.labels(**self._labels()).set(self.queued)
        self.ingestion.batch_seconds.labels(**self._labels()).observe(time.perf_counter() - start)
        self.ingestion.request(endpoint, 200)
        return _json_response(result)

    def store_full(self) -> bool:
        """The shared store is away and the predictions kept meanwhile reached the bound."""
        service, cfg = self.service, self.config.store
        return (
            service is not None
            and cfg is not None
            and service.store is not None
            and not service.store.reachable
            and service.backlog() >= cfg.max_buffered
        )

    def _current(self) -> MonitorService:
        assert self.service is not None  # _ingest checked
        return self.service

    async def records(self, request: web.Request) -> web.Response:
        return await self._ingest(request, "records", lambda b: self._current().ingest_records(b))

    async def labels(self, request: web.Request) -> web.Response:
        return await self._ingest(request, "labels", lambda b: self._current().ingest_labels(b))

    async def cloudevents(self, request: web.Request) -> web.Response:
        headers = {
            k.lower(): v
            for k, v in request.headers.items()
            if k.lower().startswith("ce-") or k.lower() == "content-type"
        }
        return await self._ingest(
            request, "cloudevents", lambda b: self._current().ingest_cloudevent(headers, b)
        )

    async def status(self, request: web.Request) -> web.Response:
        if self.service is None:
            return _json_response(
                {"ready": False, "error": self.problem or "starting"}, 503, {"Retry-After": "30"}
            )
        return _json_response(self.service.status_document())

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(self, request: web.Request) -> web.Response:
        return _json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        if self.stopping:
            return _json_response({"status": "stopping"}, 503)
        if not self.ready:
            return _json_response({"status": "not ready", "error": self.problem or "starting"}, 503)
        return _json_response({"status": "ready"})

    async def openapi(self, request: web.Request) -> web.Response:
        if self.service is None:
            return _json_response({"error": f"not ready: {self.problem or 'starting'}"}, 503)
        open_events = self.token.enabled and self.config.ingestion.kserve_logger_without_token
        return _json_response(openapi_document(self.service.profile.schema, open_events))


@web.middleware
async def _errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status >= 400:
            kept = {k: v for k, v in e.headers.items() if k in ("Allow", "Retry-After")}
            return _json_response({"error": e.reason}, e.status, kept)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _json_response({"error": "internal error"}, 500)


def build_app(
    config: WorkerConfig,
    load: Loader,
    certificate: ServingCertificate | None = None,
) -> web.Application:
    worker = Worker(config, load, certificate)
    app = web.Application(middlewares=[_errors], client_max_size=config.ingestion.max_body_bytes)
    app[WORKER] = worker
    app.router.add_post("/v1/records", worker.records)
    app.router.add_post("/v1/labels", worker.labels)
    app.router.add_post("/v1/cloudevents", worker.cloudevents)
    app.router.add_get("/v1/status", worker.status)
    app.router.add_get("/metrics", worker.metrics)
    app.router.add_get("/healthz", worker.healthz)
    app.router.add_get("/readyz", worker.readyz)
    app.router.add_get("/openapi.json", worker.openapi)
    app.on_startup.append(worker.start)
    app.on_shutdown.append(worker.stop)
    return app


def run(config: WorkerConfig, load: Loader, host: str, port: int) -> None:
    """Serve until SIGTERM; raises :class:`~monitor_worker.tls.TlsError` when ``tls`` is set
    and no certificate can be read."""
    certificate = ServingCertificate(config.tls) if config.tls is not None else None
    app = build_app(config, load, certificate)
    scheme = "https" if certificate else "http"
    log.info("listening on %s://%s:%d (pid %d)", scheme, host, port, os.getpid())
    web.run_app(
        app, host=host, port=port, print=None, shutdown_timeout=10, access_log=None,
        ssl_context=certificate.context if certificate else None,
    )  # fmt: skip
