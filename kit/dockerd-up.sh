#!/bin/bash
# Start a private dockerd (data root under the kit's cache, default socket) after recording the
# host state it changes, so dockerd-down.sh can undo exactly that.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KIT=${KIT:-${K8SSEC_CACHE:-$HOME/.cache/pytest-k8ssec}/kit}
ST=$KIT/state; DOCKER_ROOT=${DOCKER_ROOT:-$KIT/docker}
mkdir -p "$ST" "$KIT/logs"
if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then echo "dockerd already answers"; exit 0; fi
[ -e "$ST/dockerd.started" ] && { echo "stale $ST/dockerd.started: run dockerd-down.sh first" >&2; exit 1; }
# host state before dockerd
for t in filter nat mangle raw; do
  iptables-nft-save -t $t >"$ST/pre-nft-$t" 2>/dev/null || true
  # legacy tables only when they exist already: iptables-legacy-save would create them
  if [ -s /proc/net/ip_tables_names ]; then iptables-legacy-save -t $t >"$ST/pre-legacy-$t" 2>/dev/null || true; else rm -f "$ST/pre-legacy-$t"; fi
  ip6tables-nft-save -t $t >"$ST/pre-nft6-$t" 2>/dev/null || true
done
sysctl -a 2>/dev/null | grep -E '^net\.(ipv4\.ip_forward|ipv4\.conf\.(all|default)\.forwarding|ipv6\.conf\.(all|default)\.forwarding|bridge\.bridge-nf-call-(iptables|ip6tables|arptables)) ' >"$ST/pre-sysctl"
ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort >"$ST/pre-links"
touch "$ST/dockerd.started"
nohup dockerd --data-root "$DOCKER_ROOT" --exec-root /run/kit-docker --pidfile /run/kit-docker.pid \
  -H unix:///var/run/docker.sock \
  --add-runtime kitrunc=$HERE/runc-nosysres --default-runtime kitrunc \
  --log-level warn >>"$KIT/logs/dockerd.log" 2>&1 &
for i in $(seq 60); do docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && break; sleep 0.5; done
docker version --format 'dockerd {{.Server.Version}} up'
