#!/bin/bash
# Tear an environment's pod down.
#
# Usage: environments/down.sh ENV [DEPLOY_DIR] [--force]
#   without --force: the pod and its containers go; the named volumes (hub
#     state, logs, Slurm state) and the secrets stay, so `up.sh` resumes.
#   --force: also the named volumes, the secrets, and the volumes podman
#     made for Secret/ConfigMap mounts: nothing of the environment is left.
# With DEPLOY_DIR, `podman kube down DEPLOY_DIR/combined.yaml` is used; without
# it the pod is removed by name. (podman < 4.5 has no `kube down --force` and
# leaves secrets behind, hence the explicit removal.)
set -euo pipefail
export SSB_PROG=down.sh
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
(($# >= 1)) || usage
ENV_NAME=$1
shift
DEPLOY_DIR=""
FORCE=0
while (($#)); do
  case $1 in
    --force) FORCE=1 ;;
    -h|--help) usage ;;
    -*) ssb_log "unknown option: $1"; usage ;;
    *) [[ -z $DEPLOY_DIR ]] || usage; DEPLOY_DIR=$1 ;;
  esac
  shift
done
ssb_env_conf "$ENV_NAME"
ssb_require_cmd podman
pod=$(ssb_pod_name "$ENV_NAME")
if podman pod exists "$pod"; then
  if [[ -n $DEPLOY_DIR && -f ${DEPLOY_DIR}/combined.yaml ]]; then
    podman kube down "${DEPLOY_DIR}/combined.yaml" >/dev/null || true
  fi
  if podman pod exists "$pod"; then
    podman pod stop -t 10 "$pod" >/dev/null 2>&1 || true
    podman pod rm -f "$pod" >/dev/null
  fi
  ssb_log "removed pod ${pod}"
else
  ssb_log "pod ${pod} not present"
fi
if ((FORCE)); then
  while read -r s; do
    if podman secret inspect "$s" >/dev/null 2>&1; then podman secret rm "$s" >/dev/null && ssb_log "removed secret ${s}"; fi
    if podman volume exists "$s"; then podman volume rm -f "$s" >/dev/null && ssb_log "removed volume ${s}"; fi
  done < <(ssb_secret_names "$ENV_NAME")
  while read -r v; do
    if podman volume exists "$v"; then podman volume rm -f "$v" >/dev/null && ssb_log "removed volume ${v}"; fi
  done < <(ssb_volume_names "$ENV_NAME")
fi
