"""Reading the reference dataset (CSV, JSON lines or Parquet; a file or an http(s) URL, found
by :mod:`monitor_worker.reference_files`) with pyarrow, and inferring feature types when the
config declares none. Text features are string columns; embedding features are list columns
(JSON lines arrays, Parquet lists), which CSV cannot hold.

References of any size: one that fits in ``data.reference.sampleRows`` rows is read whole. A
larger one is read in record batches, never whole: once for a uniform sample of
``sampleRows`` rows (bottom-k sampling: each row gets a seeded random key, the rows with the
smallest keys are kept), which gives the bins, vocabularies, exact-test samples and model
fits; once more, by :func:`monitor_worker.profile.build_profile`, for the exact reference
histograms over those bins. CSV and JSON lines are read by blocks of rows; Parquet one column
at a time (its reader decodes a row group's columns together otherwise: ~90 MB for 250k rows
of 24 columns), the sample's rows chosen from their keys alone before any is read. Memory is
bounded by the sample and a few batches (docs/benchmarks.md: a 1 GB CSV and Parquet
profiled). Only the profiling child imports this module (:mod:`monitor_worker.loader`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from mm_api.worker_config import ReferenceSource, WorkerConfig

from .ingest import PayloadError, categorical_column
from .ingest.rich_values import vector_column
from .reference_files import ReferenceDataError, ReferenceFile, locate
from .schema import Feature

__all__ = ["ReferenceData", "ReferenceDataError", "load_reference", "reference_for"]

BATCH_ROWS = 65_536
#: CSV is read by blocks of this many bytes: pyarrow's streaming CSV reader holds several
#: blocks ahead, so 8 MB blocks cost ~300 MB where 1 MB blocks cost ~40 (a 1 GB file).
_CSV_BLOCK = 1 << 20
_JSON_BLOCK = 8 << 20  # JSON lines: blocks of whole lines, each parsed alone


@dataclass
class ReferenceData:
    """The reference's rows in memory: all of them, or a uniform sample of a larger file
    (``sampled``), whose every row :meth:`parts` reads again."""

    table: pa.Table
    source: str
    #: The file it was read from (None: a table given in memory).
    file: ReferenceFile | None = None
    #: Rows of the whole file (more than ``n_rows`` when sampled).
    total_rows: int | None = None

    @property
    def n_rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def sampled(self) -> bool:
        return self.total_rows is not None and self.total_rows > self.n_rows

    def parts(self, columns: list[str]) -> Iterator[ReferenceData]:
        """Every row of the file again, ``columns`` only, in parts that each hold some of the
        columns for some of the rows, each (row, column) once and the rows of a column in file
        order: record batches of every column (CSV, JSON lines) or of one column (Parquet)."""
        if self.file is None or not self.sampled:
            yield ReferenceData(self.table.select(columns), self.source)
            return
        if self.file.fmt == "parquet" and columns:
            for name in columns:
                for batch in column_batches(self.file, name):
                    yield ReferenceData(pa.Table.from_batches([batch]), self.source)
            return
        for batch in batches(self.file, columns):
            yield ReferenceData(pa.Table.from_batches([batch]), self.source)

    def numbers(self, name: str) -> np.ndarray:
        """A numerical column as float64 (null -> NaN)."""
        col = self.table.column(name)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise ReferenceDataError(f"{self.source}: column {name!r} is {col.type}, not numerical")
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)

    def categories(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A categorical column as (strings, missing mask), by the same rules as ingested
        data (``3`` and ``"3"`` are one category, booleans are ``true``/``false``)."""
        col = self.table.column(name)
        if pa.types.is_integer(col.type):
            return _integer_categories(col)
        try:
            return categorical_column(col.to_pylist(), f"{name}[{{i}}]")
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


def _integer_categories(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`categorical_column` of an integer column without its Python list: each distinct
    value spelt once, the strings no wider than the longest (numpy's ``astype(str)`` of
    int64 is 21 characters: 84 bytes a row, in every copy and sort that follows)."""
    missing = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    values = col.fill_null(0).to_numpy()
    uniques, inverse = np.unique(values, return_inverse=True)
    strings = np.array([str(u) for u in uniques.tolist()], dtype=str)[inverse]
    strings[missing] = ""
    return strings, missing


def release_memory() -> None:
    """Hand what pyarrow's memory pool holds free back to the system (its allocator keeps
    freed pages a while, and pickling the profile then needs memory of its own)."""
    pa.default_memory_pool().release_unused()


def load_reference(source: ReferenceSource, timeout: float = 60.0) -> ReferenceData:
    """The reference of ``source``: whole, or sampled when it has more than
    ``source.sampleRows`` rows."""
    return read_file(locate(source, timeout), source.sample_rows)


def read_file(f: ReferenceFile, sample_rows: int) -> ReferenceData:
    table, total = sample(f, sample_rows)
    return ReferenceData(table, f.where, file=f, total_rows=total)


def batches(f: ReferenceFile, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The file's rows in record batches (CSV by blocks of 1 MB, JSON lines of ~8 MB, Parquet
    in batches of at most 64k rows)."""
    try:
        if f.fmt == "parquet":
            yield from _parquet(f).iter_batches(
                batch_size=BATCH_ROWS, columns=columns, use_threads=False
            )
        elif f.fmt == "jsonl":
            yield from _json_lines(f, columns)
        else:
            convert = pacsv.ConvertOptions(include_columns=columns) if columns else None
            reader = pacsv.open_csv(
                f.path,
                read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK, use_threads=False),
                convert_options=convert,
            )
            yield from reader
    except (pa.ArrowException, OSError) as e:
        raise ReferenceDataError(f"{f.where}: not readable as {f.fmt}: {e}") from None


def column_batches(f: ReferenceFile, name: str) -> Iterator[pa.RecordBatch]:
    """One column of a Parquet file, every row, in record batches of at most 64k rows: what
    is decoded at a time is that column's pages, not a row group's every column."""
    try:
        yield from _parquet(f).iter_batches(
            batch_size=BATCH_ROWS, columns=[name], use_threads=False
        )
    except (pa.ArrowException, OSError) as e:
        raise ReferenceDataError(f"{f.where}: not readable as {f.fmt}: {e}") from None


def _parquet(f: ReferenceFile) -> pq.ParquetFile:
    # No pre-buffering, 1 MB reads, one thread (iter_batches): memory is the pages being
    # decoded, not the file's.
    try:
        return pq.ParquetFile(f.path, pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowException, OSError) as e:
        raise ReferenceDataError(f"{f.where}: not readable as {f.fmt}: {e}") from None


def _json_lines(f: ReferenceFile, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    # pyarrow has no streaming JSON reader: blocks of whole lines, each read alone, with the
    # first block's schema for the rest (so a column cannot change its type half way).
    with open(f.path, "rb") as fh:
        schema = None
        while True:
            block = fh.read(_JSON_BLOCK)
            if not block:
                break
            block += fh.readline()
            options = pajson.ParseOptions(explicit_schema=schema) if schema else None
            table = pajson.read_json(pa.BufferReader(block), parse_options=options)
            schema = schema or table.schema
            if columns:
                table = table.select(columns)
            yield from table.to_batches()


def sample(f: ReferenceFile, max_rows: int, seed: int = 0) -> tuple[pa.Table, int]:
    """(a uniform sample of at most ``max_rows`` rows in file order, the number of rows). The
    whole file when it has no more rows than that."""
    if f.fmt == "parquet":
        return _sample_parquet(f, max_rows, seed)
    rng = np.random.default_rng(seed)
    kept: list[pa.Table] = []  # compacted: a few long columns
    fresh: list[pa.Table] = []  # the batches kept since
    keys: list[np.ndarray] = []  # of the rows of kept, then of fresh
    held = fresh_rows = total = 0
    threshold = 1.0  # once max_rows are held: the largest key kept; a row above it never is
    for batch in batches(f):
        total += batch.num_rows
        key = rng.random(batch.num_rows)
        if threshold < 1.0:
            below = key < threshold
            batch, key = batch.filter(pa.array(below)), key[below]
        fresh.append(pa.Table.from_batches([batch]))
        keys.append(key)
        held += batch.num_rows
        fresh_rows += batch.num_rows
        if fresh_rows >= BATCH_ROWS or held > max_rows + max_rows // 4:
            # Many small batches pin more pages than their bytes: a few long columns free theirs.
            kept.append(pa.concat_tables(fresh, promote_options="default").combine_chunks())
            fresh.clear()
            fresh_rows = 0
        if held > max_rows + max_rows // 4:  # cut back to the max_rows smallest keys so far
            _cut(kept, keys, max_rows)
            held, threshold = kept[0].num_rows, float(keys[0].max())
    if total == 0:
        raise ReferenceDataError(f"{f.where}: no rows")
    kept += fresh
    if total <= max_rows:
        return pa.concat_tables(kept, promote_options="default").combine_chunks(), total
    _cut(kept, keys, max_rows)
    return kept[0], total


def _cut(tables: list[pa.Table], keys: list[np.ndarray], k: int) -> None:
    """Cut ``tables`` and ``keys``, in place, to one table of the rows with the ``k``
    smallest keys (in file order) and their keys. Each column is let go once it is cut: one
    column at a time is held twice, not the table."""
    table = pa.concat_tables(tables, promote_options="default")
    key = np.concatenate(keys)
    tables.clear()
    keys.clear()
    if key.size > k:
        keep = np.sort(np.argpartition(key, k - 1)[:k])  # file order kept
        schema, taken, at = table.schema, [], pa.array(keep)
        while table.num_columns:
            taken.append(table.column(0).take(at))
            table = table.remove_column(0)
            # Its allocator keeps freed pages a while: give them back before the next copy.
            pa.default_memory_pool().release_unused()
        table, key = pa.Table.from_arrays(taken, schema=schema), key[keep]
    tables.append(table)
    keys.append(key)


def _sample_parquet(f: ReferenceFile, max_rows: int, seed: int) -> tuple[pa.Table, int]:
    """:func:`sample` of a Parquet file, which says how many rows it has: the rows are chosen
    from their keys alone (the same keys, so the same rows, as a CSV of the same rows gets),
    then read one column at a time."""
    parquet = _parquet(f)
    total = parquet.metadata.num_rows
    if total == 0:
        raise ReferenceDataError(f"{f.where}: no rows")
    rows = _smallest_keys(total, max_rows, seed)
    columns = []
    for name in parquet.schema_arrow.names:
        parts, start = [], 0
        for batch in column_batches(f, name):
            n = batch.num_rows
            if rows is None:
                parts.append(batch.column(0))
            else:
                lo, hi = np.searchsorted(rows, [start, start + n])
                parts.append(batch.column(0).take(pa.array(rows[lo:hi] - start)))
            start += n
        columns.append(pa.concat_arrays(parts))
    return pa.Table.from_arrays(columns, schema=parquet.schema_arrow), total


def _smallest_keys(total: int, k: int, seed: int) -> np.ndarray | None:
    """The rows (sorted) of the ``k`` smallest of ``total`` seeded keys, drawn in file order
    as :func:`sample` draws them; None when there are no more than ``k`` rows."""
    if total <= k:
        return None
    rng = np.random.default_rng(seed)
    rows, keys = np.empty(0, dtype=np.int64), np.empty(0)
    for start in range(0, total, 1 << 20):
        key = rng.random(min(1 << 20, total - start))
        below = np.flatnonzero(key < (keys.max() if keys.size == k else 1.0))
        rows, keys = np.concatenate([rows, below + start]), np.concatenate([keys, key[below]])
        if keys.size > k:
            keep = np.argpartition(keys, k - 1)[:k]
            rows, keys = rows[keep], keys[keep]
    return np.sort(rows)


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
