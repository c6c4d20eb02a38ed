#!/usr/bin/env bash
# Copies cert-manager's CRDs (Certificate, Issuer, ClusterIssuer) from its Go module
# (github.com/cert-manager/cert-manager, deploy/crds/) into the cache, keyed by version; no
# cert-manager controller is built or run. Prints the directory holding them.
#
#   devcluster/fetch-cert-manager-crds.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-monitor}"
out="$cache/cert-manager-crds-$CERT_MANAGER_VERSION"
files=(cert-manager.io_certificates.yaml cert-manager.io_issuers.yaml cert-manager.io_clusterissuers.yaml)

have=1
for f in "${files[@]}"; do [[ -s "$out/$f" ]] || have=0; done
if (( have )); then
  echo "$out"
  exit 0
fi

# Outside any module: download by exact version (the proxy serves it like any module).
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
src="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$src" || ! -d "$src/deploy/crds" ]]; then
  printf '[cert-manager] cannot find deploy/crds in github.com/cert-manager/cert-manager@%s\n' \
    "$CERT_MANAGER_VERSION" >&2
  exit 1
fi
mkdir -p "$out"
for f in "${files[@]}"; do
  install -m 0644 "$src/deploy/crds/$f" "$out/$f.tmp"
  mv "$out/$f.tmp" "$out/$f"
done
echo "$out"
