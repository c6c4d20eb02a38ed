"""Saving and restoring the window state, so a restart loses nothing.

A snapshot is one JSON file written atomically (temporary file, fsync, rename). A snapshot
that cannot be read, or that was made for another reference or config (its fingerprint
differs), is moved aside as ``*.corrupt`` / ``*.stale`` with a warning, and the worker starts
fresh: it never crash-loops on its own state."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
FILE_NAME = "state.json"


def write_snapshot(directory: Path, document: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / FILE_NAME
    tmp = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    payload = orjson.dumps(
        {"version": FORMAT_VERSION, "savedAt": time.time(), **document},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def read_snapshot(directory: Path, fingerprint: str) -> dict[str, Any] | None:
    """The saved document, or None (no snapshot, or one that cannot be used)."""
    path = directory / FILE_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("snapshot %s unreadable (%s): starting fresh", path, e.strerror)
        return None
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"unknown format version {doc.get('version') if isinstance(doc, dict) else '?'}"
            )
    except ValueError as e:
        _move_aside(path, "corrupt")
        log.warning("snapshot %s is corrupt (%s): moved aside, starting fresh", path, e)
        return None
    if doc.get("fingerprint") != fingerprint:
        _move_aside(path, "stale")
        log.warning(
            "snapshot %s was made for another reference or config: moved aside, starting fresh",
            path,
        )
        return None
    return doc


def _move_aside(path: Path, suffix: str) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(f"{path.name}.{suffix}"))
