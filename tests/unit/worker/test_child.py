"""Work in a spawned child: the answer and its arrays come back whole and writable, an error
comes back as itself (or, when it does not pickle, as ChildDied with its message), a child
that dies is ChildDied. One child per test: each start costs about half a second."""

from __future__ import annotations

import os

import numpy as np
import pytest

from monitor_worker.child import ChildDied, in_child


class _Unpicklable(Exception):
    def __init__(self, message: str, handle: object) -> None:
        super().__init__(message)
        self.handle = handle


class _NotUnpicklable(Exception):
    def __init__(self, message: str, code: int) -> None:  # unpickling calls it with one
        super().__init__(message)
        self.code = code


def _arrays(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {"x": rng.normal(size=(n, 3)), "codes": np.array(["a", "bc"])[rng.integers(0, 2, n)]}


def _fail(how: str) -> None:
    if how == "unpicklable":
        raise _Unpicklable("a lock inside", handle=lambda: None)
    if how == "not unpicklable":
        raise _NotUnpicklable("two arguments", code=3)
    raise ValueError("column 'x' is not numerical")


def test_arrays_come_back_whole_and_writable():
    got = in_child(_arrays, 300_000)
    want = _arrays(300_000)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
        assert got[name].dtype == want[name].dtype and got[name].flags.writeable
    got["x"][0, 0] = 1.0  # the profile's arrays are updated in place (histogram counts)


def test_an_error_in_the_child_is_raised_here():
    with pytest.raises(ValueError, match="column 'x' is not numerical"):
        in_child(_fail, "plain")


def test_an_error_that_does_not_pickle_comes_back_with_its_message():
    with pytest.raises(ChildDied, match="_Unpicklable: a lock inside"):
        in_child(_fail, "unpicklable")
    with pytest.raises(ChildDied, match="_NotUnpicklable: two arguments"):
        in_child(_fail, "not unpicklable")


def test_a_child_that_dies_is_child_died():
    with pytest.raises(ChildDied, match="without an answer"):
        in_child(os._exit, 3)
