# shellcheck shell=bash
# tests/sandbox/lib/services.sh - part of tests/sandbox/sandbox.sh (sourced by it):
# starting the sandbox's daemons (munged, slurmctld, slurmd per node, sshd)
# with a clean environment inside the sandbox's cgroup, waiting (bounded)
# until each answers, and stopping them again.

# ---------------------------------------------------------- process start

# launch NAME LOG CMD... : start CMD in its own session with a clean
# environment (PATH, SLURM_CONF, the sandbox mark), stdin from /dev/null,
# output appended to LOG, no other inherited file descriptors; record its PID.
launch() {
    local name=$1 log=$2
    shift 2
    (
        if [[ -n $SB_CGROUP ]]; then
            echo "$BASHPID" >"$SB_CGROUP/cgroup.procs"
        fi
        for fdpath in /proc/"$BASHPID"/fd/*; do
            fd=${fdpath##*/}
            if (( fd > 2 )); then
                exec {fd}>&-
            fi
        done
        exec setsid env -i PATH="$DAEMON_PATH" LANG=C.UTF-8 \
            SLURM_CONF="$SLURM_CONF_FILE" SSB_SANDBOX_MARK="$SB_ID" "$@"
    ) </dev/null >>"$log" 2>&1 &
    local pid=$!
    record_pid "$name" "$pid"
    LAUNCHED_PID=$pid
}

# Run a Slurm client command against this sandbox's cluster, bounded in time.
slurm_cmd() {
    SLURM_CONF=$SLURM_CONF_FILE timeout 10 "$@"
}

munge_ok() {
    [[ -S $DIR/munge/munge.socket ]] &&
        munge -n -S "$DIR/munge/munge.socket" 2>/dev/null |
        unmunge -S "$DIR/munge/munge.socket" >/dev/null 2>&1
}

slurmctld_ok() {
    slurm_cmd scontrol ping 2>/dev/null | grep -q 'is UP'
}

# The node answers: slurmd listens on its port and slurmctld shows it in a
# usable state (no "*" = not responding, not down/unknown/drained).
node_ok() {
    local node=$1 port=$2 want=${3:-any} state
    [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]] || return 1
    state=$(slurm_cmd sinfo -h -N -n "$node" -o '%t' 2>/dev/null | head -n 1) || return 1
    if [[ $want == idle ]]; then
        [[ $state == idle ]]
    else
        [[ $state =~ ^(idle|mix|alloc|comp)$ ]]
    fi
}

ssh_ok() {
    timeout 10 ssh -F /dev/null -i "$DIR/client_key" \
        -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=3 \
        -o UserKnownHostsFile="$DIR/known_hosts" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o LogLevel=ERROR \
        -p "$SB_SSH_PORT" "$SSH_USER@127.0.0.1" true </dev/null >/dev/null 2>&1
}

# wait_ready NAME PID TIMEOUT LOG CHECK... : wait for CHECK, failing early if
# the process exits; on failure print the log tail and fail.
wait_ready() {
    local name=$1 pid=$2 timeout_s=$3 log=$4
    shift 4
    ready_or_dead() {
        "$@" && return 0
        pid_alive "$pid" || return 0
        return 1
    }
    if wait_for "$timeout_s" ready_or_dead "$@" && pid_alive "$pid"; then
        say "$name ready (pid $pid)"
        return 0
    fi
    if pid_alive "$pid"; then
        echo "$PROG: error: $name (pid $pid) did not become ready within ${timeout_s}s" >&2
    else
        echo "$PROG: error: $name exited during start-up" >&2
    fi
    tail_log "$log"
    return 1
}

start_munged() {
    # In the foreground munged logs to stderr (--log-file is not used).
    local log=$DIR/log/munged.out
    launch munged "$log" \
        setpriv --reuid=munge --regid=munge --init-groups \
        /usr/sbin/munged --foreground --num-threads=4 \
        --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --seed-file="$DIR/munge/munged.seed"
    wait_ready munged "$LAUNCHED_PID" "$WAIT_MUNGED" "$log" munge_ok
}

start_slurmctld() {
    local log=$DIR/log/slurmctld.log
    launch slurmctld "$DIR/log/slurmctld.out" /usr/sbin/slurmctld -D
    wait_ready slurmctld "$LAUNCHED_PID" "$WAIT_SLURMCTLD" "$log" slurmctld_ok ||
        { tail_log "$DIR/log/slurmctld.out"; return 1; }
}

# start_slurmd [idle]: one slurmd per node.
start_slurmd() {
    local want=${1:-any} i node port pids=()
    for i in "${!NODE_LIST[@]}"; do
        node=${NODE_LIST[$i]}
        if process_running "slurmd-$node"; then
            continue
        fi
        launch "slurmd-$node" "$DIR/log/slurmd-$node.out" /usr/sbin/slurmd -D -N "$node"
        pids[i]=$LAUNCHED_PID
    done
    for i in "${!pids[@]}"; do
        node=${NODE_LIST[$i]}
        port=${SLURMD_PORT_LIST[$i]}
        wait_ready "slurmd $node" "${pids[$i]}" "$WAIT_SLURMD" "$DIR/log/slurmd-$node.log" \
            node_ok "$node" "$port" "$want" ||
            { tail_log "$DIR/log/slurmd-$node.out"; return 1; }
    done
}

start_sshd() {
    mkdir -p /run/sshd
    launch sshd "$DIR/log/sshd.out" /usr/sbin/sshd -D -f "$DIR/ssh/sshd_config" -E "$DIR/sshd.log"
    wait_ready sshd "$LAUNCHED_PID" "$WAIT_SSHD" "$DIR/sshd.log" ssh_ok ||
        { tail_log "$DIR/log/sshd.out"; return 1; }
}

start_service() {
    local svc=$1
    case $svc in
        munged) process_running munged || start_munged ;;
        slurmctld) process_running slurmctld || start_slurmctld ;;
        slurmd) start_slurmd any ;;
        sshd) process_running sshd || start_sshd ;;
        *) die "unknown service '$svc' (one of: ${SERVICES[*]})" ;;
    esac
}

stop_process() {
    local name=$1 sig=${2:-TERM} mode=${3:-tree} pid targets=() children=()
    pid=$(recorded_pid "$name")
    if process_running "$name"; then
        targets=("$pid")
        if [[ $mode == tree ]]; then
            # e.g. sshd's session processes, slurmctld's slurmscriptd.
            read -r -a children <<<"$(descendants "$pid" | tr '\n' ' ')"
            targets+=("${children[@]}")
        fi
        signal_and_wait "$sig" "${targets[@]}"
        say "stopped $name (pid ${targets[*]})"
    fi
    rm -f "$(pidfile "$name")"
}

stop_service() {
    local svc=$1 sig=$2 mode=$3 node
    case $svc in
        munged | slurmctld | sshd) stop_process "$svc" "$sig" "$mode" ;;
        slurmd)
            for node in "${NODE_LIST[@]}"; do
                stop_process "slurmd-$node" "$sig" "$mode"
            done
            ;;
        *) die "unknown service '$svc' (one of: ${SERVICES[*]})" ;;
    esac
}

# ---------------------------------------------------------------- down

cancel_jobs() {
    process_running slurmctld && process_running munged || return 0
    local jobs
    jobs=$(slurm_cmd squeue -h -o '%A' 2>/dev/null | tr '\n' ' ') || return 0
    [[ -n ${jobs// /} ]] || return 0
    say "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    slurm_cmd scancel $jobs 2>/dev/null || true
    no_jobs() { [[ -z $(slurm_cmd squeue -h -o '%A' 2>/dev/null) ]]; }
    wait_for "$WAIT_JOBS" no_jobs || say "warning: jobs still listed after ${WAIT_JOBS}s"
}

# do_down: with state loaded. Never fails half-way on purpose.
do_down() {
    cancel_jobs || true
    local name
    # sshd first (no new requests), then the compute side, then munge.
    stop_process sshd TERM tree || true
    for name in $(process_names); do
        [[ $name == slurmd-* ]] && { stop_process "$name" TERM tree || true; }
    done
    stop_process slurmctld TERM tree || true
    stop_process munged TERM tree || true
    # Leftovers: slurmstepd / job processes, sshd session processes.
    local left
    read -r -a left <<<"$(sandbox_pids | tr '\n' ' ')"
    if (( ${#left[@]} > 0 )); then
        say "stopping leftover sandbox processes: ${left[*]}"
        signal_and_wait TERM "${left[@]}"
    fi
    remove_bulk_users || say "warning: could not remove the bulk users listed in $(bulk_users_file)"
    rm -f "$SUDOERS_FILE" "$SUDOERS_D/.ssb-sandbox-$SB_ID.tmp" "$REGISTRY/ports/$SB_ID"
    rm -f "$DIR/bridge.sock"
    remove_cgroup
    echo down >"$DIR/state/status"
}
