#!/usr/bin/env bash
# Create <repo>/.venv-whylogs with whylogs for the drift comparison (bench/whylogs_drift_side.py,
# called by bench/drift_vs_evidently.py). Idempotent: does nothing when the venv already
# imports whylogs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/peer_venv.sh"
peer_venv whylogs "${WHYLOGS_VENV:-$ROOT/.venv-whylogs}" whylogs "whylogs, pandas" \
  "whylogs[viz]==${WHYLOGS_VERSION:-1.6.4}" pandas
