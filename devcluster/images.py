"""The images this project builds on this machine with podman/buildah, each tagged by a hash
of its inputs so that a second build finds it and does nothing:

- a Debian 12 base made by ``debootstrap`` (no registry can be reached here for the public
  ``python:3.11-slim`` base), its root filesystem cached under ``~/.cache/model-monitor``;
- the project's image, from the Dockerfile on that base (``make image``), and its ``text``
  variant with the [text] extra (``make image-text``: the Dockerfile's ``text`` target);
- the sandbox ("pause") image the real node's pods start in (:mod:`devcluster.node`).

``python -m devcluster.images [base|project|text|pause]`` builds one and prints its reference."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(
    os.environ.get("MM_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "model-monitor"
)
CONTAINERS_CONF = REPO / "devcluster" / "containers.conf"
DOCKERFILE = REPO / "Dockerfile"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("MM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What the Dockerfile needs of its base: python3 (3.11 in bookworm) with its venv module, and
# what the public python image also carries (CA certificates, /etc/services, time zones).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "netbase", "tzdata")
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
# Changing how the root filesystem is made changes this, and with it every cache key.
BASE_RECIPE = 1

BASE_REPO = "localhost/model-monitor-base"
PROJECT_REPO = "localhost/model-monitor"
PAUSE_REPO = "localhost/model-monitor-pause"

# The build context the Dockerfile's COPY lines need (.dockerignore keeps exactly these; a unit
# test checks that the two agree).
# What the build sends: the allowlist of .dockerignore (its "!path" lines), one source for both.
CONTEXT = tuple(
    line[1:].strip().rstrip("/")
    for line in (REPO / ".dockerignore").read_text().splitlines()
    if line.startswith("!")
)
CONTEXT_SKIP = ("__pycache__", ".pyc", ".so", ".egg-info", ".mypy_cache", ".pytest_cache")

# pip settings of this machine that a build must see to reach PyPI (a mirror, a proxy's CA):
# passed as the builder stage's ARGs of the same name.
PIP_BUILD_ARGS = ("index-url", "extra-index-url", "trusted-host", "cert", "default-timeout")
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # present in both kinds of base
KEEP_PROJECT_IMAGES = 5  # one per worktree testing on this machine at once, say


class ImageBuildError(RuntimeError):
    """A build step failed; the message carries the tool's output."""


@dataclass(frozen=True)
class Image:
    """A built (or found) image: its reference, and how long making it took (0 when found)."""

    ref: str
    seconds: float = 0.0

    @property
    def built(self) -> bool:
        return self.seconds > 0


# -- podman ---------------------------------------------------------------------------------


def podman_env() -> dict[str, str]:
    """The environment every podman/buildah call runs with: this machine's settings."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run podman with :func:`podman_env`; a failure raises ImageBuildError with its output."""
    cmd = ["podman", *args]
    r = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=podman_env(),
    )
    if check and r.returncode != 0:
        raise ImageBuildError(
            f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        )
    return r


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref, check=False).returncode == 0


def inspect_image(ref: str) -> dict:
    return json.loads(podman("image", "inspect", ref).stdout)[0]


# -- the base -------------------------------------------------------------------------------


def base_key() -> str:
    inputs = {
        "suite": DEBIAN_SUITE,
        "packages": BASE_PACKAGES,
        "env": BASE_ENV,
        "recipe": BASE_RECIPE,
    }
    return _digest(json.dumps(inputs, sort_keys=True).encode())


def base_rootfs_tar() -> Path:
    """The base's root filesystem as a tar, made by debootstrap once and cached (about a
    minute and a half on 2 cores; 135 MB)."""
    out = CACHE / f"base-{DEBIAN_SUITE}-{base_key()}" / "rootfs.tar"
    if out.is_file():
        return out
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (make setup installs it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                DEBIAN_SUITE,
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            what="debootstrap",
        )
        _slim(rootfs)
        partial = Path(tmp) / "rootfs.tar"
        _run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            what="tar of the root filesystem",
        )
        partial.rename(out)
    return out


def _slim(rootfs: Path) -> None:
    """Drop what an image never needs: downloaded packages, package lists, manuals,
    translations, and documentation (the copyright files stay)."""
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/lib/apt/lists/*",
        "usr/share/man/*",
        "usr/share/locale/*",
    ):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.is_file() or path.is_symlink():
                path.unlink()
    for path in (rootfs / "usr/share/doc").rglob("*"):
        if (path.is_file() or path.is_symlink()) and path.name != "copyright":
            path.unlink()


def base_image() -> Image:
    """``localhost/model-monitor-base:bookworm-<key>``: Debian 12 with python3.11 and venv."""
    ref = f"{BASE_REPO}:{DEBIAN_SUITE}-{base_key()}"
    if image_exists(ref):
        return Image(ref)
    t = time.monotonic()
    tar = base_rootfs_tar()
    changes = [f"ENV={k}={v}" for k, v in BASE_ENV.items()] + ['CMD=["python3"]']
    args = ["import"]
    for change in changes:
        args += ["--change", change]
    podman(*args, str(tar), ref)
    return Image(ref, time.monotonic() - t)


# -- the project's image --------------------------------------------------------------------


def context_files() -> Iterator[Path]:
    """The files of the build context, in a stable order."""
    for name in CONTEXT:
        path = REPO / name
        if path.is_file():
            yield path
            continue
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(REPO).as_posix()
            if f.is_file() and not any(s in rel for s in CONTEXT_SKIP):
                yield f


def project_key(base_ref: str) -> str:
    h = hashlib.sha256()
    h.update(inspect_image(base_ref)["Id"].encode())
    for f in (DOCKERFILE, REPO / ".dockerignore", *context_files()):
        h.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def pip_build_settings() -> tuple[list[str], list[str]]:
    """``--build-arg`` and ``--volume`` options that give the build this machine's pip
    settings (``pip config list``, which includes PIP_* variables). A CA bundle is mounted
    over the image's own for the build only, so no file of it stays in any layer."""
    r = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
    )
    found: dict[str, str] = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if sep and name in PIP_BUILD_ARGS:
            found[name] = value.strip().strip("'\"")
    if "timeout" in found:
        found.setdefault("default-timeout", found.pop("timeout"))
    build_args, volumes = [], []
    cert = found.pop("cert", None)
    if cert:
        volumes += ["--volume", f"{cert}:{IMAGE_CA_BUNDLE}:ro"]
        found["cert"] = IMAGE_CA_BUNDLE
    for name, value in sorted(found.items()):
        build_args += ["--build-arg", f"PIP_{name.upper().replace('-', '_')}={value}"]
    return build_args, volumes


def project_image(base: Image | None = None, target: str | None = None) -> Image:
    """``localhost/model-monitor:<version>-<key>`` from the Dockerfile on the local base; the
    key covers the base, the Dockerfile and every file of the build context. ``target``
    ``"text"``: the variant with the [text] extra, ``...:<version>-text-<key>``."""
    base = base or base_image()
    variant = f"-{target}" if target else ""
    ref = f"{PROJECT_REPO}:{project_version()}{variant}-{project_key(base.ref)}"
    if image_exists(ref):
        return Image(ref)
    build_args, volumes = pip_build_settings()
    targets = ["--target", target] if target else []
    t = time.monotonic()
    # Host networking: the build's pip reaches PyPI the way this machine does; no bridge or
    # NAT rules are made for it. Unused stages (the text variant's, for the default) are
    # skipped: the [text] extra downloads ~3 GB.
    podman(
        "build", "--network", "host", "--layers", "--skip-unused-stages=true",
        "--build-arg", f"BASE_IMAGE={base.ref}", *targets,
        *build_args, *volumes, "--file", str(DOCKERFILE), "--tag", ref, str(REPO),
        timeout=3600 if target else 1800,
    )  # fmt: skip
    seconds = time.monotonic() - t
    prune_project_images(keep=ref)
    return Image(ref, seconds)


def prune_project_images(keep: str, newest: int = KEEP_PROJECT_IMAGES) -> list[str]:
    """Remove all but the ``newest`` project images (each build of changed sources makes one,
    772 MB) and the builds' dangling intermediate images older than ten minutes. An image that a
    container still uses is left alone (podman refuses), so a test session running on this
    machine at the same time keeps its own. Returns what was removed."""
    out = podman("images", "--format", "json", PROJECT_REPO).stdout
    found = sorted(json.loads(out or "[]"), key=lambda i: i.get("Created", 0), reverse=True)
    removed: list[str] = []
    for info in found[newest:]:
        names = [n for n in info.get("Names") or [] if n.startswith(f"{PROJECT_REPO}:")]
        if keep in names:
            continue
        if podman("rmi", info["Id"], check=False).returncode == 0:
            removed += names
    podman("image", "prune", "--force", "--filter", "until=10m", check=False)
    return removed


# -- the sandbox image ----------------------------------------------------------------------


def pause_image(base: Image | None = None) -> Image:
    """A pod sandbox image: the base with a command that sleeps until killed (Kubernetes'
    own pause image cannot be pulled here)."""
    base = base or base_image()
    ref = f"{PAUSE_REPO}:{base.ref.rsplit(':', 1)[1]}"
    if image_exists(ref):
        return Image(ref)
    t = time.monotonic()
    with tempfile.TemporaryDirectory() as context:
        containerfile = Path(context) / "Containerfile"
        containerfile.write_text(f'FROM {base.ref}\nUSER 65535:65535\nCMD ["sleep", "infinity"]\n')
        podman("build", "--network", "none", "--file", str(containerfile), "--tag", ref, context)
    return Image(ref, time.monotonic() - t)


# -- helpers --------------------------------------------------------------------------------


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _run(cmd: list[str], *, what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise ImageBuildError(
            f"{what} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "which", nargs="?", default="project", choices=["base", "project", "text", "pause"]
    )
    parser.add_argument("--tag", action="append", default=[], help="also tag the image so")
    args = parser.parse_args(argv)
    build = {
        "base": base_image,
        "project": project_image,
        "text": lambda: project_image(target="text"),
        "pause": pause_image,
    }[args.which]
    try:
        image = build()
    except ImageBuildError as e:
        print(f"image build failed: {e}", file=sys.stderr)
        return 1
    tags = list(args.tag)
    if args.which == "project":  # what the chart's image.tag defaults to
        tags.append(f"{PROJECT_REPO}:{project_version()}")
    if args.which == "text":  # what the operator runs embedding workers on by default
        tags.append(f"{PROJECT_REPO}:{project_version()}-text")
    for tag in tags:
        podman("tag", image.ref, tag)
    info = inspect_image(image.ref)
    how = f"built in {image.seconds:.0f} s" if image.built else "found (cached)"
    print(f"{image.ref} {how}, {info['Size'] / 1e6:.0f} MB", file=sys.stderr)
    print(image.ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
