#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
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
#
# This file is the command line (usage, the subcommands, `up` as a list of
# steps); the pieces it sources from lib/ are split by concern:
#   lib/pids.sh       state files, PIDs, the sandbox's cgroup, stopping PIDs
#   lib/services.sh   starting/stopping munged, slurmctld, slurmd, sshd; down
#   lib/accounts.sh   the shared port registry, test accounts, SSH keys
#   lib/templates.sh  slurm.conf, sshd_config, sudoers, sandbox.env, bridge.toml
#   lib/wrappers.sh   the upstream slurmspawner wrappers' venv
#   lib/up.sh         the steps of `up` (cmd_up, below, is their list)
# and the bounded wait shared with the integration suites (tests/lib/wait.sh).
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

# Bounded waits (seconds), polled every 0.1 s (wait_for's interval): start-up
# checks are cheap and `up` is on every suite's critical path.
readonly WAIT_MUNGED=10 WAIT_SLURMCTLD=30 WAIT_SLURMD=30 WAIT_SSHD=15 WAIT_STOP=10 WAIT_JOBS=20
WAIT_FOR_EVERY_S=0.1

# shellcheck source=../lib/wait.sh
source "$SCRIPT_DIR/../lib/wait.sh"
# shellcheck source=lib/pids.sh
source "$SCRIPT_DIR/lib/pids.sh"
# shellcheck source=lib/services.sh
source "$SCRIPT_DIR/lib/services.sh"
# shellcheck source=lib/accounts.sh
source "$SCRIPT_DIR/lib/accounts.sh"
# shellcheck source=lib/templates.sh
source "$SCRIPT_DIR/lib/templates.sh"
# shellcheck source=lib/wrappers.sh
source "$SCRIPT_DIR/lib/wrappers.sh"
# shellcheck source=lib/up.sh
source "$SCRIPT_DIR/lib/up.sh"

usage() {
    cat >&2 <<EOF
usage: $PROG up DIR [--max-sessions N] [--max-startups SPEC] [--accept-env] [--nodes N] [--cpus N] [--private-data SPEC]
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
            --private-data SPEC slurm.conf PrivateData (e.g. jobs; default: not set)
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

# ------------------------------------------------------------------- up

# cmd_up: the steps are in lib/up.sh.
cmd_up() {
    parse_up_options "$@"
    require_root
    DIR=$(abspath "$UP_DIR")
    check_dir_name "$DIR"
    check_programs
    prepare_dir
    new_identity

    # From here on a failure stops whatever was started.
    echo "$SB_ID" >"$DIR/$MARKER_NAME"
    install -d -m 0755 "$DIR/state" "$DIR/pids" "$DIR/log" "$DIR/ssh"
    UP_DONE=no
    trap up_failed EXIT
    trap 'exit 130' INT TERM HUP

    with_registry_lock reserve_ports_and_accounts
    SB_CGROUP=$(choose_cgroup)
    SB_WRAPPERS_BIN=$(wrappers_venv)/bin
    write_state
    load_state "$DIR"
    say "sandbox $SB_ID in $DIR: ssh $SB_SSH_PORT, slurmctld $SB_SLURMCTLD_PORT, slurmd $SB_SLURMD_PORTS, cluster $SB_CLUSTER"

    make_runtime_dirs
    write_configuration
    start_all
    write_sandbox_env
    echo up >"$DIR/state/status"
    UP_DONE=yes
    trap - EXIT INT TERM HUP
    say "sandbox up: source $DIR/sandbox.env (bridge config $DIR/bridge.toml)"
    echo "$DIR/sandbox.env"
}

# up_failed: the EXIT trap of `up` until it is done: stop what was started.
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

# ------------------------------------------------------- other subcommands

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
