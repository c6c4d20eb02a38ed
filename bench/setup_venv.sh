#!/usr/bin/env bash
# Create <repo>/.venv-bench with Evidently for bench/drift_vs_evidently.py, kept apart from
# the project's .venv (Evidently's pins conflict with the worker's dependencies).
# Evidently 0.7.23 breaks on pandas 3, hence 'pandas<3'. Idempotent: does nothing when the
# venv already imports evidently.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/peer_venv.sh"
peer_venv bench "${BENCH_VENV:-$ROOT/.venv-bench}" evidently "evidently, pandas" \
  "evidently==${EVIDENTLY_VERSION:-0.7.23}" 'pandas<3' numpy scipy
