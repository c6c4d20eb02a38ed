"""Fixtures of the suites that run our image for real: the images (built once, then found in
podman's store by the hash of their inputs), a control plane of their own for this package (the
real operators started here must not meet the session's operator process in the shared one),
and a real node (containerd and a kubelet) registered in it beside the kwok nodes, for the
module that uses it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devcluster import images as image_builds
from devcluster import node as real_node
from devcluster.controlplane import ControlPlane


@dataclass(frozen=True)
class Images:
    base: image_builds.Image
    project: image_builds.Image
    pause: image_builds.Image


@pytest.fixture(scope="session")
def images() -> Images:
    """The Debian base, the project's image on it, and the pod sandbox image."""
    base = image_builds.base_image()
    project = image_builds.project_image(base)
    pause = image_builds.pause_image(base)
    for built in (base, project, pause):
        how = f"built in {built.seconds:.0f} s" if built.built else "found"
        print(f"\nimage {built.ref}: {how}")
    return Images(base, project, pause)


@pytest.fixture(scope="package")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(tmp_path_factory.mktemp("container-cp"))
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def node(
    own_cluster: ControlPlane, images: Images, tmp_path_factory
) -> Iterator[real_node.RealNode]:
    missing = real_node.available()
    if missing:
        pytest.fail(f"a real node cannot run here: {missing}")
    n = real_node.RealNode(
        own_cluster,
        tmp_path_factory.mktemp("node"),
        images=(images.project.ref,),
        sandbox_image=images.pause.ref,
    ).start()
    print(f"\nreal node {n.name} Ready: {n.timings}")
    try:
        yield n
    finally:
        n.stop()
