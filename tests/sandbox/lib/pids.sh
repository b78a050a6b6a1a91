# shellcheck shell=bash
# tests/sandbox/lib/pids.sh - part of tests/sandbox/sandbox.sh (sourced by it):
# what a sandbox is on disk (its state file, the PID files) and how its
# processes are found and stopped: by recorded PID and start time, and
# through the sandbox's own cgroup, never by name.
# SC2034: the variables set here are read by the other parts (shellcheck
# also lints this file alone, without them).
# shellcheck disable=SC2034

# Everything that describes one sandbox lives in DIR/state/sandbox.conf
# (written once by `up`), the PIDs in DIR/pids/<process>.pid.
load_state() {
    DIR=$(abspath "$1")
    [[ -f $DIR/$MARKER_NAME && -f $DIR/state/sandbox.conf ]] ||
        die "$DIR is not a sandbox directory (no $MARKER_NAME / state/sandbox.conf)"
    # shellcheck source=/dev/null
    source "$DIR/state/sandbox.conf"
    SLURM_CONF_FILE=$DIR/slurm.conf
    SUDOERS_FILE=$SUDOERS_D/ssb-sandbox-$SB_ID
    SB_WRAPPERS_BIN=${SB_WRAPPERS_BIN:-$DIR/wrappers/bin}
    IFS=, read -r -a NODE_LIST <<<"$SB_NODES"
    IFS=, read -r -a SLURMD_PORT_LIST <<<"$SB_SLURMD_PORTS"
}

# The processes of a sandbox, by the name of their PID file.
process_names() {
    local node
    echo munged slurmctld
    for node in "${NODE_LIST[@]}"; do
        echo "slurmd-$node"
    done
    echo sshd
}

pidfile() { echo "$DIR/pids/$1.pid"; }

# Start time of a process (clock ticks since boot, /proc/PID/stat field 22):
# with the PID it identifies the process even if the PID is reused later.
proc_starttime() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # Fields after "(comm) ": state is field 3, starttime field 22.
    read -r -a fields <<<"${stat##*) }"
    echo "${fields[19]}"
}

# Each PID file holds "PID STARTTIME".
recorded_pid() {
    local f pid _start
    f=$(pidfile "$1")
    [[ -s $f ]] || return 0
    read -r pid _start <"$f"
    echo "$pid"
}

record_pid() {
    local start
    start=$(proc_starttime "$2") || start=0
    echo "$2 $start" >"$(pidfile "$1")"
}

pid_alive() {
    local pid=$1
    [[ -n $pid && -d /proc/$pid ]] || return 1
    # A zombie is not alive.
    local state
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# The recorded process NAME is alive and is still the process we started.
process_running() {
    local f pid start
    f=$(pidfile "$1")
    [[ -s $f ]] || return 1
    read -r pid start <"$f"
    pid_alive "$pid" && [[ $(proc_starttime "$pid") == "$start" ]]
}

# Every process this script starts is put into the sandbox's own cgroup
# (SB_CGROUP, chosen at `up`), and everything they start stays there: sshd
# sessions, slurmstepd and the job processes, even after being re-parented
# to init. So the cgroup lists exactly the sandbox's processes. Without a
# writable cgroup hierarchy, fall back to the environment: the started
# processes carry SSB_SANDBOX_MARK=<id> (lost by processes that rewrite their
# title, like sshd and slurmstepd), jobs carry SLURM_CLUSTER_NAME=<cluster>.
sandbox_pids() {
    local pid f
    if [[ -n $SB_CGROUP && -f $SB_CGROUP/cgroup.procs ]]; then
        while read -r pid; do
            [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
            pid_alive "$pid" && echo "$pid"
        done <"$SB_CGROUP/cgroup.procs"
        return 0
    fi
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}
        pid=${pid%/environ}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        if grep -qzxF -e "SSB_SANDBOX_MARK=$SB_ID" -e "SLURM_CLUSTER_NAME=$SB_CLUSTER" "$f" 2>/dev/null; then
            pid_alive "$pid" && echo "$pid"
        fi
    done
    return 0
}

# choose_cgroup: create the sandbox's cgroup in the first writable hierarchy
# (cgroup v1 "pids", the v2 hierarchy of a hybrid setup, or pure v2); print
# its path, or nothing.
choose_cgroup() {
    local base
    for base in /sys/fs/cgroup/pids /sys/fs/cgroup/unified /sys/fs/cgroup; do
        [[ -f $base/cgroup.procs && -w $base/cgroup.procs ]] || continue
        if mkdir -p "$base/ssb-sandbox/$SB_ID" 2>/dev/null &&
            [[ -f $base/ssb-sandbox/$SB_ID/cgroup.procs ]]; then
            echo "$base/ssb-sandbox/$SB_ID"
            return 0
        fi
    done
    return 0
}

remove_cgroup() {
    [[ -n $SB_CGROUP && -d $SB_CGROUP ]] || return 0
    rmdir "$SB_CGROUP" 2>/dev/null || say "warning: could not remove cgroup $SB_CGROUP (processes left?)"
    rmdir "${SB_CGROUP%/*}" 2>/dev/null || true
}

descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

# signal_and_wait SIGNAL PID... : signal the PIDs, wait until they are gone,
# then SIGKILL what is left.
signal_and_wait() {
    local sig=$1
    shift
    (( $# > 0 )) || return 0
    kill -s "$sig" "$@" 2>/dev/null || true
    local pid
    all_gone() {
        for pid in "$@"; do
            pid_alive "$pid" && return 1
        done
        return 0
    }
    if ! wait_for "$WAIT_STOP" all_gone "$@"; then
        say "still running after SIG$sig: $*; sending SIGKILL"
        kill -s KILL "$@" 2>/dev/null || true
        wait_for 5 all_gone "$@" || say "warning: could not stop: $*"
    fi
}
