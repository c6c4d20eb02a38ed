"""The worker's config file: the operator renders it into the worker's ConfigMap from a
ModelMonitor, the worker reads it with :func:`load_config`, and a data scientist writes one by
hand to run the worker on a laptop (``examples/worker.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, model_validator

from .durations import Duration
from .sections import (
    DataColumns,
    MonitorSections,
    ReferenceFormat,
    Section,
    Task,
    check_drift_features,
    check_fits_task,
    format_validation_error,
)


class ReferenceSource(Section):
    """Where the worker reads the reference dataset: a file or an http(s) URL."""

    path: str | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    format: ReferenceFormat = "auto"

    @model_validator(mode="after")
    def _exactly_one(self) -> ReferenceSource:
        if (self.path is None) == (self.url is None):
            raise ValueError("set exactly one of path or url")
        return self


class WorkerData(DataColumns):
    reference: ReferenceSource | None = None


class ModelInfo(Section):
    name: str = Field(min_length=1, max_length=63)
    task: Task
    classes: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        max_length=1000,
        description="Class labels in the order of probability vectors (multiclass); optional.",
    )
    positive_class: str = "1"


class Identity(Section):
    name: str = Field(min_length=1)
    namespace: str = "default"


class IngestionSpec(Section):
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_queue: int = Field(default=64, ge=1, description="Batches waiting; more get 429.")
    auth_token_file: str | None = None
    #: POST /v1/cloudevents without the token (KServe's logger sends none); the operator sets
    #: it only behind a NetworkPolicy that admits the InferenceService's predictor pods.
    kserve_logger_without_token: bool = False


class CertificateFiles(Section):
    cert_file: str = Field(min_length=1, description="PEM certificate chain (leaf first).")
    key_file: str = Field(min_length=1, description="PEM private key of the certificate.")


class TlsConfig(Section):
    """https on the listening port. Of the pairs whose files exist, the worker serves the one
    whose certificate became valid last (and is valid now), and looks again every few seconds:
    a mounted Secret that changes, or a pair issued ahead of time whose ``notBefore`` passes,
    is picked up without a restart (docs/kserve.md, "Rotation")."""

    certificates: list[CertificateFiles] = Field(min_length=1, max_length=4)


class SnapshotSpec(Section):
    directory: str | None = None
    interval: Duration = "60s"


class WorkerConfig(MonitorSections):
    """The file ``monitor-worker --config`` reads."""

    monitor: Identity
    model: ModelInfo
    data: WorkerData = Field(default_factory=WorkerData)
    ingestion: IngestionSpec = Field(default_factory=IngestionSpec)
    snapshot: SnapshotSpec = Field(default_factory=SnapshotSpec)
    tls: TlsConfig | None = None

    @model_validator(mode="after")
    def _fits_task(self) -> WorkerConfig:
        check_fits_task(self.model.task, self)
        if self.data.features is not None:
            check_drift_features(self.drift.features, [f.name for f in self.data.features])
        return self


class ConfigError(ValueError):
    """A config that cannot be used; the message names the field."""


def parse_config(data: Any) -> WorkerConfig:
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def load_config(path: str | Path) -> WorkerConfig:
    """Read and validate a worker config file (YAML or JSON)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path} is not valid YAML: {e}") from None
    return parse_config(data)


def worker_config_yaml(config: WorkerConfig) -> str:
    """The file as the operator writes it into the worker's ConfigMap."""
    data = config.model_dump(by_alias=True, exclude_none=True, mode="json")
    return yaml.safe_dump(data, sort_keys=False)
