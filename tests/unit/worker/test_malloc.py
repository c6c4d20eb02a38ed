"""The serving process's allocator thresholds (monitor_worker/malloc.py), in a fresh
interpreter each: glibc takes them, and the environment's own tunables win."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "from monitor_worker import malloc; print(malloc.tune())"


def run(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_thresholds():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert run(env) == "True"


def test_thresholds_set_in_the_environment_are_left_alone():
    assert run({**os.environ, "MALLOC_TRIM_THRESHOLD_": "131072"}) == "False"
