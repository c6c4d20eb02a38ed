#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok; and a kubelet for a real node) from Go modules and caches the
# binaries outside git, keyed by version. A second run finds the cache and does nothing.
#
#   devcluster/build.sh            # build what is missing, print the bin directory
#   MM_CACHE=/some/dir devcluster/build.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-monitor}"
bin="$cache/controlplane/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
mkdir -p "$bin"

export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -trimpath"

log() { printf '[controlplane] %s\n' "$*" >&2; }

ldflags_k8s() {
  local v="$KUBERNETES_VERSION" major minor
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  local pkg=k8s.io/component-base/version
  printf -- '-s -w -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean' \
    "$pkg" "$v" "$pkg" "$major" "$pkg" "$minor" "$pkg"
}

if [[ ! -x "$bin/etcd" ]]; then
  log "building etcd $ETCD_VERSION (cold build: a few minutes)"
  start=$SECONDS
  (cd "$here/go/etcd" && go build -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/etcd.tmp" "$bin/etcd"
  log "etcd built in $((SECONDS - start)) s"
fi

# kubelet: the real node of devcluster/node.py (the kwok nodes need none).
k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
missing=()
for c in "${k8s_cmds[@]}"; do [[ -x "$bin/$c" ]] || missing+=("$c"); done
if ((${#missing[@]})); then
  log "building ${missing[*]} $KUBERNETES_VERSION (cold build on 2 cores: 20-40 minutes)"
  start=$SECONDS
  tmp="$bin/.build"
  rm -rf "$tmp" && mkdir -p "$tmp"
  pkgs=()
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  # One invocation: the packages the three commands share are compiled once.
  (cd "$here/go/kubernetes" && go build -ldflags "$(ldflags_k8s)" -o "$tmp/" "${pkgs[@]}")
  for c in "${missing[@]}"; do mv "$tmp/$c" "$bin/$c"; done
  rmdir "$tmp"
  log "${missing[*]} built in $((SECONDS - start)) s"
fi

if [[ ! -x "$bin/kwok" ]]; then
  log "building kwok $KWOK_VERSION"
  start=$SECONDS
  GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  log "kwok built in $((SECONDS - start)) s"
fi

echo "$bin"
