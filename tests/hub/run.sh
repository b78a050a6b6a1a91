#!/usr/bin/env bash
# hub.notebook: Debian's JupyterHub spawns a real notebook server as a Slurm
# job through the bridge (daemon and direct) and through batchspawner's stock
# fresh-ssh prefix; a user logs in, starts it, runs 6*7 in a kernel through
# the proxy, survives a hub restart, stops it. See tests/hub/notebook_test.py.
#
#   sudo tests/hub/run.sh build/slurm-ssh-bridge [--paths daemon,direct,stock-ssh]
#   sudo tests/hub/run.sh build/slurm-ssh-bridge --test slurm_messages_test.py [its options]
#   sudo tests/hub/run.sh build/slurm-ssh-bridge --test orphan_sweep_test.py [--grace S] [--interval S]
#
# Environment: SSB_HUB_VENV (default /var/cache/ssb-tests/hub-venv, made if
# missing), SSB_SUPPORT_PACKAGES (see
# scripts/install-support-packages.sh), SSB_HUB_KEEP=1 keeps the work dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BRIDGE=$(realpath "${1:?usage: $0 PATH/TO/slurm-ssh-bridge [--test MODULE.py] [--paths ...]}")
shift
TEST=notebook_test.py  # the hub test module (tests/hub/); the rest of the arguments are its own
if [[ ${1:-} == --test ]]; then
    TEST=${2:?--test needs a module of tests/hub}
    shift 2
fi
[[ -f $HERE/$TEST ]] || { echo "run.sh: no test module $HERE/$TEST" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (the sandbox starts sshd, slurmd, sudo rules)" >&2; exit 1; }
[[ -x $BRIDGE ]] || { echo "run.sh: $BRIDGE is not an executable bridge; build it first" >&2; exit 1; }

umask 022
WORK=$(mktemp -d /tmp/ssb-hub.XXXXXX)
chmod 0755 "$WORK"  # the job's user reaches the venv and the sandbox's wrappers below it
cleanup() {
    if [[ ${SSB_HUB_KEEP:-0} == 1 ]]; then echo "run.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# shellcheck source=tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
# A copy: a rebuild during the run changes nothing (the hub runs it for minutes).
BRIDGE=$(snapshot_binary "$BRIDGE" "$WORK") || exit 1

# The hub's venv (Debian's JupyterHub visible): batchspawner, and this
# checkout's python_shim reinstalled every run. World-readable: the job runs
# batchspawner-singleuser from it as the notebook user. One run at a time.
VENV=${SSB_HUB_VENV:-/var/cache/ssb-tests/hub-venv}
mkdir -p "$(dirname "$VENV")"
t0=$SECONDS
exec 9>"$VENV.lock"
flock -w 300 9 || { echo "run.sh: $VENV.lock still held after 300 s (another hub test?)" >&2; exit 1; }
# Built from a private copy: pip builds in the source tree (build/,
# *.egg-info), which other test runs may be building in at the same time.
mkdir "$WORK/python_shim"
cp -r "$ROOT/python_shim/pyproject.toml" "$ROOT/python_shim/README.md" "$ROOT/python_shim/src" "$WORK/python_shim/"
rm -rf "$WORK"/python_shim/src/*.egg-info
if ! "$ROOT/scripts/install-support-packages.sh" --venv "$VENV" --system-site-packages batchspawner \
    >"$WORK/venv.log" 2>&1 ||
    ! "$VENV/bin/pip" install -q --no-build-isolation --no-index --no-deps --force-reinstall \
        "$WORK/python_shim" >>"$WORK/venv.log" 2>&1 ||
    ! "$VENV/bin/python" -c 'import batchspawner, slurm_ssh_bridge.spawner' >>"$WORK/venv.log" 2>&1; then
    echo "run.sh: could not make the hub's venv $VENV (batchspawner + python_shim):" >&2
    tail -n 30 "$WORK/venv.log" >&2
    exit 1
fi
chmod -R go+rX "$VENV"
echo "run.sh: venv $VENV ready in $((SECONDS - t0)) s"

cd "$ROOT"
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" "$HERE/$TEST" \
    --bridge "$BRIDGE" --venv "$VENV" --work "$WORK" "$@"
