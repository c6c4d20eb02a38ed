"""The C allocator's thresholds for a process that takes request bodies of hundreds of kB.

glibc serves allocations above ``M_MMAP_THRESHOLD`` (128 kB at start) with a fresh mmap, and
gives the top of its heap back to the kernel once more than ``M_TRIM_THRESHOLD`` (128 kB) is
free there; it raises both after it frees a large mmapped block. A worker reads a batch's
body (1000 records of 20 features are ~400 kB of JSON, plus aiohttp's chunks) on every
request, so at the start-up thresholds every request maps and unmaps fresh pages and
faults them in: measured, 1M column-form records over HTTP from one client took 1.2 s of
worker CPU against 0.8 s with the thresholds below (docs/benchmarks.md, "Issue 14"). Whether
a large block happened to be freed at start-up (it used to be: the profile came back from
its child as one pickle) must not decide that, so the serving process sets them itself: a
body up to 1 MB comes from the heap, and up to 2 MB of free heap is kept for the next one.
Nothing is done elsewhere than glibc, or where the operator of the pod set
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` (glibc's own tunables) itself."""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20
TRIM_THRESHOLD = 2 << 20


def tune() -> bool:
    """Set the thresholds (True), or leave them (False: not glibc, or set by the environment)."""
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:  # the process's own symbols: libc's, with no ldconfig run to find its file
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = (
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )
    if not ok:
        log.debug("mallopt refused the allocator thresholds; glibc's defaults stay")
    return ok
