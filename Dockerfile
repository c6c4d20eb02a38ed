# One image, two entry points: `model-monitor-operator` (the kopf operator) and
# `monitor-worker` (the per-model monitor worker). Runs as the non-root user 65532, which the
# chart's securityContext and the operator's worker pods (mm_operator/render.py: RUN_AS) expect.
#
#   docker build -t ghcr.io/model-monitor/model-monitor:0.1.0 .
#
# tests/unit/test_dockerfile.py lints this file with hadolint and replays the builder stage's
# RUN steps outside Docker to prove they give a working install.

# ---- builder: build the wheel, install it with its dependencies into /opt/venv -------------
FROM python:3.11.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mm_api ./mm_api
COPY monitor_worker ./monitor_worker
COPY operator ./operator

# Every dependency ships manylinux wheels for CPython 3.11 (numpy, scipy, scikit-learn,
# pyarrow, orjson...): --only-binary keeps compilers out of the build as well.
RUN python -m venv /opt/venv \
    && python -m pip wheel --no-cache-dir --no-deps --wheel-dir /src/dist . \
    && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: /src/dist/*.whl \
    && /opt/venv/bin/model-monitor-operator --help > /dev/null \
    && /opt/venv/bin/monitor-worker --help > /dev/null

# ---- final: the base image, /opt/venv and a non-root user; nothing else -------------------
FROM python:3.11.11-slim-bookworm

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
