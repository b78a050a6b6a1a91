#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault suite (issue 7, "Faults"): the real slurm-ssh-bridge binary and its
# daemon against a real sshd + sudo + munge + Slurm sandbox on loopback
# (tests/sandbox/sandbox.sh), with faults injected into the real processes:
#
#   1  sshd killed and restarted during a burst of queries through the daemon
#   2  the network to the login host cut (a private network namespace whose
#      link is blackholed, then taken down) under daemon and direct requests
#   3  slurmctld stopped: the wrapper's own error reaches batchspawner
#   4  the daemon SIGKILLed mid-request (a slow submit, a query burst), restarted
#   5  a burst of submits with faults at random points: no job lost or doubled
#   6  sshd with MaxSessions 1 and MaxStartups 1:100:1: a burst with no errors
#
# Every query result is read the way batchspawner 1.3 reads it (its pending
# and running regexes and the python_shim's state_unknown_re, as in
# docs/CONTRACTS.md): nothing a fault produces may read as "job gone".
#
#   sudo tests/integration/faults.sh build/slurm-ssh-bridge
#   KEEP=1 sudo tests/integration/faults.sh build/slurm-ssh-bridge   # keep logs
#   FAULT_SEED=1234 ...   # replay case 5's fault order
#
# Needs root (sandbox, network namespace). Every wait is bounded; the
# cleanup stops only the processes this suite started (by PID), removes the
# network namespace and veth pair it created and takes its sandboxes down.
# Network traffic stays on loopback and inside that namespace.
# SC2153: SSHD_PID, SSH_PORT, ... come from the sourced sandbox.env.
# shellcheck disable=SC2153
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup faults "${1:-}"
PY=/usr/bin/python3
SB6=$WORK/sb-limits
# burst, summary, submits, forward, probe ... (on the shared helpers/ndjson.py,
# which reads the state rules from the python_shim next to this checkout)
HELPER=$HERE/helpers/faults_helper.py
U=alice.proj1
T_SUITE=${EPOCHREALTIME//[.,]/}

NS="" VR="" VN=""  # network namespace and veth pair of case 2 (once created)


net_teardown() {
    if [[ -n $NS ]]; then
        ip netns del "$NS" 2>/dev/null || true
    fi
    if [[ -n $VR ]] && ip link show "$VR" >/dev/null 2>&1; then
        ip link del "$VR" 2>/dev/null || true
    fi
}
# Runs first at exit; the network namespace goes after the processes in it.
suite_teardown() {
    stop_started "$WORK"
    net_teardown
}

sandbox_up "$SB" || exit 1
use_sandbox "$SB"

# ------------------------------------------------------------------ helpers

# expect_kv KEY OP VALUE WHAT: numeric comparison of KV[KEY] (OP: -eq -le -ge ...)
expect_kv() {
    local v=${KV[$1]:-missing}
    if [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] && "$PY" "$HELPER" compare "$v" "$2" "$3"; then
        pass "$4"
    else
        local notes=()
        [[ -n $KV_NOTES ]] && mapfile -t notes <<<"$KV_NOTES"
        fail "$4" "$1 = $v, expected $2 $3" "${notes[@]}"
    fi
}
# burst OUT ARGS...: the helper's burst (foreground).
burst() { "$PY" "$HELPER" burst --out "$@"; }
# burst_bg OUT ARGS...: the same in the background; sets BG_PID.
burst_bg() {
    "$PY" "$HELPER" burst --out "$@" &
    BG_PID=$!
    STARTED_PIDS+=("$BG_PID")
}
# wait_bg PID TIMEOUT_S: wait (bounded) for a background helper.
wait_bg() {
    if ! wait_for "$2" gone "$1"; then
        fail "background run $1 still going after $2 s"
        kill -TERM "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}

# The daemon runs inside this network namespace when set (case 2).
DAEMON_NETNS=""
# start_daemon LOG BRIDGE-ARGS...: the daemon, disowned (no job-control
# noise when a case kills it); see start_daemon_logged in lib.sh.
start_daemon() {
    start_daemon_logged "$@" || return 1
    disown "$DAEMON_PID"
}
kill_daemon() {
    kill -KILL "$1" 2>/dev/null || true
    wait_for 10 gone "$1" || true
}

sandbox() { bash "$SANDBOX" "$@" >>"$WORK/sandbox-ops.log" 2>&1; }
restart_sshd() {
    sandbox stop sshd "$SB" || fail "sandbox.sh stop sshd" "$(log_tail "$WORK/sandbox-ops.log")"
    # A connection accepted while sshd was stopping outlives it (its session
    # process was not yet a child when the tree was signalled): end those
    # too, so that the outage is total.
    local left
    left=$(kill_leftover_sshd)
    ((left == 0)) || info "ended $left sshd session process(es) that outlived the listener"
    sleep "${1:-0}"
    sandbox start sshd "$SB" || fail "sandbox.sh start sshd" "$(log_tail "$WORK/sandbox-ops.log")"
    # shellcheck source=/dev/null
    source "$SB/sandbox.env"  # new SSHD_PID
}
# kill_leftover_sshd: SIGKILL every sshd process left in the sandbox's cgroup
# (with the listener stopped, they are sessions); prints how many.
kill_leftover_sshd() {
    local pid comm n=0
    if [[ -n ${SANDBOX_CGROUP:-} && -r $SANDBOX_CGROUP/cgroup.procs ]]; then
        while read -r pid; do
            comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
            if [[ $comm == sshd ]] && kill -KILL "$pid" 2>/dev/null; then
                n=$((n + 1))
            fi
        done <"$SANDBOX_CGROUP/cgroup.procs"
    fi
    echo "$n"
}
# kill_sshd_sessions: SIGKILL the sshd processes serving established
# connections (the listener's children and their sshd children); prints how many.
kill_sshd_sessions() {
    local pid kid comm victims=()
    for pid in $(ps -o pid= --ppid "$SSHD_PID" 2>/dev/null); do
        victims+=("$pid")
        while read -r kid comm; do
            [[ $comm == sshd ]] && victims+=("$kid")
        done < <(ps -o pid=,comm= --ppid "$pid" 2>/dev/null)
    done
    if ((${#victims[@]} > 0)); then
        kill -KILL "${victims[@]}" 2>/dev/null || true
    fi
    echo "${#victims[@]}"
}

job_script() { # NAME SLEEP_S [EXTRA_DIRECTIVE...]
    local name=$1 secs=$2
    shift 2
    printf '#!/bin/bash\n#SBATCH --job-name=%s\n#SBATCH --output=/dev/null\n#SBATCH --time=30\n' "$name"
    local d
    for d in "$@"; do printf '#SBATCH %s\n' "$d"; done
    printf 'sleep %s\n' "$secs"
}
# slurm_jobs PREFIX FILE: "NAME ID" of every job whose name starts with
# PREFIX, any state. (Burst jobs number themselves in their job name: the
# comment carries the bridge's submit token.)
slurm_jobs() {
    squeue -h -t all -o '%j %i' 2>&1 | awk -v p="$1" 'index($1, p) == 1' >"$2" || true
}
# cancel_listed FILE: scancel every job id in slurm_jobs' FILE.
cancel_listed() { awk '{print $2}' "$1" | xargs -r scancel 2>/dev/null || true; }

# Daemon settings of cases 1, 3, 4 and 5: quick reconnects; a command
# timeout above squeue's ~18 s of retries against a stopped slurmctld.
DCONF=(--config "$CONF" --set ssh.connect_timeout_s=3 --set ssh.command_timeout_s=60
    --set pool.reconnect_min_ms=100 --set pool.reconnect_max_ms=1000)
b() { "$BRIDGE" "${DCONF[@]}" "$@"; }
QUERY_FAIL_RE='^slurm-ssh-bridge: (transport|timeout): '

# One long job of alice's that every query case asks about.
job_script ssbf-main 3000 >"$WORK/main.sh"
J1=$("$BRIDGE" --config "$CONF" --mode direct --user "$U" submit <"$WORK/main.sh") || true
[[ $J1 =~ ^[0-9]+$ ]] || { echo "$0: cannot submit the main job: $J1" >&2; exit 1; }
wait_for 30 bash -c "[[ \$(squeue -h -j $J1 -o %T) == RUNNING ]]" || { echo "$0: job $J1 does not run" >&2; exit 1; }

# ------------------------------------------------------------------ 1
test_case "1 sshd killed and restarted during a query burst: failures are transport/timeout lines, never 'job gone'; the daemon reconnects"
start_daemon "$WORK/d1.log" "${DCONF[@]}" || true
D1=$DAEMON_PID
burst "$WORK/c1-warm.jsonl" --count 5 --concurrency 2 -- "$BRIDGE" "${DCONF[@]}" --mode daemon --user "$U" query "$J1"
kv "$PY" "$HELPER" summary --out "$WORK/c1-warm.jsonl"
expect_kv running -eq 5 "warm-up queries run"
STOP=$WORK/c1.stop
burst_bg "$WORK/c1.jsonl" --concurrency 6 --stop-file "$STOP" --timeout 90 -- \
    "$BRIDGE" "${DCONF[@]}" --mode daemon --user "$U" query "$J1"
P1=$BG_PID
sleep 2
t_down=$EPOCHREALTIME
restart_sshd 3
t_up=$EPOCHREALTIME
sleep 6  # the burst goes on through the recovery
touch "$STOP"
wait_bg "$P1" 120
kv "$PY" "$HELPER" summary --out "$WORK/c1.jsonl" --fail-re "$QUERY_FAIL_RE" --from "$t_down" --to "$t_up"
info "burst: ${KV[total]:-?} queries, ${KV[running]:-?} RUNNING, ${KV[failed]:-?} failed, ${KV[started_in_window]:-?} started while sshd was down, slowest ${KV[max_s]:-?} s"
expect_kv notfound -eq 0 "no result reads as 'job gone' (batchspawner's regexes + state_unknown_re)"
expect_kv hung -eq 0 "no query hung"
expect_kv fail_other -eq 0 "every failure is one 'slurm-ssh-bridge: transport:|timeout:' line"
expect_kv started_in_window -ge 1 "queries were sent while sshd was down"
expect_kv failed -ge 1 "the outage was visible (at least one failure)"
expect_eq "$(alive "$D1" && echo alive)" "alive" "the same daemon process is still running"
expect_file_contains "$WORK/d1.log" 'connection lost|connect failed' "the daemon saw the connection go"
burst "$WORK/c1-after.jsonl" --count 20 --concurrency 4 -- "$BRIDGE" "${DCONF[@]}" --mode daemon --user "$U" query "$J1"
kv "$PY" "$HELPER" summary --out "$WORK/c1-after.jsonl"
expect_kv running -eq 20 "after the restart all 20 queries succeed"
st=$(b status 2>&1) || true
expect_match "$st" '"reconnects":[1-9]' "status counts a reconnect"

# shellcheck source=faults/network_cut.sh
source "$HERE/faults/network_cut.sh"
# ------------------------------------------------------------------ 3
# (the daemon of case 1 is still up)
# squeue_runs [CONF-ARGS...]: the coalesced squeue runs of a daemon so far
# (default: the case-1 daemon).
squeue_runs() {
    (($# > 0)) || set -- "${DCONF[@]}"
    "$BRIDGE" "$@" status 2>/dev/null | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["status"]["batches"])'
}
test_case "3 slurmctld stopped: squeue's own 'Unable to contact slurm controller' reaches batchspawner as unknown; no retry storm"
req0=$(count_lines "$WORK/d1.log" ' op=query .*outcome=')
retry0=$(count_lines "$WORK/d1.log" 'retrying')
sess0=$(count_lines "$SSHD_LOG" 'Starting session:')
login0=$(count_lines "$SSHD_LOG" 'Accepted publickey')
batches0=$(squeue_runs) || batches0=0
sandbox stop slurmctld "$SB" || fail "sandbox.sh stop slurmctld"
burst_bg "$WORK/c3-daemon.jsonl" --count 4 --concurrency 4 --timeout 120 -- \
    "$BRIDGE" "${DCONF[@]}" --mode daemon --user "$U" query "$J1"
P3=$BG_PID
burst "$WORK/c3-direct.jsonl" --count 1 --timeout 120 -- \
    "$BRIDGE" "${DCONF[@]}" --mode direct --user "$U" query "$J1"
wait_bg "$P3" 150
for path in daemon direct; do
    kv "$PY" "$HELPER" summary --out "$WORK/c3-$path.jsonl" --unknown batchspawner \
        --fail-re '^slurm_load_jobs error: Unable to contact slurm controller'
    info "$path: ${KV[total]:-?} queries, slowest ${KV[max_s]:-?} s"
    expect_kv unknown -eq "${KV[total]:-x}" "$path: every result reads as unknown with batchspawner's own regex"
    expect_kv fail_other -eq 0 "$path: stderr is squeue's own message"
    expect_kv hung -eq 0 "$path: nothing hung"
done
first=$(head -n 1 "$WORK/c3-daemon.jsonl")
expect_match "$first" '"rc": 1,' "the wrapper's exit status 1 is passed through"
expect_eq "$(($(count_lines "$WORK/d1.log" ' op=query .*outcome=') - req0))" 4 "the daemon ran each of the 4 queries once"
expect_eq "$(($(count_lines "$WORK/d1.log" 'retrying') - retry0))" 0 "nothing was retried"
if [[ ${SLURM_SSH_BRIDGE_STATUS_MODE:-} == coalesced ]]; then
    # Coalesced status: the 4 concurrent queries share squeue runs (one
    # command each, status.batches), none of them retried.
    runs=$(($(squeue_runs) - batches0))
    expect_match "$runs" '^[1-4]$' "the daemon's 4 queries took 1 to 4 squeue runs"
    expect_eq "$(($(count_lines "$SSHD_LOG" 'Starting session:') - sess0))" $((runs + 1)) "sshd started exactly $((runs + 1)) commands ($runs squeue runs + 1 direct)"
else
    expect_eq "$(($(count_lines "$SSHD_LOG" 'Starting session:') - sess0))" 5 "sshd started exactly 5 commands (4 daemon + 1 direct)"
fi
logins=$(($(count_lines "$SSHD_LOG" 'Accepted publickey') - login0))
if ((logins >= 1 && logins <= 3)); then
    pass "logins: the direct query's, at most one per pool connection"
else
    fail "new sshd logins during the outage: $logins (expected 1 direct + at most 2 pool connections)"
fi
sandbox start slurmctld "$SB" || fail "sandbox.sh start slurmctld" "$(log_tail "$WORK/sandbox-ops.log")"
wait_for 60 bash -c "[[ \$('$BRIDGE' ${DCONF[*]} --mode daemon --user $U query $J1 2>/dev/null) == 'RUNNING node1' ]]" ||
    fail "job $J1 not RUNNING through the daemon within 60 s of slurmctld's restart"
stop_daemon "$D1"

# shellcheck source=faults/daemon_and_submits.sh
source "$HERE/faults/daemon_and_submits.sh"
summary
