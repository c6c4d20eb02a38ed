#!/usr/bin/env bash
# Create <repo>/.venv-bench with Evidently for bench/drift_vs_evidently.py, kept apart from
# the project's .venv (Evidently's pins conflict with the worker's dependencies).
# Evidently 0.7.23 breaks on pandas 3, hence 'pandas<3'. Idempotent: does nothing when the
# venv already imports evidently.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"
EVIDENTLY_VERSION="${EVIDENTLY_VERSION:-0.7.23}"
PYTHON="${PYTHON:-python3}"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import evidently' 2>/dev/null; then
  echo "bench venv ready: $VENV ($("$VENV/bin/python" -c 'import evidently; print("evidently", evidently.__version__)'))"
  exit 0
fi
echo "creating bench venv $VENV (evidently==$EVIDENTLY_VERSION, pandas<3) ..."
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "evidently==$EVIDENTLY_VERSION" 'pandas<3' numpy scipy
"$VENV/bin/python" -c 'import evidently, pandas; print("bench venv ready: evidently", evidently.__version__, "pandas", pandas.__version__)'
