"""The compiled kernels are built wherever a C compiler is: their own tests skip where they
are not (the Python paths then run), so without this a broken build would pass unseen."""

from __future__ import annotations

import os
import shutil

import pytest

from monitor_worker import native


@pytest.mark.skipif(os.environ.get("MM_NATIVE", "1") == "0", reason="MM_NATIVE=0 turns them off")
@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no compiler"
)
def test_the_kernels_are_built_where_a_compiler_is():
    assert native.histogram is not None, "monitor_worker/native/_histogram.c was not built"
    assert native.columns is not None, "monitor_worker/native/_columns.c was not built"
