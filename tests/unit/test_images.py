"""devcluster/images.py without building anything: the cache key of the project's image covers
exactly the build context .dockerignore sends, and the build sees this machine's pip settings."""

from __future__ import annotations

from devcluster import images
from tests.unit.test_dockerfile import build_context


def test_cache_key_inputs_are_the_build_context(tmp_path):
    sent = set(build_context(tmp_path))
    hashed = {f.relative_to(images.REPO).as_posix() for f in images.context_files()}
    assert hashed == sent


def test_pip_settings_reach_the_build_as_args_and_a_mounted_ca_bundle(monkeypatch, tmp_path):
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("PIP_CERT", str(bundle))
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    build_args, volumes = images.pip_build_settings()
    assert "PIP_INDEX_URL=https://mirror.example/simple" in build_args
    assert f"PIP_CERT={images.IMAGE_CA_BUNDLE}" in build_args
    assert volumes == ["--volume", f"{bundle}:{images.IMAGE_CA_BUNDLE}:ro"]
    # Every ARG passed is one the Dockerfile's builder stage declares.
    declared = {
        line.split()[1]
        for line in images.DOCKERFILE.read_text().splitlines()
        if line.startswith("ARG PIP_")
    }
    passed = {a.split("=", 1)[0] for a in build_args[1::2]}
    assert passed <= declared, passed - declared
