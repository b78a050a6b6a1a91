#!/bin/bash
# Build the project's container images.
#
# Usage: containers/build_images.sh [--offline] [--stage stage-dev|stage-prod]
#                                   [--source-ref REF] [jupyterhub] [slurm]
#   --offline      build on local stand-in bases made from Debian's archive
#                  (containers/offline/build_offline_bases.sh), for machines
#                  with no container registry and no Python package index.
#                  Same as SSB_OFFLINE=1. What such a build cannot install is
#                  listed at the end as NOTICE lines.
#   --stage        stage to build (default stage-dev)
#   --source-ref   stage-prod only: git commit to build the bridge and
#                  python_shim from (default HEAD; stage-dev always uses the
#                  working copy, uncommitted changes included)
#   jupyterhub, slurm  which images (default both)
#
# Images: localhost/ssb-jupyterhub:{dev-latest|latest},
#         localhost/ssb-slurm:{dev-latest|latest}
# Build arguments come from containers/<image>/argfile.conf.
# Environment: SSB_BUILD_DIR (default /var/tmp/ssb-build) holds the prepared
# build contexts. SSB_SUPPORT_PACKAGES (default <repo>/../shared/vendor when
# it exists): a directory with source trees of the supporting packages
# (batchspawner, bricsauthenticator, slurmspawner_wrappers); stage-dev
# installs them as local working copies (a clone placed in
# containers/<image>/_dev_build_data/<name> wins). stage-prod never does.
set -euo pipefail
export SSB_PROG=build_images.sh
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/../environments/lib/common.sh"

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

OFFLINE=${SSB_OFFLINE:-0}
STAGE=stage-dev
SOURCE_REF=HEAD
WANT=()
while (($#)); do
  case $1 in
    --offline) OFFLINE=1 ;;
    --stage) [[ $# -ge 2 ]] || usage; STAGE=$2; shift ;;
    --source-ref) [[ $# -ge 2 ]] || usage; SOURCE_REF=$2; shift ;;
    jupyterhub|slurm) WANT+=("$1") ;;
    -h|--help) usage ;;
    *) ssb_log "unknown argument: $1"; usage ;;
  esac
  shift
done
[[ $STAGE == stage-dev || $STAGE == stage-prod ]] || ssb_die "--stage must be stage-dev or stage-prod"
((${#WANT[@]})) || WANT=(jupyterhub slurm)
ssb_require_cmd podman tar

C=${SSB_REPO_ROOT}/containers
BUILD_DIR=${SSB_BUILD_DIR:-/var/tmp/ssb-build}
NOTICES=()

# read_argfile FILE: print --build-arg NAME=VALUE lines (one word per line)
read_argfile() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == '#'* ]] && continue
    [[ $line == *=* ]] || ssb_die "$1: bad line '${line}' (expected NAME=VALUE)"
    printf '%s\n' --build-arg "$line"
  done <"$1"
}

OFFLINE_ARGS=()
if [[ $OFFLINE == 1 ]]; then
  bash "${C}/offline/build_offline_bases.sh"
  eval "$(bash "${C}/offline/build_offline_bases.sh" --print-names | tr ' ' '\n' | sed 's/^/OB_/')"
  OFFLINE_ARGS=(--pull=never --build-arg SSB_OFFLINE=1)
fi

# stage_sources DEST: the bridge's sources and python_shim into DEST
stage_sources() {
  local dest=$1 paths=(CMakeLists.txt include src cmake python_shim)
  mkdir -p "${dest}/bridge-src" "${dest}/python_shim"
  if [[ $STAGE == stage-prod ]]; then
    git -C "$SSB_REPO_ROOT" rev-parse --verify -q "${SOURCE_REF}^{commit}" >/dev/null \
      || ssb_die "--source-ref ${SOURCE_REF} is not a commit of ${SSB_REPO_ROOT}"
    local tmp
    tmp=$(mktemp -d "${BUILD_DIR}/archive.XXXXXX")
    local present
    mapfile -t present < <(git -C "$SSB_REPO_ROOT" ls-tree --name-only "$SOURCE_REF" -- "${paths[@]}")
    ((${#present[@]})) || ssb_die "${SOURCE_REF} holds none of: ${paths[*]}"
    git -C "$SSB_REPO_ROOT" archive "$SOURCE_REF" -- "${present[@]}" | tar -x -C "$tmp"
    ssb_log "stage-prod sources: git archive ${SOURCE_REF} ($(git -C "$SSB_REPO_ROOT" rev-parse --short "$SOURCE_REF"))"
    src_root=$tmp
  else
    src_root=$SSB_REPO_ROOT
    ssb_log "stage-dev sources: working copy ${SSB_REPO_ROOT}"
  fi
  local p
  for p in CMakeLists.txt include src cmake; do
    [[ -e ${src_root}/${p} ]] || continue
    if git -C "$src_root" rev-parse --git-dir >/dev/null 2>&1 && [[ $STAGE == stage-dev ]]; then
      # tracked and untracked-but-not-ignored files (build/ trees stay out)
      (cd "$src_root" && git ls-files -co --exclude-standard -z -- "$p" \
        | while IFS= read -r -d '' f; do if [[ -e $f ]]; then printf '%s\0' "$f"; fi; done \
        | tar --null -T - -c) | tar -x -C "${dest}/bridge-src"
    else
      tar -C "$src_root" -c --exclude=build "$p" | tar -x -C "${dest}/bridge-src"
    fi
  done
  if [[ -d ${src_root}/python_shim ]]; then
    tar -C "${src_root}/python_shim" -c --exclude=build --exclude='*.egg-info' \
      --exclude=__pycache__ --exclude=.pytest_cache . | tar -x -C "${dest}/python_shim"
  else
    NOTICES+=("python_shim/ is missing from the sources: the JupyterHub image has no slurm_ssh_bridge package")
  fi
  [[ $STAGE == stage-prod ]] && rm -rf -- "$src_root"
  [[ -f ${dest}/bridge-src/CMakeLists.txt ]] || ssb_die "no CMakeLists.txt in the sources: cannot build the bridge"
}

# support_packages_dir: the SSB_SUPPORT_PACKAGES directory, or nothing.
support_packages_dir() {
  if [[ -n ${SSB_SUPPORT_PACKAGES:-} ]]; then
    [[ -d $SSB_SUPPORT_PACKAGES ]] || ssb_die "SSB_SUPPORT_PACKAGES=${SSB_SUPPORT_PACKAGES} is not a directory"
    realpath -- "$SSB_SUPPORT_PACKAGES"
  elif [[ -d ${SSB_REPO_ROOT}/../shared/vendor ]]; then
    realpath -- "${SSB_REPO_ROOT}/../shared/vendor"
  fi
}

# fill_dev_build_data IMAGE DEST PACKAGE...: the local working copies for a
# stage-dev build into DEST (the build context's _dev_build_data/): a clone in
# containers/IMAGE/_dev_build_data/<name>, else <SSB_SUPPORT_PACKAGES>/<name>
# (with its <name>.commit), and scripts/install-support-packages.sh that the
# image installs them with. Prints what it used; notes what is missing.
fill_dev_build_data() {
  local image=$1 dest=$2 support pkg src
  shift 2
  support=$(support_packages_dir)
  mkdir -p "$dest"
  cp "${SSB_REPO_ROOT}/scripts/install-support-packages.sh" "${dest}/install-support-packages.sh"
  for pkg in "$@"; do
    src=""
    if [[ -d ${C}/${image}/_dev_build_data/${pkg} ]]; then
      src=${C}/${image}/_dev_build_data/${pkg}
    elif [[ -n $support && -d ${support}/${pkg} ]]; then
      src=${support}/${pkg}
    fi
    if [[ -z $src ]]; then
      NOTICES+=("${image}: no local working copy of ${pkg} (set SSB_SUPPORT_PACKAGES to a directory holding it)")
      continue
    fi
    tar -C "$src" -c --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=__pycache__ . \
      | (mkdir -p "${dest}/${pkg}" && tar -x -C "${dest}/${pkg}")
    if [[ -f ${src}/../${pkg}.commit ]]; then cp "${src}/../${pkg}.commit" "${dest}/${pkg}.commit"; fi
    ssb_log "${image} stage-dev: local working copy of ${pkg} from ${src}"
  done
}

build_failed() {
  if [[ $OFFLINE == 1 ]]; then
    ssb_die "podman build of $1 failed (see the output above)"
  fi
  ssb_die "podman build of $1 failed (see above). Without a reachable container registry and Python package index, build with --offline"
}

build_jupyterhub() {
  local image ctx
  image=$(ssb_image_name jupyterhub "$STAGE")
  ctx="${BUILD_DIR}/jupyterhub-${STAGE}"
  mkdir -p "$BUILD_DIR"
  rm -rf -- "$ctx"
  mkdir -p "${ctx}/jupyterhub" "${ctx}/_dev_build_data"
  stage_sources "$ctx"
  cp "${C}/jupyterhub/Containerfile" "${C}/jupyterhub/ssb-jupyterhub-entrypoint" \
    "${C}/jupyterhub/render_config.py" "${C}/jupyterhub/collect-runtime.sh" "${ctx}/jupyterhub/"
  if [[ $STAGE == stage-dev ]]; then
    fill_dev_build_data jupyterhub "${ctx}/_dev_build_data" batchspawner bricsauthenticator
  fi
  local args
  mapfile -t args < <(read_argfile "${C}/jupyterhub/argfile.conf")
  if [[ $OFFLINE == 1 ]]; then
    # shellcheck disable=SC2154  # OB_* come from --print-names
    args+=(--build-arg "BASE_IMAGE=${OB_jupyterhub}" --build-arg "BUILDER_IMAGE=${OB_debian}")
    if [[ $STAGE == stage-prod ]]; then
      NOTICES+=("jupyterhub: batchspawner NOT installed (offline stage-prod: no Python package index); the hub cannot spawn notebook servers, the bridge CLI works")
      NOTICES+=("jupyterhub: bricsauthenticator NOT installed (offline stage-prod); dev_realauth*, prod authentication cannot work in this image")
    fi
    NOTICES+=("jupyterhub: base is Debian's jupyterhub package (3.0.x) instead of quay.io/jupyterhub/jupyterhub")
  fi
  ssb_log "building ${image} (${STAGE}) from ${ctx}"
  local t0=$SECONDS
  podman build --network host "${OFFLINE_ARGS[@]}" "${args[@]}" --target "$STAGE" \
    -f "${ctx}/jupyterhub/Containerfile" -t "$image" "$ctx" >&2 || build_failed "$image"
  ssb_log "built ${image} in $((SECONDS - t0)) s"
}

build_slurm() {
  local image ctx
  image=$(ssb_image_name slurm "$STAGE")
  ctx="${BUILD_DIR}/slurm-${STAGE}"
  local args
  mapfile -t args < <(read_argfile "${C}/slurm/argfile.conf")
  [[ -d ${C}/slurm/slurmspawner_wrappers/bin ]] || ssb_die "containers/slurm/slurmspawner_wrappers/bin is missing"
  mkdir -p "$BUILD_DIR"
  rm -rf -- "$ctx"
  mkdir -p "$ctx"
  tar -C "${C}/slurm" -c --exclude=./_dev_build_data . | tar -x -C "$ctx"
  mkdir -p "${ctx}/_dev_build_data"
  if [[ $STAGE == stage-dev ]]; then
    fill_dev_build_data slurm "${ctx}/_dev_build_data" slurmspawner_wrappers batchspawner
  fi
  if [[ $OFFLINE == 1 ]]; then
    args+=(--build-arg "BASE_IMAGE=${OB_slurm}")
    if [[ $STAGE == stage-prod || ! -d ${ctx}/_dev_build_data/slurmspawner_wrappers ]]; then
      NOTICES+=("slurm: upstream slurmspawner_wrappers NOT installed (offline, no local working copy); using the project's interface-compatible wrappers")
    fi
    if [[ $STAGE == stage-prod || ! -d ${ctx}/_dev_build_data/batchspawner ]]; then
      NOTICES+=("slurm: batchspawner-singleuser NOT installed (offline, no local working copy); notebook jobs cannot report their port to the hub")
    fi
    NOTICES+=("slurm: base is Debian's slurm-wlm/munge instead of docker.io/nathanhess/slurm")
  fi
  ssb_log "building ${image} (${STAGE}) from ${ctx}"
  local t0=$SECONDS
  podman build --network host "${OFFLINE_ARGS[@]}" "${args[@]}" --target "$STAGE" \
    -f "${ctx}/Containerfile" -t "$image" "$ctx" >&2 || build_failed "$image"
  ssb_log "built ${image} in $((SECONDS - t0)) s"
}

# prune_superseded KIND: remove untagged images that earlier runs of this
# script built for KIND (labelled io.slurm-ssh-bridge.stage=KIND-…), keeping
# the newest untagged one of each intermediate stage as the build cache.
# Images of other projects are never touched.
prune_superseded() {
  local kind=$1 label ids keep
  for label in "${kind}-bridge-builder" "${kind}-stage-base" "${kind}-stage-dev" "${kind}-stage-prod"; do
    mapfile -t ids < <(podman images --filter dangling=true --filter "label=io.slurm-ssh-bridge.stage=${label}" \
      --format '{{.CreatedAt}}|{{.ID}}' | sort -r | cut -d'|' -f2)
    keep=1
    [[ $label == *-stage-dev || $label == *-stage-prod ]] && keep=0
    local id
    for id in "${ids[@]:keep}"; do
      podman rmi "$id" >/dev/null 2>&1 || true
    done
  done
}

T0=$SECONDS
for w in "${WANT[@]}"; do "build_${w}"; prune_superseded "$w"; done
for n in "${NOTICES[@]}"; do ssb_notice "$n"; done
ssb_log "done in $((SECONDS - T0)) s"
