#!/bin/bash
# Bring an environment's pod up from its deploy directory.
#
# Usage: environments/up.sh ENV DEPLOY_DIR [-- EXTRA_KUBE_PLAY_ARGS...]
#   runs: podman kube play --configmap DEPLOY_DIR/deploy-configmap.yaml
#         [EXTRA…] DEPLOY_DIR/combined.yaml
#   e.g.  environments/up.sh dev_dummyauth_extslurm ~/deploy -- --network host
# Needs: build_env_resources.sh ENV (images, volumes) and
#        build_env_manifest.sh ENV DEPLOY_DIR (combined.yaml) first.
set -euo pipefail
export SSB_PROG=up.sh
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
(($# >= 2)) || usage
ENV_NAME=$1
DEPLOY_DIR=$2
shift 2
EXTRA=()
if (($#)); then
  [[ $1 == -- ]] || usage
  shift
  EXTRA=("$@")
fi
ssb_env_conf "$ENV_NAME"
ssb_require_cmd podman
CM="${DEPLOY_DIR}/deploy-configmap.yaml"
COMBINED="${DEPLOY_DIR}/combined.yaml"
[[ -f $CM ]] || ssb_die "missing ${CM}"
[[ -f $COMBINED ]] || ssb_die "missing ${COMBINED}: run environments/build_env_manifest.sh ${ENV_NAME} ${DEPLOY_DIR} first"
pod=$(ssb_pod_name "$ENV_NAME")
if podman pod exists "$pod"; then
  ssb_die "pod ${pod} exists already (environments/down.sh ${ENV_NAME} ${DEPLOY_DIR} first)"
fi
# podman would silently create an empty volume for a missing claim.
while read -r vol; do
  podman volume exists "$vol" || ssb_die "volume ${vol} does not exist: run environments/build_env_resources.sh ${ENV_NAME}"
done < <(ssb_volume_names "$ENV_NAME")
while read -r img; do
  podman image exists "$img" || ssb_log "warning: image ${img} is not present locally; podman will try to pull it"
done < <(sed -n 's/^[[:space:]]*image:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$COMBINED")
# Secrets left by an earlier run (podman < 4.5 keeps them): the manifest
# carries their current contents, so replace them.
while read -r s; do
  if podman secret inspect "$s" >/dev/null 2>&1; then
    podman secret rm "$s" >/dev/null
  fi
  if podman volume exists "$s"; then podman volume rm -f "$s" >/dev/null; fi
done < <(ssb_secret_names "$ENV_NAME")
ssb_log "podman kube play --configmap ${CM} ${EXTRA[*]} ${COMBINED}"
podman kube play --configmap "$CM" "${EXTRA[@]}" "$COMBINED"
ssb_log "pod ${pod} is up; environments/status.sh ${ENV_NAME} shows it"
