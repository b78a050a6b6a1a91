#!/bin/bash
# Shared helpers for the scripts under environments/, containers/ and
# tests/pods/. Source it; it defines functions and a few variables only.
#
# Variables it sets:
#   SSB_REPO_ROOT   absolute path of the repository checkout
#   SSB_ENVIRONMENTS  the five environment names
# shellcheck shell=bash

SSB_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SSB_ENVIRONMENTS=(dev_dummyauth dev_dummyauth_extslurm dev_realauth dev_realauth_zenithclient prod)
export SSB_REPO_ROOT

ssb_log() { printf '%s: %s\n' "${SSB_PROG:-${0##*/}}" "$*" >&2; }
ssb_die() { printf '%s: error: %s\n' "${SSB_PROG:-${0##*/}}" "$*" >&2; exit 1; }
# ssb_notice prints a line that must not be missed (what a build could not do).
ssb_notice() { printf '%s: NOTICE: %s\n' "${SSB_PROG:-${0##*/}}" "$*" >&2; }

# ssb_require_cmd NAME... : fail with a clear message when a tool is missing.
ssb_require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || ssb_die "required command '$c' not found on PATH"
  done
}

# ssb_check_env NAME: fail unless NAME is one of the five environments.
ssb_check_env() {
  local e
  for e in "${SSB_ENVIRONMENTS[@]}"; do
    [[ $1 == "$e" ]] && return 0
  done
  ssb_die "unknown environment '$1' (expected one of: ${SSB_ENVIRONMENTS[*]})"
}

# ssb_slug NAME: the Kubernetes-safe form of an environment name
# (dev_dummyauth -> dev-dummyauth). Resource names (pod, volumes, secrets,
# claims) use the slug because Kubernetes rejects underscores in them.
ssb_slug() { printf '%s' "${1//_/-}"; }

# ssb_env_conf NAME: load environments/NAME/env.conf into the current shell.
# It defines SSB_ENV_STAGE, SSB_ENV_CONTAINERS, SSB_ENV_VOLUMES,
# SSB_ENV_DEPLOY_FILES, SSB_ENV_SLURM_IN_POD, SSB_ENV_ZENITH, SSB_ENV_PUBLISH.
ssb_env_conf() {
  ssb_check_env "$1"
  local f="${SSB_REPO_ROOT}/environments/$1/env.conf"
  [[ -f $f ]] || ssb_die "missing ${f}"
  # shellcheck source=/dev/null
  . "$f"
}

# ssb_podman_conf: on machines that need it (see containers/podman/containers.conf)
# use the repository's containers.conf unless the caller chose one already.
# Only the tests call this; deploy scripts leave podman's configuration alone
# unless SSB_USE_REPO_CONTAINERS_CONF=1.
ssb_podman_conf() {
  if [[ -z ${CONTAINERS_CONF:-} ]]; then
    export CONTAINERS_CONF="${SSB_REPO_ROOT}/containers/podman/containers.conf"
  fi
}
if [[ ${SSB_USE_REPO_CONTAINERS_CONF:-0} == 1 ]]; then
  ssb_podman_conf
fi

# ssb_image_name KIND STAGE: local image name for jupyterhub|slurm at
# stage-dev|stage-prod, e.g. localhost/ssb-jupyterhub:dev-latest
ssb_image_name() {
  local kind=$1 stage=$2
  case $stage in
    stage-dev) printf 'localhost/ssb-%s:dev-latest' "$kind" ;;
    stage-prod) printf 'localhost/ssb-%s:latest' "$kind" ;;
    *) ssb_die "unknown stage '$stage'" ;;
  esac
}

# ssb_secret_names ENV: the Secrets the environment's manifest carries
# (env.conf must be loaded).
ssb_secret_names() {
  local slug
  slug=$(ssb_slug "$1")
  printf '%s\n' "jupyterhub-slurm-ssh-client-key-${slug}" "jupyterhub-slurm-ssh-known-hosts-${slug}"
  if [[ ${SSB_ENV_SLURM_IN_POD} == 1 ]]; then
    printf '%s\n' "jupyterhub-slurm-ssh-host-key-${slug}" "jupyterhub-slurm-munge-key-${slug}"
  fi
  if [[ ${SSB_ENV_ZENITH} == 1 ]]; then
    printf '%s\n' "jupyterhub-slurm-ssh-zenith-client-key-${slug}" "jupyterhub-slurm-zenith-client-config-${slug}"
  fi
}

# ssb_volume_names ENV: the named volumes (PersistentVolumeClaims) of ENV.
ssb_volume_names() {
  local slug v
  slug=$(ssb_slug "$1")
  for v in "${SSB_ENV_VOLUMES[@]}"; do printf '%s-%s\n' "${v//_/-}" "$slug"; done
}

ssb_pod_name() { printf 'jupyterhub-slurm-%s' "$(ssb_slug "$1")"; }

# The Zenith client image (pulled from its registry by build_env_resources.sh).
SSB_ZENITH_IMAGE=${SSB_ZENITH_IMAGE:-ghcr.io/azimuth-cloud/zenith-client:0.15.0}
