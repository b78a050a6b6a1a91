#!/bin/bash
# Pod test (b): build the offline images, bring up dev_dummyauth (JupyterHub +
# Slurm in one pod) with podman kube play, check the hub answers on its
# published 127.0.0.1 port, run a real Slurm job through the bridge from
# inside the JupyterHub container (submit → RUNNING <node> → hub restart →
# still RUNNING → cancel → gone), then a real notebook server as a user gets
# it (tests/pods/notebook.sh: log in, spawn through the hub, kernel 6*7,
# screenshot, hub restart, stop), tear down with --force and prove that no
# pod, container, volume or secret of the environment is left.
#
# Refuses to run when dev_dummyauth resources exist already (they are not the
# test's to remove). Images are kept as a build cache.
# Environment: SSB_POD_TEST_SKIP_BUILD=1 reuses the images already built.
set -euo pipefail
export TEST_NAME=dev_dummyauth
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=/dev/null
. "${PODS_DIR}/roundtrip.sh"

ENV_NAME=dev_dummyauth
POD=jupyterhub-slurm-dev-dummyauth
HUB=${POD}-jupyterhub
SLURM=${POD}-slurm
require_root_podman || { fail "root and podman are required"; summary; exit 1; }

existing=$(env_leftovers "$ENV_NAME")
if [[ -n $existing ]]; then
  fail "dev_dummyauth resources exist already, not touching them:"$'\n'"${existing}"
  summary
  exit 1
fi

WORK=$(mktemp -d /tmp/ssb-pods-dummyauth.XXXXXX)
DEPLOY=${WORK}/deploy
mkdir -p "$DEPLOY"
cleanup() {
  local status=$?
  if [[ -n $(env_leftovers "$ENV_NAME") ]]; then
    if ((status != 0)) || ((FAILED > 0)); then
      log "collecting logs before cleanup"
      podman logs --tail 40 "$HUB" >&2 2>&1 || true
      podman logs --tail 40 "$SLURM" >&2 2>&1 || true
    fi
    bash "${REPO_ROOT}/environments/down.sh" "$ENV_NAME" "$DEPLOY" --force >/dev/null 2>&1 || true
  fi
  rm -rf -- "$WORK"
}
trap cleanup EXIT

# --- build -------------------------------------------------------------------
t0=$SECONDS
build_args=(--offline)
[[ ${SSB_POD_TEST_SKIP_BUILD:-0} == 1 ]] && build_args+=(--skip-images)
if bash "${REPO_ROOT}/environments/build_env_resources.sh" "$ENV_NAME" "${build_args[@]}" >"${WORK}/build.log" 2>&1; then
  pass "offline images and volumes built in $((SECONDS - t0)) s"
  grep -E 'NOTICE|built localhost|offline base images ready' "${WORK}/build.log" | sed 's/^/    /' >&2 || true
else
  fail "build_env_resources.sh ${ENV_NAME} --offline failed:"
  tail -n 40 "${WORK}/build.log" >&2
  summary
  exit 1
fi
check "the Slurm image holds no SSH host key" \
  bash -c "! podman run --rm --entrypoint /bin/sh localhost/ssb-slurm:dev-latest -c 'ls /etc/ssh' | grep -q ssh_host_"
check "the JupyterHub image holds no SSH private key" \
  bash -c "! podman run --rm --entrypoint /bin/sh localhost/ssb-jupyterhub:dev-latest -c 'grep -rls \"PRIVATE KEY\" /etc /run /srv /var/lib/ssb 2>/dev/null' | grep -q ."

# --- manifest ----------------------------------------------------------------
HUB_PORT=$(free_port)
cp "${REPO_ROOT}/environments/${ENV_NAME}/deploy-configmap.example.yaml" "${DEPLOY}/deploy-configmap.yaml"
password=$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
sed -i -e "s|^  dummyAuthPassword: .*|  dummyAuthPassword: \"${password}\"|" \
  -e 's|^  devUsers: .*|  devUsers: "alice.proj1 alice.proj2 bob.proj1"|' "${DEPLOY}/deploy-configmap.yaml"
check "manifest rendered (hub on 127.0.0.1:${HUB_PORT})" quiet \
  bash "${REPO_ROOT}/environments/build_env_manifest.sh" "$ENV_NAME" "$DEPLOY" --hub-port "$HUB_PORT"
check "manifest validates" quiet /usr/bin/python3 "${PODS_DIR}/validate_manifest.py" "${DEPLOY}/combined.yaml" \
  "${DEPLOY}/deploy-configmap.yaml" --claims jupyterhub-root-dev-dummyauth,slurm-root-dev-dummyauth --loopback-only

# --- up ----------------------------------------------------------------------
t0=$SECONDS
if bash "${REPO_ROOT}/environments/up.sh" "$ENV_NAME" "$DEPLOY" >"${WORK}/up.log" 2>&1; then
  pass "podman kube play --configmap … combined.yaml"
else
  fail "up.sh failed: $(tail -n 20 "${WORK}/up.log")"
  summary
  exit 1
fi
running() { [[ $(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }
slurm_ready() { podman exec "$SLURM" sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }
hub_api_ok() { [[ $(http_status "http://127.0.0.1:${HUB_PORT}/hub/api") == 200 ]]; }
check "Slurm container running, node up (munge, slurmctld, slurmd, sshd)" wait_for 90 slurm_ready
check "JupyterHub answers /hub/api on 127.0.0.1:${HUB_PORT}" wait_for 90 hub_api_ok
check "JupyterHub serves /hub/login on 127.0.0.1:${HUB_PORT}" test "$(http_status "http://127.0.0.1:${HUB_PORT}/hub/login")" = 200
log "pod up and answering in $((SECONDS - t0)) s"
check "status.sh reports the pod running" quiet bash "${REPO_ROOT}/environments/status.sh" "$ENV_NAME"
check "the hub container has the bridge config rendered from the volume" \
  podman exec "$HUB" grep -qx 'host = "localhost"' /etc/slurm-ssh-bridge/config.toml
check "the bridge's private key is installed with mode 0600" \
  test "$(podman exec "$HUB" stat -c %a /run/slurm-ssh-bridge/keys/ssh_client_key)" = 600

# --- the job round trip, from inside the JupyterHub container -------------------
# read_job_output [--remove] PATH: the job's output file, in the Slurm container.
read_job_output() {
  if [[ $1 == --remove ]]; then podman exec "$SLURM" rm -f -- "$2"; else podman exec "$SLURM" cat -- "$1"; fi
}
export READ_JOB_OUTPUT=read_job_output
restart_hub() {
  podman restart -t 10 "$HUB" >/dev/null || { log "podman restart $HUB failed"; return 1; }
  wait_for 90 hub_api_ok
}
t0=$SECONDS
job_round_trip "$HUB" alice.proj1 restart_hub
log "job round trip (with a hub restart) in $((SECONDS - t0)) s"

# --- a real notebook server, spawned through the hub ------------------------------
# shellcheck source=/dev/null
. "${PODS_DIR}/notebook.sh"
slurm_squeue() { podman exec "$SLURM" squeue "$@"; }
hub_log() { podman logs --tail 40 "$HUB"; }
# shellcheck disable=SC2034  # NB_* are notebook.sh's inputs
NB_ENV=$ENV_NAME NB_HUB="http://127.0.0.1:${HUB_PORT}" NB_USER=alice NB_ACCOUNT=alice.proj1
# shellcheck disable=SC2034
NB_PROJECT=proj1.brics NB_PASSWORD=$password NB_SQUEUE=slurm_squeue NB_DIAG=hub_log
# shellcheck disable=SC2034
NB_HOME=$(podman exec "$SLURM" getent passwd "$NB_ACCOUNT" | cut -d: -f6)
t0=$SECONDS
notebook_round_trip restart_hub
log "notebook server round trip (with a hub restart) in $((SECONDS - t0)) s"

# --- teardown -------------------------------------------------------------------
teardown_and_prove_empty "$ENV_NAME" "$DEPLOY"
summary
