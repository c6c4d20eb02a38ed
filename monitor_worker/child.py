"""Work that runs once in a spawned child process: reading and profiling the reference,
fitting models with scikit-learn (the loader runs these two in two children, one after the
other, :mod:`monitor_worker.loader`). The serving process then never imports pyarrow or
scikit-learn and never holds the reference table, so its memory stays what serving needs
(docs/benchmarks.md, "Memory"). Inside such a child, further work runs in place rather
than in a grandchild."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")

_in_child = False


def _mark_child() -> None:
    global _in_child
    _in_child = True


class ChildDied(RuntimeError):
    """The child process ended without an answer (killed, out of memory)."""


def in_child(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a spawned child process (in place when already in one).
    ``fn``, its arguments and its result must pickle; an exception it raises is raised here
    (one that does not pickle comes back as a BrokenProcessPool's
    cause; callers re-raise as plain errors in ``fn``, as the loader does)."""
    if _in_child:
        return fn(*args, **kwargs)
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(1, mp_context=context, initializer=_mark_child) as pool:
            return pool.submit(fn, *args, **kwargs).result()
    except BrokenProcessPool:
        raise ChildDied(
            "the child process ended without an answer (out of memory? see the pod's events)"
        ) from None
