#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Integration suite for coalesced status (issue 13, status.mode =
# "coalesced"): the daemon answers queries from one squeue run as the
# service account per window, only about the asking user's own jobs,
# byte-identical to the per-user wrapper (here: the direct path, which runs
# the real sudo'd slurmspawner_squeue), fresh, bounded, and falling back to
# per_user when the service account cannot see other users' jobs. Real
# sshd + sudo + munge + Slurm sandboxes on loopback.
#
#   sudo tests/integration/coalesced.sh build/slurm-ssh-bridge
#   KEEP=1 sudo tests/integration/coalesced.sh build/slurm-ssh-bridge   # keep logs
#
# SC2153: SSH_PORT, SLURMCTLD_LOG, ... come from the sourced sandbox.env.
# shellcheck disable=SC2153
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup coalesced "${1:-}"
PY=/usr/bin/python3
HELPER=$HERE/helpers/coalesced_helper.py
JGET="$HERE/helpers/sockclient.py"
A=alice.proj1
B=bob.proj1
A2=alice.proj2
SBP=$WORK/sb-private

# Two CPUs on one node: two one-CPU jobs run, a two-CPU job pends.
sandbox_up "$SB" --cpus 2 || exit 1
use_sandbox "$SB"
SOCK=$SB/bridge.sock

bridge() { "$BRIDGE" --config "$CONF" "$@"; }
jget() { "$PY" "$JGET" jget "$1" "$2"; }
job() { # SLEEP_S [DIRECTIVE...]: a job script on stdout
    printf '#!/bin/bash\n#SBATCH --output=/dev/null\n#SBATCH --time=30\n#SBATCH --job-name=ssb-coalesced\n'
    local d
    for d in "${@:2}"; do printf '#SBATCH %s\n' "$d"; done
    if [[ $1 == exit* ]]; then echo "$1"; else echo "sleep $1"; fi
}
submit() { job "${@:2}" | bridge --mode direct --user "$1" submit; }  # USER SLEEP [DIRECTIVE...]
slurm_state() { squeue -h -t all -j "$1" -o '%T' 2>/dev/null; }       # as root, for set-up waits only
state_is() { [[ $(slurm_state "$1") == "$2" ]]; }
job_gone() { [[ -z $(slurm_state "$1") ]]; }

# answer MODE USER JOB: one query's stdout, stderr and exit status as one
# comparable text (the bytes, trailing newlines included).
answer() {
    local out=$WORK/ans.out err=$WORK/ans.err rc=0
    bridge --mode "$1" --user "$2" query "$3" >"$out" 2>"$err" || rc=$?
    printf 'exit=%s\nstdout=%q\nstderr=%q\n' "$rc" "$(cat "$out"; echo .)" "$(cat "$err"; echo .)"
}

# same_answer USER JOB WHAT: coalesced (daemon) and per-user (direct,
# the sudo'd wrapper) answers are byte-identical; sets ANSWER.
same_answer() {
    local per coal
    per=$(answer direct "$1" "$2")
    coal=$(answer daemon "$1" "$2")
    ANSWER=$coal
    expect_eq "$coal" "$per" "$3: coalesced answer = per-user wrapper's"
}

status_field() { jget "$(bridge status 2>/dev/null)" "d['status']['$1']"; }

# start_coalesced NAME [OPTIONS...]: a coalesced daemon on $CONF's socket.
start_coalesced() {
    local name=$1
    shift
    DAEMON_LOG=$WORK/daemon-$name.log
    start_daemon_logged "$DAEMON_LOG" --config "$CONF" --set status.mode=coalesced "$@"
}

# ------------------------------------------------------------------ 1
test_case "just-ended jobs (COMPLETED, FAILED, still in slurmctld's memory): coalesced = per-user, byte for byte"
start_coalesced main || exit 1
D1=$DAEMON_PID
expect_eq "$(status_field mode)" coalesced "status: mode coalesced"
expect_eq "$(status_field mode_configured)" coalesced "status: mode_configured coalesced"
E=$(submit "$A" "exit 0")
F=$(submit "$B" "exit 3")
if wait_for 60 state_is "$E" COMPLETED && wait_for 60 state_is "$F" FAILED; then
    info "job $E COMPLETED, job $F FAILED (MinJobAge=10: still known to slurmctld)"
    same_answer "$A" "$E" "COMPLETED job $E"
    info "COMPLETED: $ANSWER"
    same_answer "$B" "$F" "FAILED job $F"
else
    fail "jobs $E/$F did not end within 60 s: $(slurm_state "$E")/$(slurm_state "$F")"
fi

# ------------------------------------------------------------------ 2
test_case "running, pending, gone and unknown ids: coalesced = per-user, byte for byte; JSON carries the slurm details"
RA=$(submit "$A" 1800)
RB=$(submit "$B" 1800)
PA=$(submit "$A" 1800 --cpus-per-task=2)
if wait_for 60 state_is "$RA" RUNNING && wait_for 60 state_is "$RB" RUNNING && wait_for 30 state_is "$PA" PENDING; then
    same_answer "$A" "$RA" "alice's running job $RA"
    expect_eq "$(bridge --mode daemon --user "$A" query "$RA")" "RUNNING node1" "  ... which is 'RUNNING node1'"
    same_answer "$B" "$RB" "bob's running job $RB"
    same_answer "$A" "$PA" "alice's pending job $PA"
    expect_eq "$(bridge --mode daemon --user "$A" query "$PA")" "PENDING n/a" "  ... which is 'PENDING n/a'"
    same_answer "$A" 2147483647 "an id slurmctld never knew"
    same_answer "$A" 4000000000 "an id squeue itself refuses (beyond 2^31-1)"
    if wait_for 60 job_gone "$E"; then
        same_answer "$A" "$E" "a job gone from slurmctld's memory (past MinJobAge)"
        info "gone: $ANSWER"
    else
        fail "job $E still known to slurmctld after 60 s"
    fi
    j=$(bridge --mode daemon --json --user "$A" query "$RA")
    expect_eq "$(jget "$j" 'd["slurm"]["state"]')" RUNNING "--json: slurm.state RUNNING"
    expect_eq "$(jget "$j" 'd["slurm"]["node"]')" node1 "--json: slurm.node node1"
    expect_eq "$(jget "$j" 'd["slurm"]["reason"]')" None "--json: slurm.reason null (squeue's None) for a running job"
    expect_eq "$(jget "$j" 'd["state"]')" RUNNING "--json: state RUNNING, as before"
    j=$(bridge --mode daemon --json --user "$A" query "$PA")
    expect_eq "$(jget "$j" 'd["slurm"]["state"]')" PENDING "--json: slurm.state PENDING"
    expect_eq "$(jget "$j" 'd["slurm"]["node"]')" None "--json: slurm.node null for a pending job"
    expect_match "$(jget "$j" 'd["slurm"]["reason"]')" '^(Resources|Priority)$' "--json: slurm.reason Resources"
    expect_match "$(jget "$j" 'd["slurm"]["expected_start"]')" '^(None|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8})$' \
        "--json: slurm.expected_start an ISO time or null"
    j=$(bridge --mode direct --json --user "$A" query "$RA")
    expect_eq "$(jget "$j" '"slurm" in d')" False "--json, per-user: no slurm object"
    j=$(bridge --mode daemon --json --user "$A" query "$E") || true
    expect_eq "$(jget "$j" '"slurm" in d')" False "--json, gone job: no slurm object"
    # The request command (stdin JSON) takes the same path.
    j=$(printf '{"v":1,"id":"r1","op":"query","user":"%s","job_id":"%s"}' "$A" "$RA" | bridge --mode daemon request)
    expect_eq "$(jget "$j" 'd["slurm"]["node"]')" node1 "request: slurm.node node1"
else
    fail "jobs did not reach RUNNING/RUNNING/PENDING: $(slurm_state "$RA")/$(slurm_state "$RB")/$(slurm_state "$PA")"
fi

# ------------------------------------------------------------------ 3
test_case "bob cannot learn the state of alice's job: text, --json and the protocol"
# The fact coalesced mode closes: without PrivateData, alice's per-user
# wrapper tells bob her job's state.
expect_eq "$(bridge --mode direct --user "$B" query "$RA" 2>&1)" "RUNNING node1" \
    "per-user (the wrapper, PrivateData not set): bob sees alice's job $RA RUNNING"
refused0=$(status_field refused)
text=$(answer daemon "$B" "$RA")
expect_eq "$text" "$(answer direct "$B" "$E")" "text: bob gets exactly what a gone job gives"
j=$(bridge --mode daemon --json --user "$B" query "$RA") || true
expect_no_match "$j" 'RUNNING|node1|"slurm"|"state"' "--json: no state, host or slurm details for bob"
p=$("$PY" "$HELPER" query "$SOCK" "$B" "$RA")
expect_no_match "$p" 'RUNNING|node1|"slurm"|"state"' "protocol: no state, host or slurm details for bob"
expect_match "$p" '"exit_status":1' "protocol: the missing job's exit status"
expect_file_contains "$DAEMON_LOG" "refused to tell user=$B about job=$RA: its owner is $A" \
    "the daemon log names the user and the job it refused"
expect_eq "$(status_field refused)" "$((refused0 + 3))" "status: refused counts the 3 refusals"

# ------------------------------------------------------------------ 4
test_case "a burst of concurrent queries from different users: one squeue per window, every answer as per-user"
pairs=()
for i in $(seq 1 10); do pairs+=("$A:$RA" "$B:$RB" "$A:$PA" "$A2:$RA"); done
pairs+=("$A:4000000000" "$A:2147483647" "$B:$E")
REF=$WORK/burst.ref
: >"$REF"
declare -A seen=()
for pr in "${pairs[@]}"; do
    [[ -n ${seen[$pr]:-} ]] && continue
    seen[$pr]=1
    # alice.proj2 asks about alice.proj1's job: a gone job for her.
    u=${pr%%:*} id=${pr#*:}
    [[ $u == "$A2" ]] && id=$E
    bridge --mode direct --json --user "$u" query "$id" | "$PY" "$HELPER" fields "$pr" >>"$REF" || true
done
b0=$(status_field batches)
q0=$(status_field ids_queried)
expect_exit 0 "$PY" "$HELPER" burst "$SOCK" "${pairs[@]}"
BURST_OUT=$STDOUT
b1=$(status_field batches)
q1=$(status_field ids_queried)
n=${#pairs[@]}
info "$n concurrent queries (4 users, 6 ids) answered by $((b1 - b0)) squeue run(s) for $((q1 - q0)) ids"
if (( b1 - b0 >= 1 && (b1 - b0) * 10 <= n )); then
    pass "$n queries: $((b1 - b0)) squeue runs"
else
    fail "$n queries took $((b1 - b0)) squeue runs (want 1..$((n / 10)))"
fi
bad=0
while IFS=$'\t' read -r pr code out err slurm; do
    ref=$(grep -F -m1 "$pr"$'\t' "$REF" | cut -f2-4)
    [[ $code$'\t'$out$'\t'$err == "$ref" ]] || { bad=$((bad + 1)); info "differs: $pr coalesced [$code $out $err] per-user [$ref]"; }
    if [[ $pr == "$A:$RA" && $slurm != *'"node": "node1"'* ]]; then bad=$((bad + 1)); info "no slurm details for $pr: $slurm"; fi
    if [[ $pr == "$A2:"* && $slurm != null ]]; then bad=$((bad + 1)); info "details leaked to $pr: $slurm"; fi
done <<<"$BURST_OUT"
expect_eq "$bad" 0 "all $n burst answers equal the per-user ones (alice.proj2 told nothing about alice.proj1's job)"

# ------------------------------------------------------------------ 5
test_case "fresh: a query after a state change never gets the old state"
# A poller keeps rounds going (and would be served from any stale snapshot).
( for _ in $(seq 1 200); do bridge --mode daemon --user "$A" query "$RA" >/dev/null 2>&1 || true; done ) &
POLLER=$!
STARTED_PIDS+=("$POLLER")
sleep 1
expect_exit 0 bridge --mode direct --user "$B" cancel "$RB"
after=$(bridge --mode daemon --user "$B" query "$RB" 2>&1) || true
expect_no_match "$after" '^RUNNING' "the first query after scancel returned does not say RUNNING (got: ${after:-empty})"
# Spacing: squeue runs never start closer than window_ms (200) apart (a run's
# start is its log line's time minus its dur_ms).
mapfile -t starts < <(sed -n 's/^[0-9-]*T\([0-9:.]*\)Z info req=batch-[0-9]* status squeue ids=[0-9]* dur_ms=\([0-9]*\) .*/\1 \2/p' "$DAEMON_LOG" | tr ' ' '/')
kill "$POLLER" 2>/dev/null || true
wait "$POLLER" 2>/dev/null || true
close=$("$PY" - "${starts[@]}" <<'PY'
import sys
def start(s):
    clock, dur = s.split("/")
    h, m, sec = clock.split(":")
    return int(h) * 3600000 + int(m) * 60000 + round(float(sec) * 1000) - int(dur)
t = sorted(start(s) for s in sys.argv[1:])
print(sum(1 for a, b in zip(t, t[1:]) if b - a < 195))
PY
)
info "${#starts[@]} squeue runs logged so far"
expect_eq "$close" 0 "no two squeue runs started less than status.window_ms apart"

# ------------------------------------------------------------------ 6
test_case "more ids than status.max_ids in a window are split into several squeue runs"
stop_daemon "$D1"
start_coalesced split --set status.max_ids=2 || exit 1
D1=$DAEMON_PID
bridge --mode daemon --user "$A" query "$RA" >/dev/null 2>&1 || true  # connect the pool first
b0=$(status_field batches)
expect_exit 0 "$PY" "$HELPER" burst "$SOCK" "$A:$RA" "$A:$PA" "$A:$E" "$A:2147483646" "$A:2147483645"
b1=$(status_field batches)
info "5 distinct ids with status.max_ids = 2: $((b1 - b0)) squeue runs"
expect_match "$((b1 - b0))" '^[3-5]$' "at least 3 squeue runs for 5 ids"
expect_file_not_contains "$DAEMON_LOG" 'status squeue ids=([3-9]|[1-9][0-9])' "no squeue run asked about more than 2 ids"
stop_daemon "$D1"
start_coalesced main2 || exit 1
D1=$DAEMON_PID

# ------------------------------------------------------------------ 7
test_case "slurmctld stopped: coalesced = per-user (squeue's own error, unknown, never gone)"
bash "$SANDBOX" stop slurmctld "$SB" >/dev/null
# Both wait out squeue's connect retries (~18 s): run them side by side.
answer direct "$A" "$RA" >"$WORK/down.per" &
per_pid=$!
answer daemon "$A" "$RA" >"$WORK/down.coal"
wait "$per_pid" || true
expect_eq "$(cat "$WORK/down.coal")" "$(cat "$WORK/down.per")" "slurmctld down: coalesced answer = per-user wrapper's"
expect_file_contains "$WORK/down.coal" 'slurm_load_jobs.*error' "  ... squeue's slurm_load_jobs error, which the shim reads as unknown"
bash "$SANDBOX" start slurmctld "$SB" >/dev/null
wait_for 60 state_is "$RA" RUNNING || fail "slurmctld did not come back with job $RA running"
expect_eq "$(bridge --mode daemon --user "$A" query "$RA" 2>&1)" "RUNNING node1" "after slurmctld restarts: RUNNING node1 again"

# ------------------------------------------------------------------ 8
test_case "PrivateData=jobs: answers stay correct, one warning, status and check say per_user and why"
stop_daemon "$D1"
if sandbox_up "$SBP" --private-data jobs; then
    use_sandbox "$SBP"
    SOCK=$SBP/bridge.sock
    PRA=$(submit "$A" 1800)
    PRB=$(submit "$B" 1800)
    if wait_for 60 state_is "$PRA" RUNNING && wait_for 60 state_is "$PRB" RUNNING; then
        start_coalesced private || exit 1
        expect_eq "$(bridge --mode daemon --user "$A" query "$PRA" 2>&1)" "RUNNING node1" \
            "alice's job: RUNNING node1 (confirmed by her wrapper; never gone)"
        expect_eq "$(bridge --mode daemon --user "$B" query "$PRB" 2>&1)" "RUNNING node1" "bob's job: RUNNING node1"
        for _ in 1 2 3; do bridge --mode daemon --user "$A" query "$PRA" >/dev/null 2>&1 || true; done
        expect_eq "$(count_lines "$DAEMON_LOG" 'switching to per_user')" 1 "exactly one fallback warning in the log"
        expect_file_contains "$DAEMON_LOG" "warn status: switching to per_user mode .*PrivateData=jobs" \
            "the warning says why"
        expect_eq "$(status_field mode)" per_user "status: mode per_user"
        expect_eq "$(status_field mode_configured)" coalesced "status: mode_configured coalesced"
        expect_match "$(status_field why)" "did not list job $PRA of $A" "status: why names the job and the user"
        expect_exit 0 bridge --set status.mode=coalesced check
        expect_match "$STDOUT" '\[WARN\] status +PrivateData = jobs hides other users. jobs from jupyterspawner' \
            "check: the status step says the service account cannot see other users' jobs"
        expect_match "$STDOUT" 'adminlevel=Operator' "check: ... and what to set up"
    else
        fail "jobs did not start in the PrivateData sandbox"
    fi
    use_sandbox "$SB"
    SOCK=$SB/bridge.sock
fi
expect_exit 0 bridge --set status.mode=coalesced check
expect_match "$STDOUT" '\[ OK \] status +PrivateData = none: jupyterspawner sees every user.s jobs' \
    "check, PrivateData not set: the status step is ok"

summary
