#!/bin/bash
# Show an environment's pod, containers, ports, volumes and secrets.
#
# Usage: environments/status.sh ENV
# Exit status: 0 when the pod exists and all its containers are running,
# 1 otherwise.
set -euo pipefail
export SSB_PROG=status.sh
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
(($# == 1)) || usage
ENV_NAME=$1
ssb_env_conf "$ENV_NAME"
ssb_require_cmd podman
pod=$(ssb_pod_name "$ENV_NAME")
status=0
echo "== pod ${pod}"
if podman pod exists "$pod"; then
  podman pod ps --filter "name=^${pod}\$" --ctr-names --ctr-status
  echo "== containers"
  podman ps -a --filter "pod=${pod}" --format '{{.Names}}\t{{.Status}}\t{{.Ports}}'
  not_running=$(podman ps -a --filter "pod=${pod}" --format '{{.Names}} {{.Status}}' | awk '$1 !~ /-infra$/ && $2 != "Up" { print $1 }')
  if [[ -n $not_running ]]; then
    echo "not running: ${not_running}"
    status=1
  fi
else
  echo "not present"
  status=1
fi
echo "== volumes"
while read -r v; do
  if podman volume exists "$v"; then echo "$v"; else echo "$v (missing)"; fi
done < <(ssb_volume_names "$ENV_NAME")
echo "== secrets"
while read -r s; do
  if podman secret inspect "$s" >/dev/null 2>&1; then echo "$s"; else echo "$s (not present)"; fi
done < <(ssb_secret_names "$ENV_NAME")
exit "$status"
