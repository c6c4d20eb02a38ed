"""Where the reference is: a file on disk (a mounted ConfigMap or PVC), or an http(s) URL
downloaded into a cache directory beside its ETag, and a version that changes when its
contents do (for reloads). No pyarrow here: the serving process checks for new contents
without loading the libraries that read them (:mod:`monitor_worker.reference` does, in the
profiling child)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mm_api.worker_config import ReferenceSource

_DOWNLOAD_CHUNK = 1 << 20


class ReferenceDataError(RuntimeError):
    """The reference cannot be found or read; the message names the file or URL and why."""


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
    try:
        files = sorted(Path(directory).iterdir())
    except OSError as e:
        raise ReferenceDataError(f"data.reference.headersDir {directory}: {e.strerror}") from None
    for f in files:
        if f.is_file() and not f.name.startswith("."):
            out[f.name] = f.read_text().strip()
    return out


def _cache_dir(source: ReferenceSource) -> Path:
    if source.cache_dir:
        return Path(source.cache_dir)
    return Path(os.environ.get("TMPDIR", "/tmp")) / "model-monitor-reference"


def locate(source: ReferenceSource, timeout: float = 60.0) -> ReferenceFile:
    """The reference as a local file. A URL is downloaded into ``source.cache_dir`` (streamed
    to disk, never held in memory) and kept with its ETag: a later call asks with
    If-None-Match and downloads again only when the server has other contents (200), not on
    304. Error messages name the URL without its query (signed URLs carry credentials)."""
    if source.path is not None:
        path = Path(source.path)
        try:
            version = file_version(path)
        except OSError as e:
            raise ReferenceDataError(f"data.reference.path {path}: {e.strerror}") from None
        return ReferenceFile(path, format_of(source, path.name), str(path), version)
    assert source.url is not None
    where = source.url.split("?", 1)[0]
    cache = _cache_dir(source)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReferenceDataError(f"data.reference.cacheDir {cache}: {e.strerror}") from None
    key = hashlib.sha256(source.url.encode()).hexdigest()[:16]
    target, etag_file = cache / f"{key}.data", cache / f"{key}.etag"
    headers = read_headers(source.headers_dir)
    if target.exists() and etag_file.exists():
        headers["If-None-Match"] = etag_file.read_text().strip()
    request = urllib.request.Request(source.url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            tmp = cache / f".{key}.{os.getpid()}.part"
            digest = hashlib.sha256()
            with open(tmp, "wb") as out:
                while chunk := r.read(_DOWNLOAD_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, target)
            # Without an ETag the contents' hash is the version: the same bytes downloaded
            # again are not a new reference.
            etag_file.write_text(r.headers.get("ETag") or f"sha256:{digest.hexdigest()[:32]}")
    except urllib.error.HTTPError as e:
        if e.code != 304:
            raise ReferenceDataError(
                f"data.reference.url {where}: HTTP {e.code} {e.reason}"
            ) from None
    except Exception as e:
        reason = getattr(e, "reason", None) or e
        raise ReferenceDataError(
            f"data.reference.url {where}: {type(e).__name__}: {reason}"
        ) from None
    if not target.exists():
        raise ReferenceDataError(f"data.reference.url {where}: nothing downloaded")
    return ReferenceFile(
        target, format_of(source, source.url), where, etag_file.read_text().strip()
    )
