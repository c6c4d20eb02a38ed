"""References of any size: the file found (downloaded, for a URL, into a cache directory with
its ETag), read in record batches, and a uniform sample of its rows kept in memory.

A reference that fits in ``sampleRows`` rows is read whole, as before. A larger one is read
twice, in batches, never whole: once for a uniform sample of ``sampleRows`` rows (bottom-k
sampling: each row gets a random key, the rows with the smallest keys are kept), which gives
the bins, vocabularies, exact-test samples and model fits; once more for the exact reference
histograms over those bins (:func:`monitor_worker.profile.build_profile`). Memory is bounded
by the sample and one batch (docs/benchmarks.md: a 1 GB CSV and Parquet profiled)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from mm_api.worker_config import ReferenceSource

#: Rows kept in memory from a larger reference (bins, vocabularies, samples, model fits).
DEFAULT_SAMPLE_ROWS = 200_000
BATCH_ROWS = 65_536
_CSV_BLOCK = 8 << 20
_DOWNLOAD_CHUNK = 1 << 20


class ReferenceError(RuntimeError):
    """The reference cannot be found or read; the message names the file or URL."""


@dataclass(frozen=True)
class ReferenceFile:
    """A reference on local disk: its path, format, what to call it in messages, and a version
    that changes when its contents change (file identity and time, or the URL's ETag)."""

    path: Path
    fmt: str
    where: str
    version: str


def format_of(source: ReferenceSource, name: str) -> str:
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


def file_version(path: Path) -> str:
    """Changes when the file does: a ConfigMap's key is replaced by a new file behind a symlink
    (another inode), an edited file gets another size or time."""
    st = path.stat()  # follows the ConfigMap's ..data symlinks
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def read_headers(directory: str | None) -> dict[str, str]:
    """HTTP headers from a directory of files (a mounted Secret: file name = header name,
    contents = value). Values are never logged."""
    if not directory:
        return {}
    out = {}
    for f in sorted(Path(directory).iterdir()):
        if f.is_file() and not f.name.startswith("."):
            out[f.name] = f.read_text().strip()
    return out


def locate(source: ReferenceSource, cache_dir: Path | None, timeout: float = 60.0) -> ReferenceFile:
    """The reference as a local file. A URL is downloaded into ``cache_dir`` (streamed to disk)
    and kept with its ETag: a later call asks with If-None-Match and downloads again only when
    the server has other contents (200), not on 304."""
    if source.path is not None:
        path = Path(source.path)
        try:
            version = file_version(path)
        except OSError as e:
            raise ReferenceError(f"data.reference.path {path}: {e.strerror}") from None
        return ReferenceFile(path, format_of(source, path.name), str(path), version)
    assert source.url is not None
    if cache_dir is None:
        cache_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "model-monitor-reference"
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(source.url.encode()).hexdigest()[:16]
    target, etag_file = cache_dir / f"{key}.data", cache_dir / f"{key}.etag"
    headers = read_headers(source.headers_dir)
    if target.exists() and etag_file.exists():
        headers["If-None-Match"] = etag_file.read_text().strip()
    request = urllib.request.Request(source.url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            tmp = cache_dir / f".{key}.{os.getpid()}.part"
            with open(tmp, "wb") as out:
                shutil.copyfileobj(r, out, _DOWNLOAD_CHUNK)
            os.replace(tmp, target)
            etag = r.headers.get("ETag") or f"downloaded-{time.time_ns()}"
            etag_file.write_text(etag)
    except urllib.error.HTTPError as e:
        if e.code != 304:
            raise ReferenceError(
                f"data.reference.url {source.url}: HTTP {e.code} {e.reason}"
            ) from None
    except Exception as e:
        raise ReferenceError(f"data.reference.url {source.url}: {type(e).__name__}: {e}") from None
    if not target.exists():
        raise ReferenceError(f"data.reference.url {source.url}: nothing downloaded")
    return ReferenceFile(
        target, format_of(source, source.url), source.url, etag_file.read_text().strip()
    )


def batches(f: ReferenceFile, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The file's rows in record batches (CSV and JSON lines by blocks of ~8 MB, Parquet by
    row groups of at most 64k rows)."""
    try:
        if f.fmt == "parquet":
            yield from pq.ParquetFile(f.path).iter_batches(batch_size=BATCH_ROWS, columns=columns)
        elif f.fmt == "jsonl":
            # pyarrow has no streaming JSON reader: blocks of whole lines, each read alone.
            with open(f.path, "rb") as fh:
                schema = None
                while True:
                    block = fh.read(_CSV_BLOCK)
                    if not block:
                        break
                    rest = fh.readline()
                    table = pajson.read_json(
                        pa.BufferReader(block + rest),
                        parse_options=pajson.ParseOptions(explicit_schema=schema)
                        if schema
                        else None,
                    )
                    schema = schema or table.schema
                    yield from table.to_batches()
        else:
            reader = pacsv.open_csv(f.path, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK))
            yield from reader
    except (pa.ArrowException, OSError) as e:
        raise ReferenceError(f"{f.where}: not readable as {f.fmt}: {e}") from None


def sample(f: ReferenceFile, max_rows: int, seed: int = 0) -> tuple[pa.Table, int]:
    """(a uniform sample of at most ``max_rows`` rows in file order, the number of rows). The
    whole file when it has no more rows than that."""
    rng = np.random.default_rng(seed)
    kept: list[pa.Table] = []
    keys: list[np.ndarray] = []
    held = total = 0
    for batch in batches(f):
        total += batch.num_rows
        kept.append(pa.Table.from_batches([batch]))
        keys.append(rng.random(batch.num_rows))
        held += batch.num_rows
        if held > 2 * max_rows:  # cut back to the max_rows smallest keys seen so far
            table, k = _smallest(kept, keys, max_rows)
            kept, keys, held = [table], [k], table.num_rows
    if total == 0:
        raise ReferenceError(f"{f.where}: no rows")
    if total <= max_rows:
        return pa.concat_tables(kept, promote_options="default"), total
    table, _ = _smallest(kept, keys, max_rows)
    return table, total


def _smallest(
    tables: list[pa.Table], keys: list[np.ndarray], k: int
) -> tuple[pa.Table, np.ndarray]:
    table = pa.concat_tables(tables, promote_options="default")
    key = np.concatenate(keys)
    if key.size <= k:
        return table, key
    keep = np.sort(np.argpartition(key, k - 1)[:k])  # file order kept
    return table.take(pa.array(keep)), key[keep]
