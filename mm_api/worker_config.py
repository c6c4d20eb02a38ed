"""The worker's config file: the operator renders it into the worker's ConfigMap from a
ModelMonitor, the worker reads it with :func:`load_config`, and a data scientist writes one by
hand to run the worker on a laptop (``examples/worker.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from .durations import Duration
from .sections import (
    DataColumns,
    MonitorSections,
    ReferenceFormat,
    Section,
    Task,
    check_data_fits,
    check_drift_features,
    check_drift_overrides,
    check_fits_task,
    format_validation_error,
)


class ReferenceSource(Section):
    """Where the worker reads the reference dataset: a file or an http(s) URL."""

    path: str | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    format: ReferenceFormat = "auto"
    headers_dir: str | None = Field(
        default=None,
        description="Files whose names are HTTP headers and contents their values (a mounted Secret), sent with the URL.",
    )
    cache_dir: str | None = Field(
        default=None, description="Where a downloaded URL is kept with its ETag."
    )
    sample_rows: int = Field(
        default=200_000,
        ge=1000,
        description="A larger reference is streamed: this many rows sampled, histograms exact.",
    )
    reload_interval: Duration | None = Field(
        default="60s",
        description="How often the worker checks the reference for new contents (a changed file, a new ETag); none: never.",
    )

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


class StoreSpec(Section):
    """The shared state store of replicas (Valkey or Redis, standalone)."""

    url: str = Field(
        pattern=r"^rediss?://", description="redis://host:6379/0, or rediss:// for TLS."
    )
    flush_interval: Duration = Field(
        default="1s", description="How often a replica writes its part of the window."
    )
    password_file: str | None = Field(
        default=None, description="A file holding the password (a mounted Secret)."
    )
    password_env: str = Field(
        default="MM_STORE_PASSWORD", description="Environment variable holding the password."
    )
    max_buffered: int = Field(
        default=1_000_000,
        ge=1,
        description="Predictions and KServe halves kept while the store is unreachable; "
        "beyond it ingestion answers 503.",
    )


class EmbedderSpec(Section):
    """How texts with ``embed: true`` are embedded (monitor_worker/embedder.py). The operator
    renders ``device: cuda`` when the ModelMonitor sets worker.gpu, else ``cpu``."""

    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="cuda falls back to cpu (and says so) without a usable GPU."
    )
    runtime: Literal["auto", "numpy", "sentence-transformers"] = Field(
        default="auto", description="auto: numpy on cpu, sentence-transformers on cuda."
    )
    batch_size: int = Field(default=32, ge=1, le=4096, description="Texts per forward pass.")


class WorkerConfig(MonitorSections):
    """The file ``monitor-worker --config`` reads."""

    monitor: Identity
    model: ModelInfo
    data: WorkerData = Field(default_factory=WorkerData)
    ingestion: IngestionSpec = Field(default_factory=IngestionSpec)
    snapshot: SnapshotSpec = Field(default_factory=SnapshotSpec)
    store: StoreSpec | None = None
    embedder: EmbedderSpec = Field(default_factory=EmbedderSpec)
    tls: TlsConfig | None = None

    @model_validator(mode="after")
    def _fits_task(self) -> WorkerConfig:
        check_fits_task(self.model.task, self)
        check_data_fits(self.data, self)
        check_drift_overrides(self.data, self.drift)
        if self.data.features is not None:
            check_drift_features(
                self.drift.features,
                [f.name for f in self.data.features],
                [f.name for f in self.data.features if f.type == "text"],
            )
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
