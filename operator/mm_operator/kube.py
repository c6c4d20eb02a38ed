"""A thin Kubernetes API layer: server-side apply with one field manager, get, delete and
status patches, with retries and backoff on throttling (429), conflicts (409) and
transient server errors. Resource paths are known up front, so no discovery round-trips."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from .metrics import API_REQUESTS, API_RETRIES

FIELD_MANAGER = "model-monitor-operator"
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


RESOURCES = {
    ("v1", "ConfigMap"): Resource("v1", "configmaps"),
    ("v1", "Secret"): Resource("v1", "secrets"),
    ("v1", "Service"): Resource("v1", "services"),
    ("v1", "Event"): Resource("v1", "events"),
    ("v1", "PersistentVolumeClaim"): Resource("v1", "persistentvolumeclaims"),
    ("apps/v1", "Deployment"): Resource("apps/v1", "deployments"),
    ("policy/v1", "PodDisruptionBudget"): Resource("policy/v1", "poddisruptionbudgets"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): Resource("autoscaling/v2", "horizontalpodautoscalers"),
    ("apps/v1", "StatefulSet"): Resource("apps/v1", "statefulsets"),
    ("networking.k8s.io/v1", "NetworkPolicy"): Resource("networking.k8s.io/v1", "networkpolicies"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): Resource("monitoring.coreos.com/v1", "servicemonitors"),
    ("monitoring.coreos.com/v1", "PrometheusRule"): Resource("monitoring.coreos.com/v1", "prometheusrules"),
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): Resource("monitoring.coreos.com/v1alpha1", "alertmanagerconfigs"),
    ("serving.kserve.io/v1beta1", "InferenceService"): Resource("serving.kserve.io/v1beta1", "inferenceservices"),
    ("cert-manager.io/v1", "Certificate"): Resource("cert-manager.io/v1", "certificates"),
    ("modelmonitor.io/v1alpha1", "ModelMonitor"): Resource("modelmonitor.io/v1alpha1", "modelmonitors"),
}  # fmt: skip


def resource(api_version: str, kind: str) -> Resource:
    return RESOURCES[(api_version, kind)]


class NotFound(Exception):
    pass


class Kube:
    """Synchronous API access for handlers (kopf runs sync handlers in a thread pool)."""

    def __init__(
        self, api_client: client.ApiClient, *, max_attempts: int = 6, timeout: float = 30.0
    ) -> None:
        self.api = api_client
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._api_groups: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
        # Enough connections for kopf's worker threads; the default pool of 4 serialises them.
        configuration.connection_pool_maxsize = 32
        return cls(client.ApiClient(configuration))

    # -- requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
        conflict_ok: bool = False,
    ) -> Any:
        """Send one request, retrying throttling, conflicts (unless ``conflict_ok``: a 409 is
        then the answer) and transient server errors with backoff."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        delay = 0.2
        for attempt in range(1, self.max_attempts + 1):
            try:
                API_REQUESTS.labels(method=method).inc()
                return self._send(method, path, headers, body, query or [])
            except ApiException as e:
                if e.status == 404:
                    raise NotFound(path) from None
                retry = (
                    e.status in RETRY_STATUSES
                    and not (conflict_ok and e.status == 409)
                    and attempt < self.max_attempts
                )
                if not retry:
                    raise
                wait = _retry_after(e) or delay
            except HTTPError:
                if attempt >= self.max_attempts:
                    raise
                wait = delay
            API_RETRIES.inc()
            log.debug("retrying %s %s in %.2fs (attempt %d)", method, path, wait, attempt)
            time.sleep(wait * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        query: list[tuple[str, str]],
    ) -> Any:
        method_, url, headers_, body_, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method_, url, header_params=headers_, body=body_, post_params=post,
            _request_timeout=self.timeout,
        )  # fmt: skip
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else None

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` as this operator's field manager (forcing ownership)."""
        res = resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return self.request(
            "PATCH",
            res.path(meta.get("namespace"), meta["name"]),
            body=obj,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.request("GET", resource(api_version, kind).path(namespace, name))

    def get_or_none(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        try:
            return self.get(api_version, kind, namespace, name)
        except NotFound:
            return None

    def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str
    ) -> list[dict[str, Any]]:
        out = self.request(
            "GET",
            resource(api_version, kind).path(namespace),
            query=[("labelSelector", label_selector)],
        )
        return list((out or {}).get("items") or [])

    def merge_patch(
        self, api_version: str, kind: str, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch: sets the keys given, removes those given as null, leaves the
        rest (the operator patches Secrets it cannot read)."""
        return self.request(
            "PATCH",
            resource(api_version, kind).path(namespace, name),
            body=body,
            query=[("fieldManager", FIELD_MANAGER)],
            content_type="application/merge-patch+json",
        )

    def create_if_absent(self, obj: dict[str, Any]) -> bool:
        """Create ``obj``; False when one of that name exists (409 AlreadyExists, not
        retried). Needs only the ``create`` verb: no read of what is there."""
        res = resource(obj["apiVersion"], obj["kind"])
        try:
            self.request(
                "POST", res.path(obj["metadata"].get("namespace")), body=obj, conflict_ok=True
            )
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete if present; True when something was deleted."""
        try:
            self.request("DELETE", resource(api_version, kind).path(namespace, name))
            return True
        except NotFound:
            return False

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        path = (
            resource("modelmonitor.io/v1alpha1", "ModelMonitor").path(namespace, name) + "/status"
        )
        return self.request(
            "PATCH", path, body={"status": status}, content_type="application/merge-patch+json"
        )

    # -- discovery ---------------------------------------------------------------------------

    def has_api(self, group_version: str, kind: str, ttl: float = 60.0) -> bool:
        """Whether the API server serves ``kind`` in ``group_version`` (cached for ``ttl`` s)."""
        key = f"{group_version}/{kind}"
        with self._lock:
            cached = self._api_groups.get(key)
        if cached and time.monotonic() - cached[0] < ttl:
            return cached[1]
        try:
            out = self.request("GET", f"/apis/{group_version}")
            present = any(r.get("kind") == kind for r in out.get("resources", []))
        except NotFound:
            present = False
        with self._lock:
            self._api_groups[key] = (time.monotonic(), present)
        return present


def _retry_after(e: ApiException) -> float | None:
    value = (e.headers or {}).get("Retry-After")
    try:
        return min(float(value), 10.0) if value else None
    except ValueError:
        return None
