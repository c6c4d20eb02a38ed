"""A ModelMonitor as the operator reads it: identity plus the typed spec of :mod:`mm_api.spec`,
parsed once; everything downstream reads :class:`Monitor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mm_api.alerts import MonitorRef
from mm_api.sections import format_validation_error
from mm_api.spec import API_VERSION, KIND, ModelMonitorSpec


class SpecError(ValueError):
    """The spec passed the CRD's schema but cannot be used; the message names the field."""


@dataclass(frozen=True)
class Monitor:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: ModelMonitorSpec

    @property
    def model_name(self) -> str:
        return self.spec.model.name or self.name

    @property
    def ref(self) -> MonitorRef:
        """Who alert rules and metrics are about."""
        return MonitorRef(self.namespace, self.name, self.model_name)

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def parse_monitor(body: dict[str, Any]) -> Monitor:
    """Parse a ModelMonitor object (as the API server returns it) into a :class:`Monitor`."""
    meta = body.get("metadata", {})
    try:
        spec = ModelMonitorSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        raise SpecError(format_validation_error(e, prefix="spec")) from None
    return Monitor(
        name=meta["name"],
        namespace=meta.get("namespace", "default"),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0)),
        spec=spec,
    )
