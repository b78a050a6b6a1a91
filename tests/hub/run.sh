#!/usr/bin/env bash
# hub.notebook: Debian's JupyterHub spawns a real notebook server as a Slurm
# job through the bridge (daemon and direct) and through batchspawner's stock
# fresh-ssh prefix; a user logs in, starts it, runs 6*7 in a kernel through
# the proxy, survives a hub restart, stops it. See tests/hub/notebook_test.py.
#
#   sudo tests/hub/run.sh build/slurm-ssh-bridge [--paths daemon,direct,stock-ssh]
#
# Environment: SSB_HUB_VENV reuses a venv (made if missing; default: a fresh
# one in the private work dir), SSB_SUPPORT_PACKAGES (see
# scripts/install-support-packages.sh), SSB_HUB_KEEP=1 keeps the work dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BRIDGE=$(realpath "${1:?usage: $0 PATH/TO/slurm-ssh-bridge [--paths ...]}")
shift
[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (the sandbox starts sshd, slurmd, sudo rules)" >&2; exit 1; }
[[ -x $BRIDGE ]] || { echo "run.sh: $BRIDGE is not an executable bridge; build it first" >&2; exit 1; }

umask 022
WORK=$(mktemp -d /tmp/ssb-hub.XXXXXX)
chmod 0755 "$WORK"  # the job's user reaches the venv and the sandbox's wrappers below it
cleanup() {
    if [[ ${SSB_HUB_KEEP:-0} == 1 ]]; then echo "run.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

VENV=${SSB_HUB_VENV:-$WORK/venv}
t0=$SECONDS
if ! "$ROOT/scripts/install-support-packages.sh" --venv "$VENV" --system-site-packages batchspawner \
    >"$WORK/venv.log" 2>&1 ||
    ! "$VENV/bin/pip" install -q --no-build-isolation --no-index --no-deps "$ROOT/python_shim" \
        >>"$WORK/venv.log" 2>&1; then
    echo "run.sh: could not make the hub's venv $VENV (batchspawner + python_shim):" >&2
    tail -n 30 "$WORK/venv.log" >&2
    exit 1
fi
echo "run.sh: venv $VENV ready in $((SECONDS - t0)) s"

cd "$ROOT"
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" "$HERE/notebook_test.py" \
    --bridge "$BRIDGE" --venv "$VENV" --work "$WORK" "$@"
