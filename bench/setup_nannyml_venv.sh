#!/usr/bin/env bash
# Create <repo>/.venv-nannyml with NannyML for the estimation cross-check
# (bench/nannyml_side.py, bench/estimation.py) and the drift comparison
# (bench/nannyml_drift_side.py). NannyML 0.13.1 imports statsmodels without declaring it, hence
# the extra package. Idempotent: does nothing when the venv already imports nannyml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/peer_venv.sh"
peer_venv nannyml "${NANNYML_VENV:-$ROOT/.venv-nannyml}" nannyml "nannyml, sklearn, pandas" \
  "nannyml==${NANNYML_VERSION:-0.13.1}" statsmodels
