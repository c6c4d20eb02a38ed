#!/usr/bin/env bash
# Builds the two Go tools the alert-routing and serving-health tests run, caching each outside
# git keyed by version; a second run finds the cache and does nothing:
# - amconfig: the Prometheus Operator's own conversion of AlertmanagerConfig objects into
#   alertmanager.yaml (pkg/alertmanager of github.com/prometheus-operator/prometheus-operator),
#   wrapped in a small command (devcluster/go/amconfig/main.go);
# - kube-state-metrics (k8s.io/kube-state-metrics/v2), for real kube_pod_owner & co. of the
#   local control plane's objects.
#
#   devcluster/build-monitoring.sh     # build what is missing, print the two binaries' paths
#   MM_CACHE=/some/dir devcluster/build-monitoring.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-monitor}"

export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -trimpath"

log() { printf '[monitoring] %s\n' "$*" >&2; }

# build NAME MODULE_DIR PINNED_MODULE VERSION PACKAGE
build() {
  local name=$1 module=$2 pinned_module=$3 version=$4 package=$5
  local out="$cache/$name-$version"
  if [[ -x "$out/$name" ]]; then
    echo "$out/$name"
    return
  fi
  # One version in two places: versions.env names the cache, go.mod decides what is built.
  local pinned
  pinned="$(cd "$module" && go list -m -f '{{.Version}}' "$pinned_module")"
  if [[ "$pinned" != "$version" ]]; then
    log "versions.env says $version but $module/go.mod requires $pinned_module $pinned"
    exit 1
  fi
  mkdir -p "$out"
  log "building $name $version (cold build on 2 cores: about 2 minutes)"
  local start=$SECONDS
  (cd "$module" && go build -ldflags "-s -w" -o "$out/$name.tmp" "$package")
  mv "$out/$name.tmp" "$out/$name"
  log "$name built in $((SECONDS - start)) s"
  echo "$out/$name"
}

build amconfig "$here/go/amconfig" github.com/prometheus-operator/prometheus-operator \
  "$PROMETHEUS_OPERATOR_VERSION" .
build kube-state-metrics "$here/go/kube-state-metrics" k8s.io/kube-state-metrics/v2 \
  "$KUBE_STATE_METRICS_VERSION" k8s.io/kube-state-metrics/v2
