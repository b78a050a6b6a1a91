#!/bin/bash
# Pod test (c): bring up dev_dummyauth_extslurm (JupyterHub alone in the pod)
# against a real external Slurm login host: the project's host sandbox
# (tests/sandbox/sandbox.sh: sshd + sudo + munge + slurmctld + slurmd on
# 127.0.0.1). The pod uses the host's network (hostNetwork) so that it
# reaches the sandbox's sshd on loopback; the hub, its API and the proxy's API
# listen on 127.0.0.1 only, on free ports. Same job round trip from inside the
# JupyterHub container, the same real notebook server through the hub
# (tests/pods/notebook.sh), same teardown proof.
#
# Refuses to run when dev_dummyauth_extslurm resources exist already.
# Environment: SSB_POD_TEST_SKIP_BUILD=1 reuses the images already built.
set -euo pipefail
export TEST_NAME=dev_dummyauth_extslurm
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=/dev/null
. "${PODS_DIR}/roundtrip.sh"

ENV_NAME=dev_dummyauth_extslurm
POD=jupyterhub-slurm-dev-dummyauth-extslurm
HUB=${POD}-jupyterhub
SANDBOX_SH=${REPO_ROOT}/tests/sandbox/sandbox.sh
require_root_podman || { fail "root and podman are required"; summary; exit 1; }
if [[ ! -x $SANDBOX_SH && ! -f $SANDBOX_SH ]]; then
  fail "tests/sandbox/sandbox.sh is missing: no external Slurm to test against"
  summary
  exit 1
fi
existing=$(env_leftovers "$ENV_NAME")
if [[ -n $existing ]]; then
  fail "${ENV_NAME} resources exist already, not touching them:"$'\n'"${existing}"
  summary
  exit 1
fi

WORK=$(mktemp -d /tmp/ssb-pods-extslurm.XXXXXX)
# The sandbox users (jupyterspawner, alice.proj1, …) must traverse it.
chmod 0755 "$WORK"
DEPLOY=${WORK}/deploy
SANDBOX=${WORK}/sandbox
mkdir -p "$DEPLOY"
SANDBOX_UP=0
cleanup() {
  local status=$?
  if [[ -n $(env_leftovers "$ENV_NAME") ]]; then
    if ((status != 0)) || ((FAILED > 0)); then
      podman logs --tail 40 "$HUB" >&2 2>&1 || true
    fi
    bash "${REPO_ROOT}/environments/down.sh" "$ENV_NAME" "$DEPLOY" --force >/dev/null 2>&1 || true
  fi
  if ((SANDBOX_UP)); then
    bash "$SANDBOX_SH" down "$SANDBOX" --purge >/dev/null 2>&1 || true
  fi
  [[ ${SSB_POD_TEST_KEEP:-0} == 1 ]] && { log "keeping ${WORK}"; return; }
  rm -rf -- "$WORK"
}
trap cleanup EXIT

# --- the external Slurm login host ---------------------------------------------
t0=$SECONDS
if bash "$SANDBOX_SH" up "$SANDBOX" >"${WORK}/sandbox.log" 2>&1; then
  SANDBOX_UP=1
  pass "host sandbox up (sshd, sudo, munge, slurmctld, slurmd on 127.0.0.1) in $((SECONDS - t0)) s"
else
  SANDBOX_UP=1
  fail "sandbox.sh up failed: $(tail -n 20 "${WORK}/sandbox.log")"
  summary
  exit 1
fi
# shellcheck source=/dev/null
. "${SANDBOX}/sandbox.env"

# --- build -------------------------------------------------------------------
t0=$SECONDS
build_args=(--offline)
[[ ${SSB_POD_TEST_SKIP_BUILD:-0} == 1 ]] && build_args+=(--skip-images)
if bash "${REPO_ROOT}/environments/build_env_resources.sh" "$ENV_NAME" "${build_args[@]}" >"${WORK}/build.log" 2>&1; then
  pass "offline JupyterHub image and volume built in $((SECONDS - t0)) s"
  grep -E 'NOTICE|built localhost' "${WORK}/build.log" | sed 's/^/    /' >&2 || true
else
  fail "build_env_resources.sh ${ENV_NAME} --offline failed:"
  tail -n 40 "${WORK}/build.log" >&2
  summary
  exit 1
fi

# --- the users' notebook environment on the login host ---------------------------
# The site's conda environment (condaPrefixDir; the spawner's prologue sources
# <condaPrefixDir>/bin/activate) is, here, a venv with batchspawner (its
# batchspawner-singleuser) that sees Debian's jupyterhub-singleuser.
t0=$SECONDS
USER_ENV=${WORK}/user-env
if bash "${REPO_ROOT}/scripts/install-support-packages.sh" --venv "$USER_ENV" --system-site-packages batchspawner \
  >"${WORK}/user-env.log" 2>&1 && [[ -x ${USER_ENV}/bin/batchspawner-singleuser ]]; then
  pass "users' environment on the login host: $(grep -m1 '^batchspawner ' "${WORK}/user-env.log") ($((SECONDS - t0)) s)"
else
  fail "could not make the users' environment ${USER_ENV}: $(tail -n 5 "${WORK}/user-env.log")"
fi

# --- deploy directory: the site's inputs -----------------------------------------
HUB_PORT=$(free_port)
API_PORT=$(free_port)
PROXY_PORT=$(free_port)
cp "$CLIENT_KEY" "${DEPLOY}/ssh_client_key"
cp "${CLIENT_KEY}.pub" "${DEPLOY}/ssh_client_key.pub"
cp "$KNOWN_HOSTS" "${DEPLOY}/ssh_known_hosts"
password=$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
cat >"${DEPLOY}/deploy-configmap.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: deploy-config
data:
  dummyAuthPassword: "${password}"
  sshHostname: "${SSH_HOST}"
  sshPort: "${SSH_PORT}"
  devUsers: "${SANDBOX_USERS}"
  slurmSpawnerWrappersBin: "${WRAPPERS_DIR}"
  condaPrefixDir: "${USER_ENV}"
  jupyterDataDir: "/nonexistent/jupyter_data"
  hubConnectUrl: "http://127.0.0.1:${API_PORT}"
  hubBindUrl: "http://127.0.0.1:${HUB_PORT}"
  hubApiBindUrl: "http://127.0.0.1:${API_PORT}"
  proxyApiUrl: "http://127.0.0.1:${PROXY_PORT}"
immutable: true
YAML
check "manifest rendered" quiet bash "${REPO_ROOT}/environments/build_env_manifest.sh" "$ENV_NAME" "$DEPLOY" \
  --host-network
check "manifest validates" quiet /usr/bin/python3 "${PODS_DIR}/validate_manifest.py" "${DEPLOY}/combined.yaml" \
  "${DEPLOY}/deploy-configmap.yaml" --claims jupyterhub-root-dev-dummyauth-extslurm --loopback-only

# --- up ----------------------------------------------------------------------
t0=$SECONDS
check "the manifest asks for the host's network, publishes no port" \
  bash -c "grep -q '^  hostNetwork: true' '${DEPLOY}/combined.yaml' && ! grep -q hostPort '${DEPLOY}/combined.yaml'"
if bash "${REPO_ROOT}/environments/up.sh" "$ENV_NAME" "$DEPLOY" >"${WORK}/up.log" 2>&1; then
  pass "podman kube play --configmap … combined.yaml (hostNetwork)"
else
  fail "up.sh failed: $(tail -n 20 "${WORK}/up.log")"
  summary
  exit 1
fi
hub_api_ok() { [[ $(http_status "http://127.0.0.1:${HUB_PORT}/hub/api") == 200 ]]; }
check "JupyterHub answers /hub/api on 127.0.0.1:${HUB_PORT}" wait_for 90 hub_api_ok
check "JupyterHub serves /hub/login on 127.0.0.1:${HUB_PORT}" test "$(http_status "http://127.0.0.1:${HUB_PORT}/hub/login")" = 200
check "the Hub API listens on 127.0.0.1:${API_PORT} (hubConnectUrl)" test "$(http_status "http://127.0.0.1:${API_PORT}/hub/api")" = 200
log "pod up and answering in $((SECONDS - t0)) s"
check "the bridge config names the external login host" \
  podman exec "$HUB" grep -qx "port = ${SSH_PORT}" /etc/slurm-ssh-bridge/config.toml

# --- the job round trip, from inside the JupyterHub container -------------------
# read_job_output [--remove] PATH: the job's output file (the sandbox's jobs run on this host).
read_job_output() {
  if [[ $1 == --remove ]]; then rm -f -- "$2"; else cat -- "$1"; fi
}
export READ_JOB_OUTPUT=read_job_output
# podman 4.3 cannot restart one container of a hostNetwork pod (its infra
# container is not running), so restart JupyterHub inside the container:
# SIGHUP to the entrypoint (the bridge daemon stays up).
hub_pid() { podman exec "$HUB" pgrep -f -o 'bin/jupyterhub -f /etc/jupyterhub/' 2>/dev/null || true; }
daemon_pid() { podman exec "$HUB" pgrep -f -o 'slurm-ssh-bridge --config /etc/slurm-ssh-bridge/config.toml serve' 2>/dev/null || true; }
DAEMON_BEFORE=
restart_hub() {
  local before
  before=$(hub_pid)
  DAEMON_BEFORE=$(daemon_pid)
  podman kill --signal HUP "$HUB" >/dev/null || { log "podman kill --signal HUP $HUB failed"; return 1; }
  hub_restarted() { local now; now=$(hub_pid); [[ -n $now && $now != "$before" ]]; }
  wait_for 60 hub_restarted && wait_for 90 hub_api_ok
}
t0=$SECONDS
job_round_trip "$HUB" "$SANDBOX_USER" restart_hub
daemon_after=$(daemon_pid)
if [[ -n $DAEMON_BEFORE && $daemon_after == "$DAEMON_BEFORE" ]]; then
  pass "the bridge daemon (pid ${daemon_after}) kept running through the JupyterHub restart"
else
  fail "the bridge daemon changed across the JupyterHub restart ('${DAEMON_BEFORE}' -> '${daemon_after}')"
fi
log "job round trip (with a hub restart) in $((SECONDS - t0)) s"

# --- a real notebook server, spawned through the hub ------------------------------
# The sandbox's nodes are named node1..N and are all this machine; a site's
# DNS resolves its node names, here the hub container's /etc/hosts does.
check "node1 resolves to 127.0.0.1 in the JupyterHub container (the site's DNS)" \
  podman exec "$HUB" sh -c 'grep -q " node1$" /etc/hosts || echo "127.0.0.1 node1" >>/etc/hosts'
# shellcheck source=/dev/null
. "${PODS_DIR}/notebook.sh"
# shellcheck disable=SC2034  # NB_* are notebook.sh's inputs
NB_ENV=$ENV_NAME NB_HUB="http://127.0.0.1:${HUB_PORT}" NB_USER=${SANDBOX_USER%%.*} NB_ACCOUNT=$SANDBOX_USER
# shellcheck disable=SC2034
NB_PROJECT=${SANDBOX_USER#*.}.brics NB_PASSWORD=$password NB_SQUEUE=sandbox_squeue NB_DIAG=hub_log
# shellcheck disable=SC2034
NB_HOME=$(getent passwd "$NB_ACCOUNT" | cut -d: -f6)
sandbox_squeue() { SLURM_CONF=$SLURM_CONF squeue "$@"; }
hub_log() { podman logs --tail 40 "$HUB"; }
t0=$SECONDS
notebook_round_trip restart_hub
log "notebook server round trip (with a hub restart) in $((SECONDS - t0)) s"
# The job's output file is in the (shared) test account's home on this host.
if [[ $NB_JOB_ID =~ ^[0-9]+$ && -n $NB_HOME ]]; then
  rm -f -- "${NB_HOME}/jupyterhub_slurmspawner_${NB_JOB_ID}.log"
fi

# --- teardown -------------------------------------------------------------------
teardown_and_prove_empty "$ENV_NAME" "$DEPLOY"
summary
