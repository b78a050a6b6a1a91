#!/usr/bin/env bash
# sandbox.sh - a real, private Slurm login host on loopback for the
# slurm-ssh-bridge integration tests, demo and benchmark.
#
# One sandbox = one directory DIR holding everything it needs:
#   a private munged (own key and socket), slurmctld + slurmd (own slurm.conf,
#   ports, cluster name, state), an sshd on 127.0.0.1:<port> that accepts only
#   `jupyterspawner` with DIR/client_key, the real (upstream) slurmspawner
#   wrappers in a venv shared by all sandboxes (see install_wrappers) and a
#   sudoers fragment /etc/sudoers.d/ssb-sandbox-<id> allowing jupyterspawner
#   to run them as members of `jupyterusers`.
# Several sandboxes can run at once (ports are reserved under /run/ssb-sandbox).
# Every daemon is started by this script, recorded by PID (and start time) in
# DIR/pids and stopped by that PID, never by name; the processes they spawn
# (sshd sessions, slurmstepd, jobs) are found through the sandbox's own cgroup.
#
# Accounts jupyterspawner, alice.proj1, bob.proj1, alice.proj2 (group jupyterusers) and
# mallory.other (not in it) are created when missing and left in place by
# `down` (they are shared by all sandboxes).
#
# Must run as root (it starts sshd, slurmd, munged and edits /etc/sudoers.d).
set -euo pipefail

readonly PROG=sandbox.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly REPO_ROOT="$SCRIPT_DIR/../.."
readonly INSTALL_SUPPORT="$REPO_ROOT/scripts/install-support-packages.sh"
readonly VENV_CACHE=/var/cache/ssb-sandbox      # wrappers venvs, shared by all sandboxes
readonly WRAPPER_NAMES=(slurmspawner_sbatch slurmspawner_squeue slurmspawner_scancel)

readonly SSH_USER=jupyterspawner
readonly USERS_GROUP=jupyterusers
readonly TEST_USERS=(alice.proj1 bob.proj1 alice.proj2)  # alice.proj2: a second project of alice (tests/hub/test_brics.py)
readonly OUTSIDER=mallory.other

readonly REGISTRY=/run/ssb-sandbox          # port reservations + lock, shared by all sandboxes
readonly SUDOERS_D=/etc/sudoers.d
readonly SERVICES=(munged slurmctld slurmd sshd)
readonly DAEMON_PATH=/usr/sbin:/usr/bin:/sbin:/bin
readonly MARKER_NAME=.ssb-sandbox            # file in DIR: "this is a sandbox", holds its id

# Bounded waits (seconds).
readonly WAIT_MUNGED=10 WAIT_SLURMCTLD=30 WAIT_SLURMD=30 WAIT_SSHD=15 WAIT_STOP=10 WAIT_JOBS=20

usage() {
    cat >&2 <<EOF
usage: $PROG up DIR [--max-sessions N] [--max-startups SPEC] [--accept-env] [--nodes N] [--cpus N]
       $PROG down DIR [--purge]
       $PROG stop SERVICE DIR [--kill] [--listener-only]
       $PROG start SERVICE DIR
       $PROG status DIR

  up      create DIR (or reuse a sandbox DIR that is down) and start a private
          munged, slurmctld, slurmd (one per node: node1..nodeN) and sshd on
          free loopback ports; writes DIR/sandbox.env and DIR/bridge.toml.
            --max-sessions N    sshd MaxSessions (default: sshd's default)
            --max-startups SPEC sshd MaxStartups, N or START:RATE:FULL (default: sshd's)
            --accept-env        sshd AcceptEnv JUPYTERHUB_* JPY_API_TOKEN
                                (bridge.toml then uses env method "setenv")
            --nodes N           number of compute nodes, 1-8 (default 1)
            --cpus N            CPUs declared per node, 1-256 (default 8)
  down    cancel the sandbox's jobs, stop its processes by PID, remove its
          sudoers fragment and port reservation; keeps DIR (logs) unless --purge.
  stop    stop one SERVICE (${SERVICES[*]}); --kill uses SIGKILL;
          for sshd, --listener-only keeps established sessions.
  start   start one SERVICE again (same ports and configuration).
  status  one line per process; exit 0 when all are running, 3 otherwise.
EOF
    exit 2
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

T0=${EPOCHREALTIME//[.,]/}
now_us() { echo "${EPOCHREALTIME//[.,]/}"; }
elapsed() {
    local us=$(( $(now_us) - T0 ))
    printf '%d.%01d' $(( us / 1000000 )) $(( (us / 100000) % 10 ))
}
say() { echo "$PROG: [$(elapsed)s] $*" >&2; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (starts sshd, slurmd, munged; edits $SUDOERS_D)"
}

# ---------------------------------------------------------------- utilities

# poll TIMEOUT_S CMD... : run CMD every 0.1 s until it succeeds (0) or the
# time is up (1).
poll() {
    local timeout_s=$1
    shift
    local deadline=$(( $(now_us) + timeout_s * 1000000 ))
    while true; do
        if "$@"; then
            return 0
        fi
        if (( $(now_us) >= deadline )); then
            return 1
        fi
        sleep 0.1
    done
}

# tail_log FILE: the last lines of a log, indented, for error messages.
tail_log() {
    local file=$1
    if [[ -s $file ]]; then
        echo "---- last lines of $file ----" >&2
        tail -n 25 "$file" | sed 's/^/    /' >&2
        echo "----" >&2
    else
        echo "($file is empty or missing)" >&2
    fi
}

# Absolute, normalised path without requiring it to exist.
abspath() { realpath -m -- "$1"; }

check_dir_name() {
    local dir=$1
    # The path goes into sudoers, sshd_config and slurm.conf unquoted.
    [[ $dir =~ ^/[A-Za-z0-9/_.-]+$ ]] ||
        die "DIR '$dir' may contain only letters, digits and / _ . - (it is written into sudoers and sshd_config)"
    # Unix socket paths (munge.socket, bridge.sock) are limited to 107 bytes.
    (( ${#dir} + 20 <= 107 )) ||
        die "DIR '$dir' is too long for a Unix socket path inside it (max $(( 107 - 20 )) characters)"
}

# ------------------------------------------------------------- state files

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
    if ! poll "$WAIT_STOP" all_gone "$@"; then
        say "still running after SIG$sig: $*; sending SIGKILL"
        kill -s KILL "$@" 2>/dev/null || true
        poll 5 all_gone "$@" || say "warning: could not stop: $*"
    fi
}

# ------------------------------------------------------------------ ports

port_in_use() {
    [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
}

reserved_ports() {
    local f dir id
    for f in "$REGISTRY"/ports/*; do
        [[ -f $f ]] || continue
        dir=$(sed -n 1p "$f")
        id=${f##*/}
        # Drop reservations of sandboxes that no longer exist.
        if [[ ! -f $dir/$MARKER_NAME || $(cat "$dir/$MARKER_NAME" 2>/dev/null) != "$id" ]]; then
            rm -f "$f"
            continue
        fi
        sed -n '2,$p' "$f"
    done
}

# pick_ports N: N distinct free TCP ports below the ephemeral range, not
# reserved by another sandbox. Call with the registry lock held.
pick_ports() {
    local count=$1 low=20000 high=32767 eph_low
    eph_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    if (( eph_low > low + 1000 && eph_low - 1 < high )); then
        high=$(( eph_low - 1 ))
    fi
    local -A taken=()
    local p
    for p in $(reserved_ports); do
        taken[$p]=1
    done
    local picked=() tries=0
    while (( ${#picked[@]} < count )); do
        (( ++tries < 2000 )) || die "could not find $count free ports in $low-$high"
        p=$(( low + (RANDOM * 32768 + RANDOM) % (high - low + 1) ))
        [[ -n ${taken[$p]:-} ]] && continue
        port_in_use "$p" && continue
        taken[$p]=1
        picked+=("$p")
    done
    echo "${picked[@]}"
}

with_registry_lock() {
    mkdir -p "$REGISTRY/ports"
    chmod 0755 "$REGISTRY"
    local lockfd
    exec {lockfd}>"$REGISTRY/lock"
    flock -w 120 "$lockfd" || die "timed out waiting for $REGISTRY/lock"
    local rc=0
    "$@" || rc=$?
    exec {lockfd}>&-
    return "$rc"
}

# --------------------------------------------------------------- accounts

ensure_group() {
    getent group "$1" >/dev/null || groupadd "$1"
}

ensure_user() {
    local name=$1 in_group=$2
    if ! getent passwd "$name" >/dev/null; then
        useradd --create-home --shell /bin/bash "$name"
        say "created user $name"
    fi
    local groups
    groups=$(id -nG "$name")
    if [[ $in_group == yes && " $groups " != *" $USERS_GROUP "* ]]; then
        usermod -a -G "$USERS_GROUP" "$name"
    elif [[ $in_group == no && " $groups " == *" $USERS_GROUP "* ]]; then
        gpasswd -d "$name" "$USERS_GROUP" >/dev/null
    fi
}

ensure_accounts() {
    ensure_group "$USERS_GROUP"
    ensure_user "$SSH_USER" none
    # A fresh account has a locked password ("!"); with UsePAM no, sshd then
    # refuses even key logins. "*" = no password, but not locked.
    if [[ $(getent shadow "$SSH_USER" | cut -d: -f2) == '!'* ]]; then
        usermod -p '*' "$SSH_USER"
    fi
    local u
    for u in "${TEST_USERS[@]}"; do
        ensure_user "$u" yes
    done
    ensure_user "$OUTSIDER" no
}

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
    if poll "$timeout_s" ready_or_dead "$@" && pid_alive "$pid"; then
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

# -------------------------------------------------------- generated files

write_sandbox_env() {
    local tmp=$DIR/sandbox.env.tmp slurmd_pids=() node
    for node in "${NODE_LIST[@]}"; do
        slurmd_pids+=("$(recorded_pid "slurmd-$node")")
    done
    {
        echo "# slurm-ssh-bridge test sandbox; generated by tests/sandbox/sandbox.sh, source it."
        echo "# PIDs are rewritten by 'sandbox.sh start SERVICE DIR'."
        # Values are single-quoted (DIR never contains a quote); lists are
        # space-separated.
        printf "export %s='%s'\n" \
            SANDBOX_DIR "$DIR" \
            SANDBOX_ID "$SB_ID" \
            SANDBOX_SH "$SCRIPT_DIR/sandbox.sh" \
            SANDBOX_CLUSTER "$SB_CLUSTER" \
            SSH_HOST 127.0.0.1 \
            SSH_PORT "$SB_SSH_PORT" \
            SSH_USER "$SSH_USER" \
            CLIENT_KEY "$DIR/client_key" \
            KNOWN_HOSTS "$DIR/known_hosts" \
            KNOWN_HOSTS_WRONG "$DIR/known_hosts_wrong" \
            SSHD_CONFIG "$DIR/ssh/sshd_config" \
            SSHD_LOG "$DIR/sshd.log" \
            SLURM_CONF "$SLURM_CONF_FILE" \
            SLURMCTLD_PORT "$SB_SLURMCTLD_PORT" \
            SLURMD_PORT "${SLURMD_PORT_LIST[0]}" \
            SLURMD_PORTS "${SLURMD_PORT_LIST[*]}" \
            SLURM_NODES "${NODE_LIST[*]}" \
            SLURM_PARTITION debug \
            SLURMCTLD_LOG "$DIR/log/slurmctld.log" \
            SLURMD_LOG "$DIR/log/slurmd-${NODE_LIST[0]}.log" \
            MUNGE_SOCKET "$DIR/munge/munge.socket" \
            MUNGED_LOG "$DIR/log/munged.out" \
            WRAPPERS_DIR "$SB_WRAPPERS_BIN" \
            SUDOERS_FILE "$SUDOERS_FILE" \
            SANDBOX_CGROUP "$SB_CGROUP" \
            SANDBOX_SERVICE_USER "$SSH_USER" \
            SANDBOX_GROUP "$USERS_GROUP" \
            SANDBOX_USERS "${TEST_USERS[*]}" \
            SANDBOX_USER "${TEST_USERS[0]}" \
            SANDBOX_USER2 "${TEST_USERS[1]}" \
            SANDBOX_OUTSIDER "$OUTSIDER" \
            BRIDGE_CONFIG "$DIR/bridge.toml" \
            BRIDGE_SOCKET "$DIR/bridge.sock" \
            SANDBOX_ACCEPT_ENV "$SB_ACCEPT_ENV" \
            MUNGED_PID "$(recorded_pid munged)" \
            SLURMCTLD_PID "$(recorded_pid slurmctld)" \
            SLURMD_PID "${slurmd_pids[0]}" \
            SLURMD_PIDS "${slurmd_pids[*]}" \
            SSHD_PID "$(recorded_pid sshd)"
    } >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$DIR/sandbox.env"
}

write_bridge_toml() {
    local method=stdin
    [[ $SB_ACCEPT_ENV == yes ]] && method=setenv
    cat >"$DIR/bridge.toml" <<EOF
# slurm-ssh-bridge configuration for the test sandbox in $DIR
# (generated by tests/sandbox/sandbox.sh; see docs/CONTRACTS.md).

[ssh]
host = "127.0.0.1"
port = $SB_SSH_PORT
user = "$SSH_USER"
identity_file = "$DIR/client_key"
known_hosts = "$DIR/known_hosts"
connect_timeout_s = 5
command_timeout_s = 30

[remote]
wrappers_dir = "$SB_WRAPPERS_BIN"
sudo = "/usr/bin/sudo"

[env]
# "setenv" only when the sandbox's sshd was started with --accept-env.
method = "$method"

[daemon]
socket = "$DIR/bridge.sock"
EOF
    chmod 0644 "$DIR/bridge.toml"
}

write_slurm_conf() {
    local i node port range
    range="node[1-${#NODE_LIST[@]}]"
    (( ${#NODE_LIST[@]} == 1 )) && range=node1
    {
        cat <<EOF
# Private Slurm cluster of the test sandbox in $DIR
# (generated by tests/sandbox/sandbox.sh). Every daemon and client finds it
# through SLURM_CONF=$SLURM_CONF_FILE.
ClusterName=$SB_CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$SB_SLURMCTLD_PORT
SlurmdPort=${SLURMD_PORT_LIST[0]}
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/slurm/state
SlurmdSpoolDir=$DIR/slurm/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# The declared CPUs may exceed this machine's: use slurm.conf as is.
SlurmdParameters=config_overrides
# Do not copy the submitting shell's rlimits into jobs (noisy failures).
PropagateResourceLimits=NONE
# Short timers so tests see cancelled jobs end and leave quickly.
KillWait=2
MinJobAge=10
InactiveLimit=0
SlurmdTimeout=60
# No mail from the sandbox (the default /bin/mail is not installed).
MailProg=/bin/true
EOF
        for i in "${!NODE_LIST[@]}"; do
            node=${NODE_LIST[$i]}
            port=${SLURMD_PORT_LIST[$i]}
            echo "NodeName=$node NodeHostname=localhost NodeAddr=127.0.0.1 Port=$port CPUs=$SB_CPUS RealMemory=1000 State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=$range Default=YES MaxTime=INFINITE State=UP"
    } >"$SLURM_CONF_FILE"
    chmod 0644 "$SLURM_CONF_FILE"
}

# True when some directory above PATH is writable by group or others (sshd's
# StrictModes then refuses an AuthorizedKeysFile below it, sticky bit or not).
insecure_ancestor() {
    local d=$1 mode
    while [[ $d != / ]]; do
        d=$(dirname "$d")
        mode=$(stat -c '%a' "$d")
        (( (8#$mode & 8#022) != 0 )) && return 0
    done
    return 1
}

write_sshd_config() {
    local strict=yes
    insecure_ancestor "$DIR/ssh/authorized_keys" && strict=no
    {
        cat <<EOF
# Private sshd of the test sandbox in $DIR
# (generated by tests/sandbox/sandbox.sh).
Port $SB_SSH_PORT
ListenAddress 127.0.0.1
HostKey $DIR/ssh/ssh_host_ed25519_key
HostKey $DIR/ssh/ssh_host_ecdsa_key
PidFile $DIR/run/sshd.pid
AuthorizedKeysFile $DIR/ssh/authorized_keys
AllowUsers $SSH_USER
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
# No PAM: the service account's password field is "*" (not locked).
UsePAM no
UseDNS no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
PermitTunnel no
PrintMotd no
LogLevel VERBOSE
# Lets the wrappers, run through sudo (env_keep SLURM_CONF), find this
# sandbox's private cluster.
SetEnv SLURM_CONF=$SLURM_CONF_FILE
EOF
        if [[ $strict == no ]]; then
            echo "# A directory above $DIR is group/world-writable (e.g. /tmp):"
            echo "# StrictModes would refuse the AuthorizedKeysFile below it."
        fi
        echo "StrictModes $strict"
        [[ -n $SB_MAX_SESSIONS ]] && echo "MaxSessions $SB_MAX_SESSIONS"
        [[ -n $SB_MAX_STARTUPS ]] && echo "MaxStartups $SB_MAX_STARTUPS"
        [[ $SB_ACCEPT_ENV == yes ]] && echo "AcceptEnv JUPYTERHUB_* JPY_API_TOKEN"
        true
    } >"$DIR/ssh/sshd_config"
    chmod 0644 "$DIR/ssh/sshd_config"
    # sshd's privilege-separation directory (normally made by systemd).
    mkdir -p /run/sshd
    chmod 0755 /run/sshd
    /usr/sbin/sshd -t -f "$DIR/ssh/sshd_config" || die "sshd rejects $DIR/ssh/sshd_config"
}

# host_key_line KEYFILE.pub: "[127.0.0.1]:PORT TYPE BASE64", the form OpenSSH
# and libssh look up for a non-default port.
host_key_line() {
    local type blob
    read -r type blob _ <"$1"
    echo "[127.0.0.1]:$SB_SSH_PORT $type $blob"
}

make_keys() {
    local t
    for t in ed25519 ecdsa; do
        ssh-keygen -q -t "$t" -N '' -C "ssb-sandbox-$SB_ID host" -f "$DIR/ssh/ssh_host_${t}_key"
        ssh-keygen -q -t "$t" -N '' -C "ssb-sandbox-$SB_ID wrong host" -f "$DIR/ssh/wrong_host_${t}_key"
    done
    chmod 0600 "$DIR"/ssh/*_key
    ssh-keygen -q -t ed25519 -N '' -C "$SSH_USER@ssb-sandbox-$SB_ID" -f "$DIR/client_key"
    chmod 0600 "$DIR/client_key"
    chmod 0644 "$DIR/client_key.pub"
    install -m 0644 "$DIR/client_key.pub" "$DIR/ssh/authorized_keys"
    {
        host_key_line "$DIR/ssh/ssh_host_ed25519_key.pub"
        host_key_line "$DIR/ssh/ssh_host_ecdsa_key.pub"
    } >"$DIR/known_hosts"
    {
        host_key_line "$DIR/ssh/wrong_host_ed25519_key.pub"
        host_key_line "$DIR/ssh/wrong_host_ecdsa_key.pub"
    } >"$DIR/known_hosts_wrong"
    chmod 0644 "$DIR/known_hosts" "$DIR/known_hosts_wrong"
}

# The directory holding slurmspawner_wrappers' source, resolved the way
# scripts/install-support-packages.sh does (SSB_SUPPORT_PACKAGES, else
# ../shared/vendor beside the repository); nothing = the package index.
support_source() {
    if [[ -n ${SSB_SUPPORT_PACKAGES:-} ]]; then
        realpath -m -- "$SSB_SUPPORT_PACKAGES"
    elif [[ -d $REPO_ROOT/../shared/vendor ]]; then
        realpath -- "$REPO_ROOT/../shared/vendor"
    fi
}

# wrappers_venv: the path of the venv for the current wrapper source: keyed
# by the content of the source tree and of the install script, so a change
# makes a new venv and sandboxes already running keep using theirs.
wrappers_venv() {
    local src key
    src=$(support_source)
    key=$({
        sha256sum <"$INSTALL_SUPPORT"
        if [[ -n $src && -d $src/slurmspawner_wrappers ]]; then
            (cd "$src/slurmspawner_wrappers" && find . -path ./.git -prune -o -type f -print0 |
                LC_ALL=C sort -z | xargs -0 sha256sum)
            cat "$src/slurmspawner_wrappers.commit" 2>/dev/null || true
        else
            echo "index"
        fi
    } | sha256sum | cut -c1-16)
    echo "$VENV_CACHE/wrappers-$key"
}

# install_wrappers: the REAL slurmspawner_{sbatch,squeue,scancel} (upstream
# slurmspawner_wrappers, unmodified), installed by
# scripts/install-support-packages.sh into SB_WRAPPERS_BIN's venv. The venv
# is made once and reused by every later `up` (the script is idempotent and
# locks the venv while it installs); it is root-owned and world-readable,
# as the wrappers run as the notebook users through sudo.
install_wrappers() {
    local venv=${SB_WRAPPERS_BIN%/bin} log=$DIR/log/wrappers-install.log w
    install -d -m 0755 -o root -g root "$VENV_CACHE"
    if ! "$INSTALL_SUPPORT" --venv "$venv" slurmspawner_wrappers >"$log" 2>&1; then
        tail_log "$log"
        die "could not install slurmspawner_wrappers into $venv with $INSTALL_SUPPORT (output above; source: ${SSB_SUPPORT_PACKAGES:-$REPO_ROOT/../shared/vendor, else the package index})"
    fi
    say "$(tail -n 1 "$log")"
    for w in "${WRAPPER_NAMES[@]}"; do
        [[ -x $SB_WRAPPERS_BIN/$w ]] || die "$SB_WRAPPERS_BIN/$w is missing after installing slurmspawner_wrappers (see $log)"
    done
}

install_sudoers() {
    local bin=$SB_WRAPPERS_BIN tmp
    # sudo skips files in sudoers.d whose name contains "." - the temporary
    # name is never read, the final name has no dot.
    tmp=$SUDOERS_D/.ssb-sandbox-$SB_ID.tmp
    cat >"$tmp" <<EOF
# slurm-ssh-bridge test sandbox $SB_ID in $DIR
# (installed by tests/sandbox/sandbox.sh up, removed by sandbox.sh down).
# The reference rules of the design:
Defaults:$SSH_USER env_keep += "SLURMSPAWNER_JOB_ID JUPYTERHUB_* JPY_API_TOKEN USER HOME SHELL"
$SSH_USER ALL=(%$USERS_GROUP) NOPASSWD: $bin/slurmspawner_sbatch, $bin/slurmspawner_squeue, $bin/slurmspawner_scancel
# TEST-ONLY addition (not part of the reference fragment): keep SLURM_CONF,
# set by the sandbox sshd, so the wrappers reach this sandbox's private cluster.
Defaults:$SSH_USER env_keep += "SLURM_CONF"
EOF
    chmod 0440 "$tmp"
    if ! visudo -cqf "$tmp" >/dev/null; then
        visudo -cf "$tmp" >&2 || true
        rm -f "$tmp"
        die "generated sudoers fragment is invalid"
    fi
    mv -f "$tmp" "$SUDOERS_FILE"
    # Prove sudo really reads it.
    sudo -n -l -U "$SSH_USER" 2>/dev/null | grep -qF "$bin/slurmspawner_sbatch" ||
        die "sudo does not list the rule from $SUDOERS_FILE"
}

# ------------------------------------------------------------- subcommands

reserve_ports_and_accounts() {
    ensure_accounts
    local ports
    read -r -a ports <<<"$(pick_ports $(( 2 + SB_NODE_COUNT )))"
    SB_SSH_PORT=${ports[0]}
    SB_SLURMCTLD_PORT=${ports[1]}
    SB_SLURMD_PORTS=$(IFS=,; echo "${ports[*]:2}")
    printf '%s\n' "$DIR" "${ports[@]}" >"$REGISTRY/ports/$SB_ID"
}

prepare_dir() {
    if [[ -e $DIR && ! -d $DIR ]]; then
        die "$DIR exists and is not a directory"
    fi
    if [[ -f $DIR/$MARKER_NAME ]]; then
        # A previous sandbox: reuse the directory only if it is down.
        local old_id
        old_id=$(cat "$DIR/$MARKER_NAME")
        if [[ -f $DIR/state/sandbox.conf ]]; then
            (
                load_state "$DIR"
                for name in $(process_names); do
                    if process_running "$name"; then
                        die "a sandbox is running in $DIR ($name); run '$PROG down $DIR' first"
                    fi
                done
            )
        fi
        say "reusing $DIR (previous sandbox $old_id is down; its files are replaced)"
        rm -rf "${DIR:?}"/{state,pids,run,log,slurm,munge,ssh,wrappers} \
            "${DIR:?}"/{sandbox.env,bridge.toml,slurm.conf,client_key,client_key.pub,known_hosts,known_hosts_wrong,sshd.log,bridge.sock} \
            "${DIR:?}/$MARKER_NAME"
    elif [[ -d $DIR && -n $(ls -A "$DIR") ]]; then
        die "$DIR is not empty and not a sandbox directory"
    fi
    mkdir -p "$DIR"
    chown root:root "$DIR"
    chmod 0755 "$DIR"
    # Every directory above DIR must be traversable: the test users run the
    # wrappers and reach the munge socket and slurm.conf as themselves.
    local d=$DIR
    while [[ $d != / ]]; do
        d=$(dirname "$d")
        (( (8#$(stat -c '%a' "$d") & 8#001) != 0 )) ||
            die "$d is not traversable by other users (mode $(stat -c '%a' "$d")); the sandbox users need it"
    done
}

cmd_up() {
    local dir="" opt
    SB_MAX_SESSIONS="" SB_MAX_STARTUPS="" SB_ACCEPT_ENV=no SB_NODE_COUNT=1 SB_CPUS=8
    while (( $# > 0 )); do
        opt=$1
        case $opt in
            --max-sessions)
                [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "$PROG: --max-sessions needs a number" >&2; usage; }
                SB_MAX_SESSIONS=$2
                shift 2
                ;;
            --max-startups)
                [[ ${2:-} =~ ^[0-9]+(:[0-9]+:[0-9]+)?$ ]] || { echo "$PROG: --max-startups needs N or START:RATE:FULL" >&2; usage; }
                SB_MAX_STARTUPS=$2
                shift 2
                ;;
            --accept-env)
                SB_ACCEPT_ENV=yes
                shift
                ;;
            --nodes)
                [[ ${2:-} =~ ^[1-8]$ ]] || { echo "$PROG: --nodes needs a number from 1 to 8" >&2; usage; }
                SB_NODE_COUNT=$2
                shift 2
                ;;
            --cpus)
                if ! [[ ${2:-} =~ ^[0-9]+$ ]] || (( $2 < 1 || $2 > 256 )); then
                    echo "$PROG: --cpus needs a number from 1 to 256" >&2
                    usage
                fi
                SB_CPUS=$2
                shift 2
                ;;
            -*)
                echo "$PROG: unknown option '$opt'" >&2
                usage
                ;;
            *)
                [[ -z $dir ]] || { echo "$PROG: more than one DIR" >&2; usage; }
                dir=$opt
                shift
                ;;
        esac
    done
    [[ -n $dir ]] || { echo "$PROG: up needs DIR" >&2; usage; }
    require_root
    DIR=$(abspath "$dir")
    check_dir_name "$DIR"
    local t
    for t in /usr/sbin/sshd /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/bin/sudo \
        /usr/sbin/visudo /usr/bin/python3 setpriv ss ssh ssh-keygen sbatch squeue scancel sinfo scontrol munge unmunge; do
        command -v "$t" >/dev/null || die "$t not found (apt-get install -y slurm-wlm munge openssh-server openssh-client sudo python3 util-linux iproute2)"
    done
    getent passwd munge >/dev/null || die "no 'munge' user (install munge)"
    getent passwd slurm >/dev/null || die "no 'slurm' user (install slurm-wlm)"

    prepare_dir

    SB_ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
    SB_CLUSTER=ssb$SB_ID
    local nodes=() i
    for (( i = 1; i <= SB_NODE_COUNT; i++ )); do
        nodes+=("node$i")
    done
    SB_NODES=$(IFS=,; echo "${nodes[*]}")
    # From here on a failure stops whatever was started.
    echo "$SB_ID" >"$DIR/$MARKER_NAME"
    install -d -m 0755 "$DIR/state" "$DIR/pids" "$DIR/log" "$DIR/ssh"
    UP_DONE=no
    trap up_failed EXIT
    trap 'exit 130' INT TERM HUP

    with_registry_lock reserve_ports_and_accounts
    SB_CGROUP=$(choose_cgroup)
    SB_WRAPPERS_BIN=$(wrappers_venv)/bin
    {
        printf '%s=%q\n' SB_ID "$SB_ID" SB_CLUSTER "$SB_CLUSTER" SB_NODES "$SB_NODES" \
            SB_NODE_COUNT "$SB_NODE_COUNT" SB_CPUS "$SB_CPUS" SB_SSH_PORT "$SB_SSH_PORT" \
            SB_SLURMCTLD_PORT "$SB_SLURMCTLD_PORT" SB_SLURMD_PORTS "$SB_SLURMD_PORTS" \
            SB_MAX_SESSIONS "$SB_MAX_SESSIONS" SB_MAX_STARTUPS "$SB_MAX_STARTUPS" \
            SB_ACCEPT_ENV "$SB_ACCEPT_ENV" SB_CGROUP "$SB_CGROUP" SB_WRAPPERS_BIN "$SB_WRAPPERS_BIN"
    } >"$DIR/state/sandbox.conf"
    load_state "$DIR"
    say "sandbox $SB_ID in $DIR: ssh $SB_SSH_PORT, slurmctld $SB_SLURMCTLD_PORT, slurmd $SB_SLURMD_PORTS, cluster $SB_CLUSTER"

    # Directories. Slurm's state/log/pid paths belong to the slurm user
    # (slurmctld drops to it); slurmd (root) writes its spool/log/pid there too.
    install -d -m 0755 -o munge -g munge "$DIR/munge"
    install -d -m 0755 -o slurm -g slurm "$DIR/slurm" "$DIR/run"
    chown slurm:slurm "$DIR/log"
    install -d -m 0700 -o slurm -g slurm "$DIR/slurm/state"
    install -d -m 0755 -o root -g root "$DIR/slurm/spool"
    local node
    for node in "${NODE_LIST[@]}"; do
        install -d -m 0755 -o root -g root "$DIR/slurm/spool/$node"
    done

    head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
    chown munge:munge "$DIR/munge/munge.key"
    chmod 0400 "$DIR/munge/munge.key"

    write_slurm_conf
    make_keys
    write_sshd_config
    install_wrappers
    install_sudoers
    write_bridge_toml
    say "configuration written"

    start_munged
    start_slurmctld
    start_slurmd idle
    start_sshd
    write_sandbox_env
    echo up >"$DIR/state/status"
    UP_DONE=yes
    trap - EXIT INT TERM HUP
    say "sandbox up: source $DIR/sandbox.env (bridge config $DIR/bridge.toml)"
    echo "$DIR/sandbox.env"
}

up_failed() {
    local rc=$?
    [[ ${UP_DONE:-yes} == no ]] || return 0
    trap - EXIT
    trap '' INT TERM HUP
    echo "$PROG: up failed; stopping what was started (logs stay in $DIR)" >&2
    if [[ -f $DIR/state/sandbox.conf ]]; then
        do_down || true
    else
        rm -f "$REGISTRY/ports/${SB_ID:-none}"
    fi
    (( rc != 0 )) || rc=1
    exit "$rc"
}

cancel_jobs() {
    process_running slurmctld && process_running munged || return 0
    local jobs
    jobs=$(slurm_cmd squeue -h -o '%A' 2>/dev/null | tr '\n' ' ') || return 0
    [[ -n ${jobs// /} ]] || return 0
    say "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    slurm_cmd scancel $jobs 2>/dev/null || true
    no_jobs() { [[ -z $(slurm_cmd squeue -h -o '%A' 2>/dev/null) ]]; }
    poll "$WAIT_JOBS" no_jobs || say "warning: jobs still listed after ${WAIT_JOBS}s"
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
    rm -f "$SUDOERS_FILE" "$SUDOERS_D/.ssb-sandbox-$SB_ID.tmp" "$REGISTRY/ports/$SB_ID"
    rm -f "$DIR/bridge.sock"
    remove_cgroup
    echo down >"$DIR/state/status"
}

cmd_down() {
    local dir="" purge=no opt
    for opt in "$@"; do
        case $opt in
            --purge) purge=yes ;;
            -*) echo "$PROG: unknown option '$opt'" >&2; usage ;;
            *) [[ -z $dir ]] || usage; dir=$opt ;;
        esac
    done
    [[ -n $dir ]] || { echo "$PROG: down needs DIR" >&2; usage; }
    require_root
    DIR=$(abspath "$dir")
    if [[ ! -f $DIR/$MARKER_NAME ]]; then
        say "$DIR: no sandbox there; nothing to stop"
        return 0
    fi
    if [[ -f $DIR/state/sandbox.conf ]]; then
        load_state "$DIR"
        do_down
    else
        # up failed before anything was started.
        local id
        id=$(cat "$DIR/$MARKER_NAME")
        rm -f "$REGISTRY/ports/$id" "$SUDOERS_D/ssb-sandbox-$id"
    fi
    if [[ $purge == yes ]]; then
        check_dir_name "$DIR"
        rm -rf --one-file-system -- "$DIR"
        say "sandbox down, $DIR removed"
    else
        say "sandbox down (logs kept in $DIR)"
    fi
}

cmd_stop() {
    local svc=${1:-} dir="" sig=TERM mode=tree opt
    (( $# >= 2 )) || usage
    shift
    for opt in "$@"; do
        case $opt in
            --kill) sig=KILL ;;
            --listener-only) mode=self ;;
            -*) echo "$PROG: unknown option '$opt'" >&2; usage ;;
            *) [[ -z $dir ]] || usage; dir=$opt ;;
        esac
    done
    [[ -n $dir ]] || usage
    [[ " ${SERVICES[*]} " == *" $svc "* ]] || { echo "$PROG: unknown service '$svc'" >&2; usage; }
    [[ $mode == tree || $svc == sshd ]] || { echo "$PROG: --listener-only is for sshd" >&2; usage; }
    require_root
    load_state "$dir"
    stop_service "$svc" "$sig" "$mode"
    write_sandbox_env
}

cmd_start() {
    (( $# == 2 )) || usage
    local svc=$1
    [[ " ${SERVICES[*]} " == *" $svc "* ]] || { echo "$PROG: unknown service '$svc'" >&2; usage; }
    require_root
    load_state "$2"
    [[ $(cat "$DIR/state/status" 2>/dev/null) == up ]] || die "sandbox in $DIR is not up (run '$PROG up $DIR')"
    start_service "$svc"
    write_sandbox_env
}

cmd_status() {
    (( $# == 1 )) || usage
    load_state "$1"
    local name pid all=0
    echo "sandbox $SB_ID in $DIR ($(cat "$DIR/state/status" 2>/dev/null || echo unknown)): ssh 127.0.0.1:$SB_SSH_PORT, slurmctld :$SB_SLURMCTLD_PORT, slurmd :$SB_SLURMD_PORTS, cluster $SB_CLUSTER"
    for name in $(process_names); do
        pid=$(recorded_pid "$name")
        if process_running "$name"; then
            printf '%-14s running  pid %s\n' "$name" "$pid"
        else
            printf '%-14s stopped\n' "$name"
            all=3
        fi
    done
    if process_running slurmctld && process_running munged; then
        slurm_cmd sinfo -h -N -o 'node %N %t' 2>/dev/null || true
        local jobs
        jobs=$(slurm_cmd squeue -h -o '%A' 2>/dev/null | wc -l) || jobs='?'
        echo "jobs           $jobs"
    fi
    return "$all"
}

main() {
    (( $# >= 1 )) || usage
    local cmd=$1
    shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        stop) cmd_stop "$@" ;;
        start) cmd_start "$@" ;;
        status) cmd_status "$@" ;;
        -h | --help | help) usage ;;
        *) echo "$PROG: unknown subcommand '$cmd'" >&2; usage ;;
    esac
}

main "$@"
