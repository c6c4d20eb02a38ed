#!/usr/bin/env bash
# Create <repo>/.venv-nannyml with NannyML for the estimation cross-check
# (bench/nannyml_side.py, bench/estimation.py), kept apart from the project's .venv: NannyML
# pins pandas, scikit-learn and LightGBM versions the worker does not want. NannyML 0.13.1
# imports statsmodels without declaring it, hence the extra package. Idempotent: does nothing
# when the venv already imports nannyml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NANNYML_VENV:-$ROOT/.venv-nannyml}"
NANNYML_VERSION="${NANNYML_VERSION:-0.13.1}"
PYTHON="${PYTHON:-python3}"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import nannyml' 2>/dev/null; then
  echo "nannyml venv ready: $VENV ($("$VENV/bin/python" -c 'import nannyml; print("nannyml", nannyml.__version__)'))"
  exit 0
fi
echo "creating nannyml venv $VENV (nannyml==$NANNYML_VERSION, statsmodels) ..."
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "nannyml==$NANNYML_VERSION" statsmodels
"$VENV/bin/python" -c 'import nannyml, sklearn, pandas; print("nannyml venv ready: nannyml", nannyml.__version__, "sklearn", sklearn.__version__, "pandas", pandas.__version__)'
