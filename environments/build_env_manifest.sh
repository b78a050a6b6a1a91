#!/bin/bash
# Write an environment's Kubernetes manifest into a deploy directory:
# DEPLOY_DIR/combined.yaml = the environment's Secrets + environments/ENV/pod.yaml.
#
# Usage: environments/build_env_manifest.sh ENV DEPLOY_DIR [options]
#   --hub-ip IP        host address the hub's port 8000 is published on (default 127.0.0.1)
#   --hub-port N       host port for it (default 8000)
#   --hub-api-ip IP    host address the Hub API (8081) is published on, for
#                      environments with an external Slurm (default 127.0.0.1)
#   --hub-api-port N   host port for it (default 8081)
#   --host-network     run the pod in the host's network namespace
#                      (hostNetwork: true, no port publishing): the hub then
#                      listens where hubBindUrl/hubApiBindUrl say
#   --jupyterhub-image IMAGE, --slurm-image IMAGE  override the image names
#
# DEPLOY_DIR must hold deploy-configmap.yaml (examples:
# environments/ENV/deploy-configmap.example.yaml) and, depending on ENV:
#   dev_dummyauth_extslurm: ssh_client_key, ssh_client_key.pub, ssh_known_hosts
#   dev_realauth_zenithclient: ssh_zenith_client_key(.pub), zenith_client_config.yaml
#   prod: all of the above
# For environments with Slurm in the pod the SSH client key, the SSH host key
# and the munge key are generated here (once; kept in DEPLOY_DIR, mode 0600).
set -euo pipefail
export SSB_PROG=build_env_manifest.sh
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
(($# >= 2)) || usage
ENV_NAME=$1
DEPLOY_DIR=$2
shift 2
HUB_IP=127.0.0.1 HUB_PORT=8000 API_IP=127.0.0.1 API_PORT=8081 JH_IMAGE="" SLURM_IMAGE="" HOST_NETWORK=0
while (($#)); do
  if [[ $1 == --host-network ]]; then HOST_NETWORK=1; shift; continue; fi
  (($# >= 2)) || usage
  case $1 in
    --hub-ip) HUB_IP=$2 ;;
    --hub-port) HUB_PORT=$2 ;;
    --hub-api-ip) API_IP=$2 ;;
    --hub-api-port) API_PORT=$2 ;;
    --jupyterhub-image) JH_IMAGE=$2 ;;
    --slurm-image) SLURM_IMAGE=$2 ;;
    *) ssb_log "unknown argument: $1"; usage ;;
  esac
  shift 2
done
for p in "$HUB_PORT" "$API_PORT"; do
  if [[ ! $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then ssb_die "bad port '${p}'"; fi
done
ssb_env_conf "$ENV_NAME"
ssb_require_cmd base64 sed head
[[ -d $DEPLOY_DIR ]] || ssb_die "${DEPLOY_DIR} is not a directory"
DEPLOY_DIR=$(cd "$DEPLOY_DIR" && pwd)
POD_YAML="${SSB_REPO_ROOT}/environments/${ENV_NAME}/pod.yaml"
[[ -f $POD_YAML ]] || ssb_die "missing ${POD_YAML}"
slug=$(ssb_slug "$ENV_NAME")

# --- inputs -----------------------------------------------------------------
CM="${DEPLOY_DIR}/deploy-configmap.yaml"
[[ -f $CM ]] || ssb_die "missing ${CM} (copy environments/${ENV_NAME}/deploy-configmap.example.yaml and edit it)"
grep -qE '^kind:[[:space:]]*ConfigMap[[:space:]]*$' "$CM" || ssb_die "${CM}: not a ConfigMap (kind: ConfigMap expected)"
grep -qE '^[[:space:]]+name:[[:space:]]*"?deploy-config"?[[:space:]]*$' "$CM" \
  || ssb_die "${CM}: the ConfigMap must be named deploy-config"
if grep -qE '^apiVersion:[[:space:]]*core/v1' "$CM"; then
  ssb_log "warning: ${CM} uses apiVersion core/v1; Kubernetes only accepts v1"
fi
missing=()
for key in "${SSB_ENV_CONFIGMAP_KEYS[@]}"; do
  grep -qE "^[[:space:]]+${key}:" "$CM" || missing+=("$key")
done
((${#missing[@]} == 0)) || ssb_die "${CM}: missing key(s) for ${ENV_NAME}: ${missing[*]}"
missing=()
for f in "${SSB_ENV_DEPLOY_FILES[@]}"; do
  [[ -s ${DEPLOY_DIR}/${f} ]] || missing+=("${DEPLOY_DIR}/${f}")
done
if ((${#missing[@]})); then
  for f in "${missing[@]}"; do ssb_log "missing required file: ${f}"; done
  ssb_die "${ENV_NAME} needs the files above in the deploy directory (see docs/ENVIRONMENTS.md)"
fi

# --- generated keys (Slurm in the pod) --------------------------------------
umask 077
gen_ssh_key() { # FILE COMMENT
  if [[ ! -s $1 ]]; then
    ssb_require_cmd ssh-keygen
    ssh-keygen -q -t ed25519 -N "" -C "$2" -f "$1"
    ssb_log "generated $1"
  fi
}
if [[ $SSB_ENV_SLURM_IN_POD == 1 ]]; then
  gen_ssh_key "${DEPLOY_DIR}/ssh_client_key" "slurm-ssh-bridge ${ENV_NAME} client key"
  gen_ssh_key "${DEPLOY_DIR}/ssh_host_ed25519_key" "slurm-ssh-bridge ${ENV_NAME} host key"
  if [[ ! -s ${DEPLOY_DIR}/munge.key ]]; then
    # Text with a space, so that it never looks like base64 (see secret()
    # below); munge takes any key file content.
    { printf 'munge-key %s\n' "$ENV_NAME"; head -c 768 /dev/urandom | base64 -w 76; } >"${DEPLOY_DIR}/munge.key"
    ssb_log "generated ${DEPLOY_DIR}/munge.key"
  fi
  # The bridge reaches sshd on the pod's loopback as "localhost".
  hostpub=$(cut -d' ' -f1,2 "${DEPLOY_DIR}/ssh_host_ed25519_key.pub")
  printf 'localhost %s\n127.0.0.1 %s\n::1 %s\n' "$hostpub" "$hostpub" "$hostpub" \
    >"${DEPLOY_DIR}/ssh_known_hosts"
fi

# --- combined.yaml ------------------------------------------------------------
# secret NAME KEY=FILE... : a Secret with the files as base64 `data`.
# (podman 4.3 ignores stringData and mounts `data` values still base64
# encoded; the images' entrypoints decode such files, Kubernetes and newer
# podman decode them themselves.)
secret() {
  local name=$1 kv
  shift
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  labels:\n    app.kubernetes.io/name: slurm-ssh-bridge\n    app.kubernetes.io/instance: %s\ntype: Opaque\ndata:\n' "$name" "$slug"
  for kv in "$@"; do
    printf '  %s: %s\n' "${kv%%=*}" "$(base64 -w0 <"${kv#*=}")"
  done
  printf -- '---\n'
}
out="${DEPLOY_DIR}/combined.yaml"
{
  printf '# Generated by environments/build_env_manifest.sh for %s. Contains secrets:\n# keep it private (mode 0600), do not commit it.\n' "$ENV_NAME"
  secret "jupyterhub-slurm-ssh-client-key-${slug}" \
    "ssh_key=${DEPLOY_DIR}/ssh_client_key" "ssh_key.pub=${DEPLOY_DIR}/ssh_client_key.pub"
  secret "jupyterhub-slurm-ssh-known-hosts-${slug}" "ssh_known_hosts=${DEPLOY_DIR}/ssh_known_hosts"
  if [[ $SSB_ENV_SLURM_IN_POD == 1 ]]; then
    secret "jupyterhub-slurm-ssh-host-key-${slug}" \
      "ssh_key=${DEPLOY_DIR}/ssh_host_ed25519_key" "ssh_key.pub=${DEPLOY_DIR}/ssh_host_ed25519_key.pub"
    secret "jupyterhub-slurm-munge-key-${slug}" "munge.key=${DEPLOY_DIR}/munge.key"
  fi
  if [[ $SSB_ENV_ZENITH == 1 ]]; then
    secret "jupyterhub-slurm-ssh-zenith-client-key-${slug}" \
      "ssh_key=${DEPLOY_DIR}/ssh_zenith_client_key" "ssh_key.pub=${DEPLOY_DIR}/ssh_zenith_client_key.pub"
    secret "jupyterhub-slurm-zenith-client-config-${slug}" "client.yaml=${DEPLOY_DIR}/zenith_client_config.yaml"
  fi
  sed_args=(-e "s#^\\([[:space:]]*hostIP:\\).*\\# ssb:hub-ip\$#\\1 ${HUB_IP}  \\# ssb:hub-ip#"
    -e "s#^\\([[:space:]]*hostPort:\\).*\\# ssb:hub-port\$#\\1 ${HUB_PORT}  \\# ssb:hub-port#"
    -e "s#^\\([[:space:]]*hostIP:\\).*\\# ssb:hub-api-ip\$#\\1 ${API_IP}  \\# ssb:hub-api-ip#"
    -e "s#^\\([[:space:]]*hostPort:\\).*\\# ssb:hub-api-port\$#\\1 ${API_PORT}  \\# ssb:hub-api-port#")
  if ((HOST_NETWORK)); then
    sed_args+=(-e '/# ssb:ports-begin$/,/# ssb:ports-end$/d' -e 's/^\([[:space:]]*\)# ssb:host-network$/\1hostNetwork: true  # ssb:host-network/')
  fi
  [[ -n $JH_IMAGE ]] && sed_args+=(-e "s#^\\([[:space:]]*image:\\).*\\# ssb:jupyterhub-image\$#\\1 ${JH_IMAGE}  \\# ssb:jupyterhub-image#")
  [[ -n $SLURM_IMAGE ]] && sed_args+=(-e "s#^\\([[:space:]]*image:\\).*\\# ssb:slurm-image\$#\\1 ${SLURM_IMAGE}  \\# ssb:slurm-image#")
  sed "${sed_args[@]}" "$POD_YAML"
} >"${out}.tmp"
mv "${out}.tmp" "$out"
ssb_log "wrote ${out}"
