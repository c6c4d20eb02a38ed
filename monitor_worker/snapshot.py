"""Saving and restoring the window state, so a restart loses nothing.

A snapshot is one ``.npz`` file (numpy's zip of arrays): every array of the state is stored
as it is in memory, and the rest of the document (ids, counters, the layout) is one JSON
member pointing at them. Writing arrays directly, instead of as JSON text, keeps the file
~3x smaller and avoids a transient copy of the whole state as Python objects, which
mattered for the worker's 300 MB budget (docs/benchmarks.md).

Writes are atomic (temporary file, fsync, rename). A snapshot that cannot be read, or that
was made for another reference or config (its fingerprint differs), is moved aside as
``*.corrupt`` / ``*.stale`` with a warning, and the worker starts fresh: it never
crash-loops on its own state."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson

log = logging.getLogger(__name__)
FORMAT_VERSION = 2
FILE_NAME = "state.npz"
META = "__meta__"


def _split(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The document with each array replaced by ``{"$array": name}`` (arrays collected)."""
    if isinstance(obj, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {"$array": name}
    if isinstance(obj, dict):
        return {k: _split(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, arrays) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"$array"}:
            return arrays[obj["$array"]]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def write_snapshot(directory: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` atomically. Its arrays are read, not copied: call this where the
    state cannot change meanwhile (the worker's ingest thread)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / FILE_NAME
    tmp = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    arrays: dict[str, np.ndarray] = {}
    layout = _split(document, arrays)
    meta = orjson.dumps({"version": FORMAT_VERSION, "savedAt": time.time(), "document": layout})
    with open(tmp, "wb") as f:
        members: dict[str, Any] = {META: np.frombuffer(meta, dtype=np.uint8), **arrays}
        np.savez(f, **members)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def read_snapshot(directory: Path, fingerprint: str) -> dict[str, Any] | None:
    """The saved document, or None (no snapshot, or one that cannot be used)."""
    path = directory / FILE_NAME
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = orjson.loads(z[META].tobytes())
            if not isinstance(meta, dict) or meta.get("version") != FORMAT_VERSION:
                raise ValueError(
                    f"unknown format version {meta.get('version') if isinstance(meta, dict) else '?'}"
                )
            document = _join(meta["document"], {k: z[k] for k in z.files if k != META})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        _move_aside(path, "corrupt")
        log.warning("snapshot %s is corrupt (%s): moved aside, starting fresh", path, e)
        return None
    if document.get("fingerprint") != fingerprint:
        _move_aside(path, "stale")
        log.warning(
            "snapshot %s was made for another reference or config: moved aside, starting fresh",
            path,
        )
        return None
    return document


def _move_aside(path: Path, suffix: str) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(f"{path.name}.{suffix}"))


# -- the same documents as bytes, for a shared store ----------------------------------------------

_PACK_MAGIC = b"MMP1"


def pack(document: Any) -> bytes:
    """``document`` (JSON values and numpy arrays) as one byte string: a length-prefixed JSON
    layout, then each array's raw bytes. Read back by :func:`unpack`."""
    arrays: dict[str, np.ndarray] = {}
    layout = _split(document, arrays)
    specs = []
    chunks = []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.hasobject:
            raise ValueError(f"cannot pack an object array ({name})")
        specs.append([name, a.dtype.str, list(a.shape)])
        chunks.append(a.tobytes())
    meta = orjson.dumps({"layout": layout, "arrays": specs})
    return b"".join([_PACK_MAGIC, len(meta).to_bytes(4, "little"), meta, *chunks])


def unpack(data: bytes) -> Any:
    """Inverse of :func:`pack`; raises ValueError for bytes it did not write."""
    if data[:4] != _PACK_MAGIC:
        raise ValueError("not a packed document")
    size = int.from_bytes(data[4:8], "little")
    meta = orjson.loads(data[8 : 8 + size])
    offset = 8 + size
    arrays = {}
    for name, dtype, shape in meta["arrays"]:
        dt = np.dtype(dtype)
        count = int(np.prod(shape)) if shape else 1
        end = offset + count * dt.itemsize
        if end > len(data):
            raise ValueError("packed document is truncated")
        arrays[name] = (
            np.frombuffer(data, dtype=dt, count=count, offset=offset).reshape(shape).copy()
        )
        offset = end
    return _join(meta["layout"], arrays)
