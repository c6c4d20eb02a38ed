"""Loading the reference dataset (CSV, JSON lines or Parquet; a file or an http(s) URL) with
pyarrow, and inferring feature types when the config declares none. Text features are string
columns; embedding features are list columns (JSON lines arrays, Parquet lists), which CSV
cannot hold."""

from __future__ import annotations

import io
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from mm_api.worker_config import ReferenceSource, WorkerConfig

from .ingest import PayloadError, categorical_column
from .ingest.rich_values import vector_column
from .schema import Feature

MAX_DOWNLOAD_BYTES = 1 << 30


class ReferenceDataError(RuntimeError):
    """The reference cannot be read; the message says which file or URL and why."""


@dataclass
class ReferenceData:
    table: pa.Table
    source: str

    @property
    def n_rows(self) -> int:
        return int(self.table.num_rows)

    def numbers(self, name: str) -> np.ndarray:
        """A numerical column as float64 (null -> NaN)."""
        col = self.table.column(name)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise ReferenceDataError(f"{self.source}: column {name!r} is {col.type}, not numerical")
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)

    def categories(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A categorical column as (strings, missing mask), by the same rules as ingested
        data (``3`` and ``"3"`` are one category, booleans are ``true``/``false``)."""
        try:
            return categorical_column(self.table.column(name).to_pylist(), f"{name}[{{i}}]")
        except PayloadError as e:
            raise ReferenceDataError(f"{self.source}: column {e}") from None

    def has(self, name: str) -> bool:
        return name in self.table.column_names

    def texts(self, name: str) -> list[str | None]:
        """A text column (null -> None)."""
        col = self.table.column(name)
        t = col.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)):
            raise ReferenceDataError(f"{self.source}: column {name!r} is {t}, not text")
        return col.to_pylist()

    def vectors(self, name: str, dimension: int) -> np.ndarray:
        """An embedding column as ``(rows, dimension)`` float64; rows whose vector is null are
        left out, any other bad row is an error naming it."""
        col = self.table.column(name)
        if not (pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type)
                or pa.types.is_large_list(col.type)):  # fmt: skip
            raise ReferenceDataError(
                f"{self.source}: column {name!r} is {col.type}, not a list of numbers "
                "(vectors need a JSON lines or Parquet reference)"
            )
        values = [v for v in col.to_pylist() if v is not None]
        if not values:
            raise ReferenceDataError(f"{self.source}: column {name!r} holds no vectors")
        try:
            return vector_column(values, f"{name}[{{i}}]", dimension)
        except PayloadError as e:
            raise ReferenceDataError(f"{self.source}: column {e}") from None


def _format_of(source: ReferenceSource, name: str) -> str:
    if source.format != "auto":
        return source.format
    lowered = name.lower().split("?")[0]
    for suffix, fmt in (
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".csv", "csv"),
    ):
        if lowered.endswith(suffix):
            return fmt
    return "csv"


def _read_bytes(source: ReferenceSource, timeout: float) -> tuple[bytes, str]:
    if source.path is not None:
        path = Path(source.path)
        try:
            return path.read_bytes(), str(path)
        except OSError as e:
            raise ReferenceDataError(f"data.reference.path {path}: {e.strerror}") from None
    assert source.url is not None
    try:
        with urllib.request.urlopen(source.url, timeout=timeout) as r:
            data = r.read(MAX_DOWNLOAD_BYTES + 1)
    except Exception as e:
        raise ReferenceDataError(f"data.reference.url {source.url}: {e}") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise ReferenceDataError(f"data.reference.url {source.url}: larger than 1 GiB")
    return data, source.url


def load_reference(source: ReferenceSource, timeout: float = 60.0) -> ReferenceData:
    data, where = _read_bytes(source, timeout)
    fmt = _format_of(source, where)
    try:
        if fmt == "parquet":
            table = pq.read_table(io.BytesIO(data))
        elif fmt == "jsonl":
            table = pajson.read_json(io.BytesIO(data))
        else:
            table = pacsv.read_csv(io.BytesIO(data))
    except (pa.ArrowException, OSError) as e:
        raise ReferenceDataError(f"{where}: not readable as {fmt}: {e}") from None
    if table.num_rows == 0:
        raise ReferenceDataError(f"{where}: no rows")
    return ReferenceData(table, where)


def infer_features(reference: ReferenceData, config: WorkerConfig) -> list[Feature]:
    """Every column but id, timestamp, prediction, score (and a multiclass model's per-class
    score columns) and label: numbers are numerical, everything else (strings, booleans)
    categorical."""
    roles = {
        "id",
        "timestamp",
        config.data.prediction_column,
        config.data.label_column,
        config.data.score_column,
    }
    if config.model.task == "multiclass-classification" and config.model.classes:
        roles.update(config.data.class_score_columns(config.model.classes))
    features = []
    for field in reference.table.schema:
        if field.name in roles:
            continue
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        if pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type):
            first = next((v for v in reference.table.column(field.name).to_pylist() if v), None)
            if first is not None:  # a list of numbers per row: an embedding
                features.append(Feature(field.name, "embedding", dimension=len(first)))
                continue
        features.append(Feature(field.name, "numerical" if numeric else "categorical"))
    return features


def check_reference_has(reference: ReferenceData, features: list[Feature]) -> None:
    missing = [f.name for f in features if not reference.has(f.name)]
    if missing:
        raise ReferenceDataError(
            f"{reference.source}: no column for declared feature(s) {', '.join(missing[:10])}"
        )


def reference_for(config: WorkerConfig) -> ReferenceData | None:
    return load_reference(config.data.reference) if config.data.reference else None
