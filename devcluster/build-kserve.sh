#!/usr/bin/env bash
# Builds KServe's agent (github.com/kserve/kserve/cmd/agent: the sidecar that holds the
# payload logger) from Go modules and extracts the InferenceService CRD from the same module
# (config/crd/full/), caching both outside git, keyed by version. A second run finds the
# cache and does nothing.
#
#   devcluster/build-kserve.sh     # build what is missing, print the cache directory
#   MM_CACHE=/some/dir devcluster/build-kserve.sh
#
# The directory holds `agent` and `crds/serving.kserve.io_inferenceservices.yaml`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
module="$here/go/kserve"

cache="${MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-monitor}"
out="$cache/kserve-agent-$KSERVE_VERSION"
crd=serving.kserve.io_inferenceservices.yaml
mkdir -p "$out/crds"

log() { printf '[kserve] %s\n' "$*" >&2; }

if [[ -x "$out/agent" && -s "$out/crds/$crd" ]]; then
  echo "$out"
  exit 0
fi

export CGO_ENABLED=0  # as KServe's agent.Dockerfile builds it
export GOFLAGS="-buildvcs=false -trimpath"

# One version in two places: versions.env names the cache, go.mod decides what is built.
pinned="$(cd "$module" && go list -m -f '{{.Version}}' github.com/kserve/kserve)"
if [[ "$pinned" != "$KSERVE_VERSION" ]]; then
  log "versions.env says $KSERVE_VERSION but $module/go.mod requires $pinned"
  exit 1
fi

# The module's files (fetched from the proxy into GOMODCACHE once).
src="$(cd "$module" && go mod download -json github.com/kserve/kserve \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
  log "cannot find github.com/kserve/kserve@$KSERVE_VERSION in the module cache"
  exit 1
fi

# A dependency's replace and exclude lines are ignored, so the wrapper repeats KServe's.
directives() { grep -E '^(replace|exclude) ' "$1" | sort; }
if [[ "$(directives "$src/go.mod")" != "$(directives "$module/go.mod")" ]]; then
  log "the replace/exclude lines of $module/go.mod differ from KServe $KSERVE_VERSION's:"
  diff <(directives "$src/go.mod") <(directives "$module/go.mod") >&2 || true
  exit 1
fi

if [[ ! -x "$out/agent" ]]; then
  log "building the KServe agent $KSERVE_VERSION (cold build on 2 cores: about 3 minutes)"
  start=$SECONDS
  (cd "$module" && go build -ldflags "-s -w" -o "$out/agent.tmp" github.com/kserve/kserve/cmd/agent)
  mv "$out/agent.tmp" "$out/agent"
  log "agent built in $((SECONDS - start)) s"
fi

if [[ ! -s "$out/crds/$crd" ]]; then
  if [[ ! -f "$src/config/crd/full/$crd" ]]; then
    log "no config/crd/full/$crd in github.com/kserve/kserve@$KSERVE_VERSION"
    exit 1
  fi
  install -m 0644 "$src/config/crd/full/$crd" "$out/crds/$crd.tmp"  # the cache is read-only
  mv "$out/crds/$crd.tmp" "$out/crds/$crd"
  log "extracted $crd from $src"
fi

echo "$out"
