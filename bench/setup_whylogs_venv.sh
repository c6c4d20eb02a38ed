#!/usr/bin/env bash
# Create <repo>/.venv-whylogs with whylogs for the drift comparison (bench/whylogs_side.py,
# called by bench/drift_vs_evidently.py), kept apart from the project's .venv: whylogs pins
# protobuf and other versions the worker does not want. Idempotent: does nothing when the
# venv already imports whylogs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WHYLOGS_VENV:-$ROOT/.venv-whylogs}"
WHYLOGS_VERSION="${WHYLOGS_VERSION:-1.6.4}"
PYTHON="${PYTHON:-python3}"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import whylogs' 2>/dev/null; then
  echo "whylogs venv ready: $VENV ($("$VENV/bin/python" -c 'import whylogs; print("whylogs", whylogs.__version__)'))"
  exit 0
fi
echo "creating whylogs venv $VENV (whylogs[viz]==$WHYLOGS_VERSION, pandas) ..."
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "whylogs[viz]==$WHYLOGS_VERSION" pandas
"$VENV/bin/python" -c 'import whylogs, pandas; print("whylogs venv ready: whylogs", whylogs.__version__, "pandas", pandas.__version__)'
