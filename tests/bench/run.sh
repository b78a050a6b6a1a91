#!/usr/bin/env bash
# tests/bench/run.sh - the benchmark of issue 6: slurm-ssh-bridge against a
# fresh ssh per call and OpenSSH ControlMaster, in one run, against a real
# sshd + sudo + munge + Slurm sandbox on loopback (tests/sandbox/sandbox.sh,
# sshd with its default MaxStartups and MaxSessions).
#
#   sudo tests/bench/run.sh [--bridge PATH] [--json-out FILE] [--keep] [bench.py options...]
#   sudo tests/bench/run.sh --thousand-users [--smoke] [--bulk-users N] [--bridge PATH] [--json-out FILE] [--keep] [thousand.py options...]
#
# Defaults: --bridge build/slurm-ssh-bridge, --json-out build/bench.json
# (build/bench-thousand.json). Everything else goes to tests/bench/bench.py
# (--help lists the call counts, paths and concurrency levels), or with
# --thousand-users to tests/bench/thousand.py (issue 13: per-user against
# coalesced status mode at 100/300/1,000 users and a spawn storm, on a
# sandbox with --bulk-users and 64 CPUs; --smoke: the short CI variant).
# Prints Markdown on stdout; progress goes to stderr. --keep leaves the work
# directory (logs) in place. See docs/BENCHMARK.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SANDBOX=$ROOT/tests/sandbox/sandbox.sh
PYTHON=/usr/bin/python3

BRIDGE=$ROOT/build/slurm-ssh-bridge
JSON_OUT=""
KEEP=no
ENTRY=bench.py
BULK_USERS=1000
UP_OPTS=()
PASS=()
while (($# > 0)); do
    case $1 in
        --bridge) BRIDGE=${2:?--bridge needs a path}; shift 2 ;;
        --bridge=*) BRIDGE=${1#*=}; shift ;;
        --json-out) JSON_OUT=${2:?--json-out needs a path}; shift 2 ;;
        --json-out=*) JSON_OUT=${1#*=}; shift ;;
        --keep) KEEP=yes; shift ;;
        --thousand-users) ENTRY=thousand.py; shift ;;
        --smoke) BULK_USERS=20; PASS+=("$1"); shift ;;
        --bulk-users) BULK_USERS=${2:?--bulk-users needs a number}; shift 2 ;;
        -h | --help)
            sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exec "$PYTHON" "$HERE/$ENTRY" --help
            ;;
        *) PASS+=("$1"); shift ;;
    esac
done

die() {
    echo "run.sh: $*" >&2
    exit 1
}
((EUID == 0)) || die "must run as root (the sandbox starts sshd, munged and Slurm, and edits sudoers)"
[[ -x $BRIDGE ]] || die "no slurm-ssh-bridge at $BRIDGE (build it: cmake --build build)"
[[ -x $PYTHON ]] || die "$PYTHON is missing"
for tool in ssh sudo squeue scancel; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh)"
done
if [[ $ENTRY == thousand.py ]]; then
    # One account and one job per simulated user; 64 CPUs on the node so the
    # 1-in-20 running jobs (50 at 1,000 users) all start.
    UP_OPTS=(--bulk-users "$BULK_USERS" --cpus 64)
    JSON_OUT=${JSON_OUT:-$ROOT/build/bench-thousand.json}
else
    [[ " ${PASS[*]} " != *" --smoke "* ]] || die "--smoke is an option of --thousand-users"
fi
JSON_OUT=$(realpath -m "${JSON_OUT:-$ROOT/build/bench.json}")

WORK=$(mktemp -d /tmp/ssb-bench.XXXXXX)
chmod 0755 "$WORK" # the sandbox's users traverse it to reach the wrappers
SB=$WORK/sb

# Stops only what this run started: the daemon by its recorded PID, the
# ControlMaster through its socket, the sandbox (which cancels its jobs and
# stops its processes by PID).
cleanup() {
    local rc=$? pid
    if [[ -f $WORK/daemon.pid ]]; then
        pid=$(<"$WORK/daemon.pid")
        if [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] &&
            { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$WORK/slurm-ssh-bridge --config $SB/bridge.toml serve"; then
            kill "$pid" 2>/dev/null || true
            for _ in {1..50}; do
                [[ -d /proc/$pid ]] || break
                sleep 0.1
            done
            [[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null
        fi
    fi
    for sock in "$WORK"/mux-*; do
        [[ -S $sock ]] || continue
        ssh -F /dev/null -o ControlPath="$sock" -O exit dummy >/dev/null 2>&1 || true
    done
    bash "$SANDBOX" down "$SB" >/dev/null 2>&1 || echo "run.sh: sandbox down failed; see $SB" >&2
    if [[ $KEEP == yes || $rc -ne 0 ]]; then
        echo "run.sh: work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private copy: a rebuild during the run cannot change what is measured.
cp "$BRIDGE" "$WORK/slurm-ssh-bridge"

echo "run.sh: $(uptime)" >&2
bash "$SANDBOX" up "$SB" "${UP_OPTS[@]}" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; die "sandbox up failed"; }

"$PYTHON" "$HERE/$ENTRY" --sandbox-env "$SB/sandbox.env" --bridge "$WORK/slurm-ssh-bridge" \
    --work "$WORK" --json-out "$JSON_OUT" "${PASS[@]}"
echo "run.sh: $(uptime)" >&2
