"""The image built from the Dockerfile on the base made here (``make image``): it runs as the
non-root user the chart and the operator expect, starts both entry points from /opt/venv, sits
on the local Debian base, and carries no build tools, sources, wheels or pip settings."""

from __future__ import annotations

import subprocess

import pytest

from devcluster.images import inspect_image, podman_env
from mm_operator.render import RUN_AS

pytestmark = pytest.mark.container

ENTRY_POINTS = ("model-monitor-operator", "monitor-worker")


def run(image: str, *cmd: str, entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["podman", "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL"]
    if entrypoint is not None:
        args += ["--entrypoint", entrypoint]
    return subprocess.run(
        [*args, image, *cmd], capture_output=True, text=True, timeout=120, env=podman_env()
    )


def test_config_is_the_non_root_operator(images):
    config = inspect_image(images.project.ref)["Config"]
    assert config["User"] == f"{RUN_AS}:{RUN_AS}"
    assert config["Cmd"] == ["model-monitor-operator"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert not [k for k in env if k.startswith("PIP_")], env  # build ARGs stay in the builder


def test_it_is_built_on_the_local_base(images):
    base_layers = inspect_image(images.base.ref)["RootFS"]["Layers"]
    layers = inspect_image(images.project.ref)["RootFS"]["Layers"]
    assert layers[: len(base_layers)] == base_layers
    assert len(layers) == len(base_layers) + 2  # the user, and /opt/venv


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_entry_points_start_from_the_venv(images, entry_point):
    r = run(images.project.ref, entry_point, "--help")
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower()
    r = run(images.project.ref, "-c", "import mm_operator, monitor_worker, sys;"
            "print(sys.executable, mm_operator.__file__, monitor_worker.__file__)",
            entrypoint="python3")  # fmt: skip
    assert r.returncode == 0, r.stderr
    for path in r.stdout.split():
        assert path.startswith("/opt/venv/"), r.stdout


def test_no_build_tools_sources_or_pip_settings(images):
    script = (
        "for t in gcc cc c++ g++ make ld as apt-get dpkg-buildpackage; do "
        "command -v $t >/dev/null && echo tool:$t; done; "
        "for p in /src /opt/venv/dist /etc/pip.conf /root/.cache/pip /var/lib/apt/lists/*.gz; do "
        "[ -e $p ] && echo path:$p; done; "
        "ls /usr/include 2>/dev/null | head -3 | sed 's/^/include:/'; true"
    )
    r = run(images.project.ref, "-c", script, entrypoint="/bin/sh")
    assert r.returncode == 0, r.stderr
    found = r.stdout.split()
    # apt-get belongs to the Debian base (as to the public python image); it is not used.
    assert [f for f in found if f != "tool:apt-get"] == [], found
