#!/bin/bash
# Stop the private dockerd and undo exactly what it changed on the host (recorded by dockerd-up.sh):
# rules and chains it added (DOCKER*, docker0, br-*), FORWARD/other policies, sysctls, links.
set -uo pipefail
KIT=${KIT:-${K8SSEC_CACHE:-$HOME/.cache/pytest-k8ssec}/kit}
ST=$KIT/state
[ -e "$ST/dockerd.started" ] || { echo "dockerd-up.sh did not start a dockerd: nothing to undo"; exit 0; }
# the bridges that belong to this dockerd (docker0 and br-<network id>), read before it stops;
# never anything else: veths and bridges of other users (e.g. the local cluster's pods) stay
ours=$(docker network ls -q --filter driver=bridge 2>/dev/null | while read -r id; do
  n=$(docker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$id" 2>/dev/null); echo "${n:-br-${id:0:12}}"; done)
if [ -s /run/kit-docker.pid ]; then
  pid=$(cat /run/kit-docker.pid)
  kill "$pid" 2>/dev/null
  for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { echo "dockerd $pid did not stop" >&2; exit 1; }
fi
undo() { # $1 save cmd, $2 iptables cmd, $3 pre-file prefix
  local save=$1 ipt=$2 pre=$3 t line chain
  for t in filter nat mangle raw; do
    [ -f "$ST/$pre-$t" ] || continue
    cur=$($save -t $t 2>/dev/null) || continue
    # rules added since, that belong to docker: delete one by one
    comm -13 <(grep '^-A ' "$ST/$pre-$t" | sort) <(echo "$cur" | grep '^-A ' | sort) |
      grep -E 'DOCKER|docker0|br-[0-9a-f]{12}' | while read -r line; do
        eval "$ipt -t $t -D ${line#-A }" || echo "could not delete ($t): $line" >&2
      done
    # chains added since named DOCKER*: flush and delete
    for chain in $(comm -13 <(grep '^:' "$ST/$pre-$t" | cut -d' ' -f1 | sort) <(echo "$cur" | grep '^:' | cut -d' ' -f1 | sort) | tr -d : | grep '^DOCKER'); do
      $ipt -t $t -F "$chain"; done
    for chain in $(comm -13 <(grep '^:' "$ST/$pre-$t" | cut -d' ' -f1 | sort) <(echo "$cur" | grep '^:' | cut -d' ' -f1 | sort) | tr -d : | grep '^DOCKER'); do
      $ipt -t $t -X "$chain" || echo "could not delete chain $t/$chain" >&2; done
    # built-in chain policies back to what they were
    grep -E '^:[A-Z]+ (ACCEPT|DROP)' "$ST/$pre-$t" | while read -r c pol rest; do
      c=${c#:}; now=$(echo "$cur" | grep -E "^:$c " | cut -d' ' -f2)
      [ -n "$now" ] && [ "$now" != "$pol" ] && $ipt -t $t -P "$c" "$pol"
    done
  done
}
undo iptables-nft-save iptables-nft pre-nft
undo iptables-legacy-save iptables-legacy pre-legacy
undo ip6tables-nft-save ip6tables-nft pre-nft6
# bridges dockerd created and left behind (its veths go with its containers)
for l in $ours; do
  grep -qx "$l" "$ST/pre-links" && continue
  ip link show "$l" >/dev/null 2>&1 && ip link del "$l" && echo "removed link $l"; done
# sysctls back, except forwarding when something else started using it meanwhile (e.g. the local
# cluster, which switches ip_forward on and restores its own "before" value at its teardown):
# resetting it under a live cluster would cut that cluster's pod traffic.
others=$(comm -13 <(grep -h '^-A ' "$ST"/pre-nft-* | sort -u) <(for t in filter nat; do iptables-nft-save -t $t 2>/dev/null; done | grep '^-A ' | sort -u) | grep -vcE 'DOCKER|docker0|br-[0-9a-f]{12}' || true)
others6=$(comm -13 <(grep -h '^-A ' "$ST"/pre-nft6-* 2>/dev/null | sort -u) <(for t in filter nat; do ip6tables-nft-save -t $t 2>/dev/null; done | grep '^-A ' | sort -u) | grep -vcE 'DOCKER|docker0|br-[0-9a-f]{12}' || true)
live_local=$(pgrep -f "$HOME/.cache/pytest-k8ssec/local-cluster" | head -1 || true)
while read -r k _ v; do
  [ "$(sysctl -n "$k" 2>/dev/null)" = "$v" ] && continue
  if { [[ $k == net.ipv4.* ]] && { [ "${others:-0}" -gt 0 ] || [ -n "$live_local" ]; }; } ||
     { [[ $k == net.ipv6.* ]] && [ "${others6:-0}" -gt 0 ]; }; then
    echo "kept $k=$(sysctl -n "$k") (was $v before dockerd): another user of forwarding appeared since (${others:-0}/${others6:-0} non-docker v4/v6 rules${live_local:+, local cluster pid $live_local})"
    continue
  fi
  sysctl -qw "$k=$v" && echo "reset $k=$v"
done <"$ST/pre-sysctl"
mount | grep -q ' /run/kit-docker' && umount -R /run/kit-docker 2>/dev/null
rm -f "$ST/dockerd.started"
echo "dockerd stopped, host changes undone"
