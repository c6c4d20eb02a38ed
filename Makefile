# Model Monitor — every command the README names. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE      ?= $(or $(MM_CACHE),$(HOME)/.cache/model-monitor)
include devcluster/versions.env
TOOLS_BIN  := $(CACHE)/helm-npm-$(HELM_NPM_VERSION)/bin
PY         := .venv/bin/python
PYTEST     := .venv/bin/pytest
TEXT_PYTEST := .venv-text/bin/pytest
export PATH := $(CURDIR)/.venv/bin:$(TOOLS_BIN):$(PATH)
export KUBECTL := $(TOOLS_BIN)/kubectl

.PHONY: help setup test test-unit test-text test-cluster lint format typecheck crd dashboards \
        docs cluster-up cluster-down bench clean demo demo-down image image-text

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## install everything (Debian packages, .venv, helm, control-plane binaries)
	@scripts/setup.sh

test: setup ## the whole suite: lint, types, unit, the [text] extra's tests, real control plane, Prometheus/Alertmanager, e2e, containers
	$(MAKE) --no-print-directory lint typecheck
	$(PYTEST) -m "not cluster and not prometheus and not e2e and not fuzz and not container and not text" -q
	$(MAKE) --no-print-directory test-text
	$(PYTEST) -m "cluster or prometheus or e2e or fuzz or container" -q

test-unit: ## fast unit tests only (no real components)
	$(PYTEST) -m "not cluster and not prometheus and not e2e and not fuzz and not container and not text" -q

test-text: ## the tests that need the [text] extra (sentence model, torch, ddsketch), in .venv-text
	MM_TEXT_TESTS=1 $(TEXT_PYTEST) -m "text" -q

test-cluster: ## suites that start the real control plane, Prometheus, containers and a real node, or fuzz the worker
	$(PYTEST) -m "cluster or prometheus or e2e or fuzz or container" -q

lint: ## ruff lint and format check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: ## apply ruff's formatting and fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

typecheck: ## mypy on the core packages
	.venv/bin/mypy

cluster-up: setup ## start the local control plane in the background and print its kubeconfig
	@$(PY) -m devcluster up

cluster-down: ## stop the local control plane
	@$(PY) -m devcluster down

crd: ## regenerate the CRD, the chart's copy and docs/api.md from mm_api/spec.py
	$(PY) scripts/gen_api.py

dashboards: ## regenerate the chart's Grafana dashboard from dashboards/ (grafana-foundation-sdk)
	$(PY) scripts/gen_dashboards.py

docs: crd dashboards ## regenerate everything generated (docs/api.md, the CRD, the dashboard)

image: setup ## build the image from the Dockerfile with podman/buildah, on a Debian 12 base made here (docs/containers.md)
	@$(PY) -m devcluster.images project

image-text: setup ## build the image's text variant (the [text] extra; Dockerfile target text, ~6 GB)
	@$(PY) -m devcluster.images text

bench: setup ## run the benchmarks in bench/ and append the figures to docs/benchmarks.md
	bench/run_all.sh

demo: setup ## the whole journey, narrated, on a local cluster (DEMO_KEEP=1 leaves it running; KSERVE=1: through KServe's agent and payload logger)
	@$(PY) -m demo $(if $(KSERVE),--kserve)

demo-down: ## stop a demo left running (DEMO_KEEP=1, or interrupted hard)
	@$(PY) -m demo down

clean: cluster-down demo-down ## remove local state (not the binary cache)
	rm -rf .devcluster .demo build dist
