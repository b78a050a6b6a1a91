#!/usr/bin/env bash
# hub.brics: BricsAuthenticator (JWT) + BridgeBricsSlurmSpawner on Debian's
# JupyterHub 3.0, against a private sandbox: a user with two projects picks
# one in the spawn form and the job runs as that <USER>.<PROJECT> account.
# Also loads the five environments' JupyterHub configuration files.
# See tests/hub/test_brics.py and tests/hub/test_environment_configs.py.
#
#   sudo tests/hub/run_brics.sh build/slurm-ssh-bridge
#
# Environment: SSB_HUB_BRICS_VENV, the hub's venv (made or updated when
# needed; default /var/cache/ssb-tests/hub-brics-venv, kept between runs: a
# fresh one takes minutes to build here), SSB_SUPPORT_PACKAGES (see
# scripts/install-support-packages.sh), SSB_HUB_KEEP=1 keeps the work dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BRIDGE=$(realpath "${1:?usage: $0 PATH/TO/slurm-ssh-bridge}")
[[ $(id -u) == 0 ]] || { echo "run_brics.sh: needs root (the sandbox starts sshd, slurmd, sudo rules)" >&2; exit 1; }
[[ -x $BRIDGE ]] || { echo "run_brics.sh: $BRIDGE is not an executable bridge; build it first" >&2; exit 1; }

umask 022
WORK=$(mktemp -d /tmp/ssb-hub-brics.XXXXXX)
chmod 0755 "$WORK"  # the job's user reaches the venv and the sandbox's wrappers below it
cleanup() { if [[ ${SSB_HUB_KEEP:-0} == 1 ]]; then echo "run_brics.sh: kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

# shellcheck source=tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
# A copy: a rebuild during the run changes nothing.
BRIDGE=$(snapshot_binary "$BRIDGE" "$WORK") || exit 1

# The hub's venv (Debian's JupyterHub visible): batchspawner,
# bricsauthenticator, and this checkout's python_shim reinstalled every run,
# built from a private copy (pip writes build/ and *.egg-info into the tree it
# builds, where other runs may be building). World-readable: the job runs
# batchspawner-singleuser from it as the notebook user. One run at a time.
VENV=${SSB_HUB_BRICS_VENV:-/var/cache/ssb-tests/hub-brics-venv}
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock -w 300 9 || { echo "run_brics.sh: $VENV.lock still held after 300 s (another hub.brics run?)" >&2; exit 1; }
t0=$SECONDS
mkdir "$WORK/python_shim"
cp -r "$ROOT/python_shim/pyproject.toml" "$ROOT/python_shim/README.md" "$ROOT/python_shim/src" "$WORK/python_shim/"
rm -rf "$WORK"/python_shim/src/*.egg-info
if ! "$ROOT/scripts/install-support-packages.sh" --venv "$VENV" --system-site-packages \
    batchspawner bricsauthenticator >"$WORK/venv.log" 2>&1 ||
    ! "$VENV/bin/pip" install -q --force-reinstall --no-build-isolation --no-index --no-deps \
        "$WORK/python_shim" >>"$WORK/venv.log" 2>&1; then
    echo "run_brics.sh: could not make the hub's venv $VENV (batchspawner, bricsauthenticator, python_shim):" >&2
    tail -n 30 "$WORK/venv.log" >&2
    exit 1
fi
chmod -R go+rX "$VENV"
echo "run_brics.sh: venv $VENV ready in $((SECONDS - t0)) s"
grep -i "requires\|unmet\|not installed" "$WORK/venv.log" || true  # bricsauthenticator's declared needs

cd "$ROOT"
export PYTHONDONTWRITEBYTECODE=1
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$HERE/test_environment_configs.py"
"$VENV/bin/python" "$HERE/test_brics.py" --bridge "$BRIDGE" --venv "$VENV" --work "$WORK"
