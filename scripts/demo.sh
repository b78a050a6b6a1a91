#!/usr/bin/env bash
# The main job, end to end, on a fresh Debian 12 machine: installs what is
# missing, builds the bridge, brings up a private Slurm login host on
# loopback (real sshd + sudo + munge + slurmctld + slurmd, see
# tests/sandbox/sandbox.sh), then
#   1. submits, queries and cancels a real job through slurm-ssh-bridge
#      exactly as batchspawner would;
#   2. does what a user does: Debian's JupyterHub with BridgeSlurmSpawner and
#      the bridge daemon as a managed service, log in through the login form,
#      start a server (a real jupyterhub-singleuser as a Slurm job), run 6*7
#      in a kernel through the hub's proxy, take a screenshot of the page in
#      headless Chromium, restart the hub under the running server, stop it
#      (tests/hub/run.sh, daemon path);
# and tears it all down again.
#
#   sudo scripts/demo.sh            (KEEP=1 leaves the sandbox running)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SANDBOX=$ROOT/tests/sandbox/sandbox.sh

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

[[ ${SSB_SKIP_DEPS:-0} == 1 ]] || "$ROOT/scripts/install-deps.sh"

step "build"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" | tail -n 1
BRIDGE=$BUILD_DIR/slurm-ssh-bridge
run "$BRIDGE" --version

DIR=$(mktemp -d /tmp/ssb-demo.XXXXXX)
chmod 0755 "$DIR"
SB=$DIR/sandbox
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "sandbox left running: source $SB/sandbox.env; stop it with: $SANDBOX down $SB"
        return
    fi
    step "tear down"
    bash "$SANDBOX" down "$SB" --purge || true
    rm -rf "$DIR"
}
trap cleanup EXIT

step "bring up a private Slurm login host (sshd + sudo + munge + slurmctld + slurmd on 127.0.0.1)"
bash "$SANDBOX" up "$SB"
# shellcheck source=/dev/null
source "$SB/sandbox.env"
export SLURM_CONF
CONF=$SB/bridge.toml
echo "bridge configuration ($CONF):"
sed 's/^/    /' "$CONF"

step "diagnose: slurm-ssh-bridge check --user alice.proj1"
run "$BRIDGE" --config "$CONF" check --user alice.proj1

step "submit a notebook-like job as alice.proj1 (API token forwarded, never on a command line)"
cat >"$DIR/job.sh" <<'SCRIPT'
#!/bin/bash
#SBATCH --job-name=demo-notebook
#SBATCH --output=/dev/null
#SBATCH --time=5
test -n "$JUPYTERHUB_API_TOKEN" || exit 3
sleep 600
SCRIPT
export JUPYTERHUB_API_TOKEN=demo-token-not-shown
printf '$ %s < job.sh\n' "$BRIDGE --config $CONF --user alice.proj1 submit"
JOB_ID=$("$BRIDGE" --config "$CONF" --user alice.proj1 submit <"$DIR/job.sh")
unset JUPYTERHUB_API_TOKEN
echo "$JOB_ID"

step "query until RUNNING (what batchspawner polls)"
for _ in $(seq 1 30); do
    state=$("$BRIDGE" --config "$CONF" --user alice.proj1 query "$JOB_ID")
    echo "query $JOB_ID -> $state"
    [[ $state == RUNNING* ]] && break
    sleep 1
done
[[ $state == RUNNING* ]] || { echo "job $JOB_ID did not start" >&2; exit 1; }
run "$BRIDGE" --config "$CONF" --json --user alice.proj1 query "$JOB_ID"

step "cancel"
run "$BRIDGE" --config "$CONF" --user alice.proj1 cancel "$JOB_ID"
for _ in $(seq 1 20); do
    state=$("$BRIDGE" --config "$CONF" --user alice.proj1 query "$JOB_ID" 2>&1 || true)
    [[ $state =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING) ]] || break
    sleep 0.5
done
echo "query $JOB_ID -> '${state}' (no active state: batchspawner reads the job as gone)"
[[ ! $state =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING) ]] || { echo "job $JOB_ID still active" >&2; exit 1; }

step "a user's session: log in to JupyterHub, start a notebook server, run a kernel, restart the hub, stop"
SHOT=$BUILD_DIR/artifacts/demo-notebook.png
bash "$ROOT/tests/hub/run.sh" "$BRIDGE" --paths daemon --repeats 1 --screenshot "$SHOT"
echo "what the user saw: $SHOT"

step "done: submit -> query (RUNNING on its node) -> cancel -> gone, through slurm-ssh-bridge;"
echo "     and a notebook server spawned through JupyterHub, used, kept across a hub restart, stopped"
