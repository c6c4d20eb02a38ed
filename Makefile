# Model Monitor — every command the README names. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE      ?= $(or $(MM_CACHE),$(HOME)/.cache/model-monitor)
include devcluster/versions.env
TOOLS_BIN  := $(CACHE)/helm-npm-$(HELM_NPM_VERSION)/bin
PY         := .venv/bin/python
PYTEST     := .venv/bin/pytest
export PATH := $(CURDIR)/.venv/bin:$(TOOLS_BIN):$(PATH)
export KUBECTL := $(TOOLS_BIN)/kubectl

.PHONY: help setup test test-unit test-cluster lint format typecheck crd docs \
        cluster-up cluster-down bench clean demo demo-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## install everything (Debian packages, .venv, helm, control-plane binaries)
	@scripts/setup.sh

test: setup ## the whole suite: lint, types, unit, real control plane, Prometheus/Alertmanager, e2e
	$(MAKE) --no-print-directory lint typecheck
	$(PYTEST) -m "not cluster and not prometheus and not e2e and not fuzz" -q
	$(PYTEST) -m "cluster or prometheus or e2e or fuzz" -q

test-unit: ## fast unit tests only (no real components)
	$(PYTEST) -m "not cluster and not prometheus and not e2e and not fuzz" -q

test-cluster: ## suites that start the real control plane, Prometheus, or fuzz the worker
	$(PYTEST) -m "cluster or prometheus or e2e or fuzz" -q

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

docs: crd ## regenerate the generated docs (docs/api.md)

bench: setup ## run the benchmarks in bench/ and append the figures to docs/benchmarks.md
	bench/run_all.sh

demo: setup ## the whole journey, narrated, on a local cluster (DEMO_KEEP=1 leaves it running; KSERVE=1: through KServe's agent and payload logger)
	@$(PY) -m demo $(if $(KSERVE),--kserve)

demo-down: ## stop a demo left running (DEMO_KEEP=1, or interrupted hard)
	@$(PY) -m demo down

clean: cluster-down demo-down ## remove local state (not the binary cache)
	rm -rf .devcluster .demo build dist
