#!/bin/bash
# Build what an environment's pod needs before it can be played: the
# container images at the environment's stage, and its named volumes with
# their initial contents.
#
# Usage: environments/build_env_resources.sh ENV [--offline] [--skip-images] [--recreate-volumes]
#   ENV                 dev_dummyauth | dev_dummyauth_extslurm | dev_realauth |
#                       dev_realauth_zenithclient | prod
#   --offline           build images on local Debian stand-in bases (no registry,
#                       no Python package index); same as SSB_OFFLINE=1
#   --skip-images       only (re)create volumes
#   --recreate-volumes  delete and recreate volumes that exist already
#                       (default: keep them, with the state they hold)
# Volume contents: environments/common/volumes/<volume>/ overlaid with
# environments/ENV/volumes/<volume>/.
set -euo pipefail
export SSB_PROG=build_env_resources.sh
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
(($#)) || usage
ENV_NAME=$1
shift
[[ $ENV_NAME == -h || $ENV_NAME == --help ]] && usage
OFFLINE=${SSB_OFFLINE:-0}
SKIP_IMAGES=0
RECREATE=0
while (($#)); do
  case $1 in
    --offline) OFFLINE=1 ;;
    --skip-images) SKIP_IMAGES=1 ;;
    --recreate-volumes) RECREATE=1 ;;
    -h|--help) usage ;;
    *) ssb_log "unknown argument: $1"; usage ;;
  esac
  shift
done
ssb_env_conf "$ENV_NAME"
ssb_require_cmd podman tar

if ((SKIP_IMAGES == 0)); then
  build_args=(--stage "$SSB_ENV_STAGE")
  [[ $OFFLINE == 1 ]] && build_args+=(--offline)
  bash "${SSB_REPO_ROOT}/containers/build_images.sh" "${build_args[@]}" "${SSB_ENV_IMAGES[@]}"
  if [[ $SSB_ENV_ZENITH == 1 ]]; then
    if podman image exists "$SSB_ZENITH_IMAGE"; then
      ssb_log "Zenith client image ${SSB_ZENITH_IMAGE} present"
    elif [[ $OFFLINE == 1 ]]; then
      ssb_notice "the Zenith client image ${SSB_ZENITH_IMAGE} cannot be obtained offline (it comes from its registry); the pod's zenith-client container will not start until it is loaded (podman load / podman pull)"
    else
      podman pull "$SSB_ZENITH_IMAGE"
    fi
  fi
fi

slug=$(ssb_slug "$ENV_NAME")
for vol in "${SSB_ENV_VOLUMES[@]}"; do
  name="${vol//_/-}-${slug}"
  if podman volume exists "$name"; then
    if ((RECREATE == 0)); then
      ssb_log "keeping existing volume ${name} (--recreate-volumes replaces it)"
      continue
    fi
    podman volume rm "$name" >/dev/null
  fi
  staging=$(mktemp -d)
  for src in "${SSB_REPO_ROOT}/environments/common/volumes/${vol}" "${SSB_REPO_ROOT}/environments/${ENV_NAME}/volumes/${vol}"; do
    [[ -d $src ]] && tar -C "$src" -c --exclude=__pycache__ . | tar -x -C "$staging"
  done
  find "$staging" -name .keep -delete
  podman volume create --label "io.slurm-ssh-bridge.environment=${ENV_NAME}" "$name" >/dev/null
  tar -C "$staging" --owner=0 --group=0 -c . | podman volume import "$name" -
  rm -rf -- "$staging"
  ssb_log "created volume ${name}"
done
ssb_log "resources for ${ENV_NAME} ready"
