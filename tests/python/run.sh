#!/usr/bin/env bash
# Runs the python_shim tests against the real bridge, a private sandbox login
# host and the real batchspawner and bricsauthenticator, the way CI does:
# pytest runs with the python of a venv (Debian's /usr/bin/python3,
# --system-site-packages, so Debian's jupyterhub 3.0 and pytest are visible)
# into which scripts/install-support-packages.sh installs those two packages
# (from SSB_SUPPORT_PACKAGES, default ../shared/vendor).
#
#   sudo tests/python/run.sh build/slurm-ssh-bridge [pytest args...]
#
# Environment: SSB_PYTHON_VENV, the venv (made or updated when needed;
# default /var/cache/ssb-tests/python-venv, kept between runs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BRIDGE=$(realpath "${1:?usage: $0 PATH/TO/slurm-ssh-bridge [pytest args...]}")
shift
WORK=$(mktemp -d /tmp/ssb-python.XXXXXX)
chmod 0755 "$WORK"  # the sandbox's users traverse it to reach the wrappers
SB=$WORK/sb
cleanup() {
    bash "$ROOT/tests/sandbox/sandbox.sh" down "$SB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

VENV=${SSB_PYTHON_VENV:-/var/cache/ssb-tests/python-venv}
if ! "$ROOT/scripts/install-support-packages.sh" --venv "$VENV" --system-site-packages \
    batchspawner bricsauthenticator >"$WORK/venv.log" 2>&1; then
    cat "$WORK/venv.log" >&2
    echo "run.sh: could not install batchspawner and bricsauthenticator into $VENV (output above)" >&2
    exit 1
fi
grep -v '^install-support-packages.sh: note' "$WORK/venv.log" | sed 's/^/run.sh: /'

bash "$ROOT/tests/sandbox/sandbox.sh" up "$SB" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; exit 1; }
cd "$ROOT"
SSB_BRIDGE=$BRIDGE SSB_SANDBOX_DIR=$SB PYTHONDONTWRITEBYTECODE=1 \
    "$VENV/bin/python" -m pytest -p no:cacheprovider python_shim/tests "$@"
