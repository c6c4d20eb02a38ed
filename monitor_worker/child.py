"""Work that runs once in a spawned child process: reading and profiling the reference,
fitting models with scikit-learn (the loader runs these two in two children, one after the
other, :mod:`monitor_worker.loader`). The serving process then never imports pyarrow or
scikit-learn and never holds the reference table, so its memory stays what serving needs
(docs/benchmarks.md, "Memory"). Inside such a child, further work runs in place rather
than in a grandchild.

The call and its answer are pickled straight into a pipe, protocol 5: numpy arrays go as
their own memory, not first copied into a whole pickle in memory and each array into bytes
as a pool's queue does (a profile of 34 MB cost its child 75 MB more to send that way)."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")

_in_child = False


class ChildDied(RuntimeError):
    """The child process ended without an answer (killed, out of memory)."""


def in_child(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a spawned child process (in place when already in one).
    ``fn``, its arguments and its result must pickle; an exception it raises is raised here
    (one that does not pickle comes back as :class:`ChildDied` with its message; callers
    re-raise as plain errors in ``fn``, as the loader does)."""
    if _in_child:
        return fn(*args, **kwargs)
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(target=_serve, args=(there,), daemon=True)
    process.start()
    there.close()
    try:
        try:
            _send((fn, args, kwargs), here)
            ok, value = _receive(here)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise ChildDied(
                "the child process ended without an answer (out of memory? see the pod's events)"
            ) from None
    finally:
        here.close()  # before joining: a child still writing gets EPIPE rather than waiting
        process.join()
    if ok:
        return value
    raise value


def _serve(conn: Connection) -> None:
    """The child: one call read from ``conn``, its answer written back."""
    global _in_child
    _in_child = True
    fn, args, kwargs = _receive(conn)
    try:
        answer = (True, fn(*args, **kwargs))
    except BaseException as e:  # raised in the parent
        try:
            pickle.loads(pickle.dumps(e))  # whole or not at all, not half way down the pipe
            answer = (False, e)
        except Exception:
            answer = (False, ChildDied(f"{type(e).__name__}: {e}"))
    _send(answer, conn)
    conn.close()


def _send(obj: Any, conn: Connection) -> None:
    with open(conn.fileno(), "wb", closefd=False) as stream:
        pickle.dump(obj, stream, protocol=5)


def _receive(conn: Connection) -> Any:
    with open(conn.fileno(), "rb", closefd=False) as stream:
        return pickle.load(stream)
