#!/usr/bin/env bash
# Runs the python_shim tests (Debian's /usr/bin/python3 + pytest) against the
# real bridge and a private sandbox login host, the way CI does.
#
#   sudo tests/python/run.sh build/slurm-ssh-bridge [pytest args...]
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

bash "$ROOT/tests/sandbox/sandbox.sh" up "$SB" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; exit 1; }
cd "$ROOT"
SSB_BRIDGE=$BRIDGE SSB_SANDBOX_DIR=$SB PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 -m pytest -p no:cacheprovider python_shim/tests "$@"
