# Sourced by bench/setup_venv.sh, setup_nannyml_venv.sh and setup_whylogs_venv.sh: one venv per
# peer, kept apart from the project's .venv (each peer pins versions the worker does not want).
#   peer_venv LABEL VENV MODULE CHECK PACKAGE...
# Does nothing when VENV already imports MODULE; otherwise creates it with $PYTHON (python3),
# installs the PACKAGEs and imports CHECK (a comma list of modules), printing their versions.
peer_venv() {
  local label=$1 venv=$2 module=$3 check=$4
  shift 4
  if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import $module" 2>/dev/null; then
    echo "$label venv ready: $venv ($("$venv/bin/python" -c "import $module; print('$module', $module.__version__)"))"
    return 0
  fi
  echo "creating $label venv $venv ($*) ..."
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "$@"
  "$venv/bin/python" -c "import $check; print('$label venv ready:', ', '.join(m.__name__ + ' ' + m.__version__ for m in ($check,)))"
}
