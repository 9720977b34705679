#!/bin/bash
# kit/with-kit.sh COMMAND...: run a command with kind + Calico available offline, from the kit.
#
# Starts a private dockerd (kit/dockerd-up.sh) unless Docker answers, builds or reuses the kit
# (kit/build.sh), puts the kit's registry on kind's docker network where the nodes find it by
# name, and exports K8SSEC_KIND_ARGS: the pytest options that run the suite on kind from the kit.
# Afterwards it removes the registry, the network and the dockerd it started, undoing its host
# changes. Exits with the command's status.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${K8SSEC_CACHE:-$HOME/.cache/pytest-k8ssec}
KIT=${KIT:-$CACHE_ROOT/kit}
REGISTRY=kind-registry
phase() { local name=$1 t0=$SECONDS rc=0; shift; "$@" || rc=$?; echo "timing: kind $name $((SECONDS - t0))s"; return $rc; }
down() {
  docker rm -f "$REGISTRY" >/dev/null 2>&1
  docker network rm kind >/dev/null 2>&1
  "$HERE/dockerd-down.sh"
}
started=0
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  "$HERE/dockerd-up.sh" || exit 1
  started=1
fi
[ $started = 1 ] && trap down EXIT
phase kit "$HERE/build.sh" || exit 1
docker network inspect kind >/dev/null 2>&1 || docker network create kind >/dev/null
docker network connect kind "$REGISTRY" 2>/dev/null || true
# the provider looks for its pinned kind in the cache (it would download it, which fails offline)
mkdir -p "$CACHE_ROOT/kind" && cp "$KIT/cache/bin/kind-v0.33.0" "$CACHE_ROOT/kind/kind-v0.33.0"
export K8SSEC_KIND_ARGS="--k8s-sec-cluster=kind --k8s-sec-kind-image=kindest/node:v1.37.2-kit \
--k8s-sec-calico-manifest=$KIT/calico-vxlan.yaml --k8s-sec-registry-mirror=$REGISTRY:5000"
phase "${K8SSEC_PHASE:-command}" "$@"
