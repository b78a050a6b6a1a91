#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Integration suite for the daemon (issue 3: `slurm-ssh-bridge serve`, pooled
# and multiplexed SSH connections behind a Unix socket): the real binary
# against a real sshd + sudo + munge + Slurm sandbox on loopback
# (tests/sandbox/sandbox.sh), one test case per line of the issue's
# "Done when" list plus the protocol, status and logging contracts.
#
#   sudo tests/integration/daemon.sh build/slurm-ssh-bridge
#   KEEP=1 sudo tests/integration/daemon.sh build/slurm-ssh-bridge   # keep logs
#
# Every wait is bounded; the cleanup stops only the processes this suite
# started (by PID) and takes its sandboxes down.
# SC2153: SSHD_PID, SSHD_LOG, ... come from the sourced sandbox.env.
# shellcheck disable=SC2153
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup daemon "${1:-}"
PY=/usr/bin/python3
SB2=$WORK/sb-maxsess3
U=alice.proj1
TAB=$'\t'

BURST=200             # concurrent clients per burst
CLIENT_TIMEOUT=120    # seconds any one client may take
CLIENT_PIDS=()

sandbox_up "$SB" || exit 1
use_sandbox "$SB"
SOCK=$SB/bridge.sock

# ------------------------------------------------------------------ helpers

# The NDJSON client for the daemon socket (helpers/sockclient.py, on the
# suites' shared helpers/ndjson.py).
HELPER=$HERE/helpers/sockclient.py

bridge() { "$BRIDGE" --config "$CONF" "$@"; }
accepted_logins() { grep -c "Accepted publickey" "$1" 2>/dev/null || true; }
log_has_at_least() { (($(count_lines "$1" "$2") >= $3)); }  # FILE ERE N
vmrss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# jget JSON PYEXPR: evaluate PYEXPR with d = the parsed JSON; "ERR" if that fails.
jget() { "$PY" "$HELPER" jget "$1" "$2"; }

# expect_contains STRING SUBSTRING WHAT (literal substring)
expect_contains() {
    if [[ $1 == *"$2"* ]]; then
        pass "$3"
    else
        fail "$3" "must contain: $2" "string: $1"
    fi
}


# start_daemon NAME CONF [OPTIONS...]: start `serve` in the background, wait
# (bounded) until `status` answers. Sets DAEMON_PID, DAEMON_LOG.
start_daemon() {
    local name=$1 conf=$2
    shift 2
    DAEMON_LOG=$WORK/daemon-$name.log
    start_daemon_logged "$DAEMON_LOG" --config "$conf" "$@"
}


# launch_clients DIR FROM TO ARGS...: start clients FROM..TO in the
# background, each `slurm-ssh-bridge ARGS...` bounded by CLIENT_TIMEOUT.
# With GATE set (a FIFO), each client first blocks opening it for reading,
# so that open_gate releases them all at the same moment.
GATE=""
launch_clients() {
    local dir=$1 from=$2 to=$3 i
    shift 3
    mkdir -p "$dir"
    for ((i = from; i <= to; i++)); do
        if [[ -n $GATE ]]; then
            { : <"$GATE"; exec timeout -k 5 "$CLIENT_TIMEOUT" "$BRIDGE" "$@"; } >"$dir/out.$i" 2>"$dir/err.$i" &
        else
            timeout -k 5 "$CLIENT_TIMEOUT" "$BRIDGE" "$@" >"$dir/out.$i" 2>"$dir/err.$i" &
        fi
        CLIENT_PIDS[i]=$!
        STARTED_PIDS+=("$!")
    done
}
# make_gate NAME / open_gate / close_gate: the FIFO the gated clients wait on.
# open_gate holds it open read-write on fd 9 (never blocks on Linux): every
# client blocked opening it passes, and so do later ones; close_gate drops it
# once they are all done.
make_gate() { GATE=$WORK/gate-$1; mkfifo "$GATE"; }
open_gate() { exec 9<>"$GATE"; }
close_gate() { exec 9>&-; rm -f "$GATE"; GATE=""; }
# collect_clients DIR FROM TO: wait for them, write each exit status to DIR/rc.N.
collect_clients() {
    local dir=$1 from=$2 to=$3 i rc
    for ((i = from; i <= to; i++)); do
        rc=0
        wait "${CLIENT_PIDS[i]}" || rc=$?
        echo "$rc" >"$dir/rc.$i"
    done
}

# classify DIR FROM TO CODES: sort the clients' results into
#   C_OK   exit 0, stdout exactly "RUNNING node1", stderr empty
#   C_ERR  exit 255, empty stdout, stderr exactly one line
#          "slurm-ssh-bridge: CODE: ..." with CODE matching the ERE CODES
#   C_BAD  anything else (C_SAMPLES holds a few)
# C_CODES counts the error codes seen ("code=N ...").
classify() {
    local dir=$1 from=$2 to=$3 codes=$4 i rc out err first code
    C_OK=0 C_ERR=0 C_BAD=0
    C_SAMPLES=()
    local -A seen=()
    for ((i = from; i <= to; i++)); do
        rc=$(<"$dir/rc.$i")
        out=$(<"$dir/out.$i")
        err=$(<"$dir/err.$i")
        first=${err%%$'\n'*}
        if [[ $rc == 0 && $out == "RUNNING node1" && -z $err ]]; then
            C_OK=$((C_OK + 1))
        elif [[ $rc == 255 && -z $out && $err == "$first" && $first =~ ^slurm-ssh-bridge:\ ($codes):\  ]]; then
            C_ERR=$((C_ERR + 1))
            code=${BASH_REMATCH[1]}
            seen[$code]=$((${seen[$code]:-0} + 1))
        else
            C_BAD=$((C_BAD + 1))
            if ((${#C_SAMPLES[@]} < 6)); then
                C_SAMPLES+=("client $i: exit $rc, stdout $(_lib_show "$out"), stderr $(_lib_show "$err")")
            fi
        fi
    done
    C_CODES=""
    for code in "${!seen[@]}"; do
        C_CODES+="$code=${seen[$code]} "
    done
}

# is_running CONF MODE JOB: the job's query prints exactly "RUNNING node1".
is_running() { [[ $("$BRIDGE" --config "$1" --mode "$2" --user "$U" query "$3" 2>/dev/null) == "RUNNING node1" ]]; }

# The pool's figures from `status`, per connection:
# "state/channels_in_use/capacity/r<reconnects>/q<requests>/x<refused_channels>".
pool_summary() {
    jget "$1" '" ".join("%s/%s/%s/r%s/q%s/x%s" % (c["state"], c["channels_in_use"], c["capacity"], c["reconnects"], c["requests"], c.get("refused_channels", "?")) for c in d["connections"])'
}

OUT=$WORK/jobout  # where test jobs write what they saw
mkdir -m 1777 "$OUT"
JOB=$WORK/job.sh
cat >"$JOB" <<SCRIPT
#!/bin/bash
#SBATCH --output=/dev/null
#SBATCH --time=20
#SBATCH --job-name=ssb-daemon
sleep 1200
SCRIPT

# The secrets of case 7; no daemon log may ever hold them.
TOKEN_ID="ssb-daemon-tok3n-$$-$RANDOM"
TOKEN="$TOKEN_ID-'q' \"dq\" \$HOME end"
MARKER="ssb-script-body-marker-$$-$RANDOM"

# ------------------------------------------------------------------ 1
test_case "200 concurrent queries through a 2x8 daemon all succeed; sshd sees at most 2 connections"
logins0=$(accepted_logins "$SSHD_LOG")
JOB_ID=""
D1=""
if start_daemon c1 "$CONF" --set pool.connections=2 --set pool.channels_per_connection=8; then
    D1=$DAEMON_PID
    expect_exit 0 bridge --mode daemon --user "$U" submit <"$JOB"
    expect_match "$STDOUT" '^[0-9]+$' "submit through the daemon prints the job id"
    [[ $STDOUT =~ ^[0-9]+$ ]] && JOB_ID=$STDOUT
    if [[ -n $JOB_ID ]] && ! wait_for 60 is_running "$CONF" daemon "$JOB_ID"; then
        fail "job $JOB_ID did not reach RUNNING node1 within 60 s (queried through the daemon)"
    fi
    if [[ -n $JOB_ID ]]; then
        served0=$(count_lines "$DAEMON_LOG" 'op=query .*path=daemon.*outcome=ok')
        make_gate c1
        launch_clients "$WORK/c1" 1 "$BURST" --config "$CONF" --user "$U" query "$JOB_ID"
        t0=$(now_ms)
        open_gate
        sleep 0.5
        st=$(bridge status 2>&1) || true
        info "0.5 s into the burst: clients $(jget "$st" 'd.get("clients")'), queue_depth $(jget "$st" 'd.get("queue_depth")'), pool $(pool_summary "$st")"
        collect_clients "$WORK/c1" 1 "$BURST"
        t1=$(now_ms)
        close_gate
        classify "$WORK/c1" 1 "$BURST" 'NONE'
        info "burst: $BURST clients released at once, all done in $((t1 - t0)) ms: $C_OK ok, $C_BAD other"
        expect_eq "$C_OK" "$BURST" "all $BURST clients print exactly 'RUNNING node1' and exit 0"
        ((C_BAD == 0)) || fail "clients with other results" "${C_SAMPLES[@]}"
        wait_for 5 log_has_at_least "$DAEMON_LOG" 'op=query .*path=daemon.*outcome=ok' $((served0 + BURST)) || true
        served=$(($(count_lines "$DAEMON_LOG" 'op=query .*path=daemon.*outcome=ok') - served0))
        expect_eq "$served" "$BURST" "the daemon logged $BURST served queries (no client fell back to direct)"
    fi
    logins=$(($(accepted_logins "$SSHD_LOG") - logins0))
    info "sshd accepted $logins connection(s) from the daemon's start to the end of the burst; sshd 'no more sessions' refusals so far: $(count_lines "$SSHD_LOG" 'no more sessions')"
    expect_match "$logins" '^[12]$' "sshd accepted 1 or 2 connections from the bridge (pool.connections=2)"
fi

test_case "status: one JSON object with the pool, counters, latency percentiles and RSS"
if [[ -n $D1 ]] && alive "$D1"; then
    expect_exit 0 bridge status
    st=$STDOUT
    info "status: $st"
    expect_eq "$(jget "$st" 'd["ok"]')" "True" "ok: true"
    expect_eq "$(jget "$st" 'len(d["connections"])')" "2" "2 connections in the pool"
    expect_eq "$(jget "$st" 'd["pid"]')" "$D1" "the daemon's pid"
    expect_eq "$(jget "$st" 'sorted(set(c["state"] for c in d["connections"]) - {"connected","connecting","disconnected","backoff","idle"})')" "[]" "connection states are known ones"
    if [[ ${SLURM_SSH_BRIDGE_STATUS_MODE:-} == coalesced ]]; then
        # Coalesced status: the burst's queries share squeue runs, each one
        # request on a connection; far fewer runs than queries.
        expect_eq "$(jget "$st" 'sum(c["requests"] for c in d["connections"]) >= d["status"]["batches"]')" "True" "the connections' request counts cover the squeue runs"
        expect_eq "$(jget "$st" 'd["status"]["batches"] * 5 <= '"$BURST")" "True" "the burst of $BURST took at most $((BURST / 5)) squeue runs ($(jget "$st" 'd["status"]["batches"]'))"
    else
        expect_eq "$(jget "$st" 'sum(c["requests"] for c in d["connections"]) >= '"$BURST")" "True" "the connections' request counts cover the burst"
    fi
    expect_eq "$(jget "$st" 'd["counters"]["query"]["ok"] >= '"$BURST")" "True" "counters.query.ok counts the burst"
    expect_eq "$(jget "$st" 'all(isinstance(d["latency_ms"][k], int) for k in ("p50","p95","p99"))')" "True" "latency_ms p50/p95/p99"
    expect_eq "$(jget "$st" 'isinstance(d["queue_depth"], int) and isinstance(d["uptime_s"], int) and isinstance(d["version"], str)')" "True" "queue_depth, uptime_s, version"
    expect_eq "$(jget "$st" 'isinstance(d.get("rss_kib"), int) and d["rss_kib"] > 0')" "True" "rss_kib"
else
    fail "the daemon of the previous case is not running"
fi
if [[ -n $D1 ]]; then
    stop_daemon "$D1"
    expect_eq "$DAEMON_RC" "0" "the daemon exits 0 on SIGTERM"
fi
if [[ -z $JOB_ID ]]; then  # later cases need a running job: submit it directly
    JOB_ID=$(bridge --mode direct --user "$U" submit <"$JOB") || JOB_ID=""
    if [[ ! $JOB_ID =~ ^[0-9]+$ ]] || ! wait_for 60 is_running "$CONF" direct "$JOB_ID"; then
        fail "no RUNNING job to query (even submitted directly): the remaining cases cannot run"
        summary
    fi
fi

# ------------------------------------------------------------------ 2
test_case "sshd MaxSessions 3 (below channels_per_connection 8): the same burst succeeds 100%"
if sandbox_up "$SB2" --max-sessions 3; then
    CONF2=$SB2/bridge.toml
    SSHD_LOG2=$SB2/sshd.log
    expect_file_contains "$SB2/ssh/sshd_config" '^MaxSessions 3$' "the second sandbox's sshd has MaxSessions 3"
    logins0=$(accepted_logins "$SSHD_LOG2")
    if start_daemon c2 "$CONF2" --set pool.connections=2 --set pool.channels_per_connection=8; then
        D2=$DAEMON_PID
        expect_exit 0 "$BRIDGE" --config "$CONF2" --mode daemon --user "$U" submit <"$JOB"
        J2=$STDOUT
        if [[ $J2 =~ ^[0-9]+$ ]] && wait_for 60 is_running "$CONF2" daemon "$J2"; then
            # Three bursts back to back: after the first, sshd's refusals
            # have lowered the pool's capacity, which the later ones meet.
            for round in 1 2 3; do
                served0=$(count_lines "$DAEMON_LOG" 'op=query .*path=daemon.*outcome=ok')
                make_gate "c2-$round"
                launch_clients "$WORK/c2-$round" 1 "$BURST" --config "$CONF2" --user "$U" query "$J2"
                t0=$(now_ms)
                open_gate
                collect_clients "$WORK/c2-$round" 1 "$BURST"
                t1=$(now_ms)
                close_gate
                classify "$WORK/c2-$round" 1 "$BURST" 'NONE'
                info "burst $round: $BURST clients released at once, all done in $((t1 - t0)) ms: $C_OK ok, $C_BAD other"
                expect_eq "$C_OK" "$BURST" "burst $round: all $BURST clients print exactly 'RUNNING node1' and exit 0"
                ((C_BAD == 0)) || fail "burst $round: clients with other results" "${C_SAMPLES[@]}" \
                    "last failures in the daemon log:" "$(grep -E 'outcome=(overloaded|timeout|transport|internal)' "$DAEMON_LOG" | tail -n 3)"
                wait_for 5 log_has_at_least "$DAEMON_LOG" 'op=query .*path=daemon.*outcome=ok' $((served0 + BURST)) || true
                served=$(($(count_lines "$DAEMON_LOG" 'op=query .*path=daemon.*outcome=ok') - served0))
                expect_eq "$served" "$BURST" "burst $round: the daemon logged $BURST served queries (no client fell back to direct)"
            done
            st=$("$BRIDGE" --config "$CONF2" status 2>&1) || true
            info "status after the bursts: pool $(pool_summary "$st")"
            info "daemon log: $(count_lines "$DAEMON_LOG" 'sshd refused') channel refusals logged, $(count_lines "$DAEMON_LOG" 'outcome=overloaded') requests answered overloaded"
        else
            fail "job $J2 did not reach RUNNING node1 within 60 s on the MaxSessions=3 sandbox"
        fi
        stop_daemon "$D2"
        expect_eq "$DAEMON_RC" "0" "the daemon exits 0 on SIGTERM"
        logins=$(($(accepted_logins "$SSHD_LOG2") - logins0))
        info "sshd (MaxSessions 3) accepted $logins connection(s); 'no more sessions' refusals: $(count_lines "$SSHD_LOG2" 'no more sessions')"
        expect_match "$logins" '^[12]$' "sshd accepted 1 or 2 connections from the bridge"
    fi
    bash "$SANDBOX" down "$SB2" >/dev/null 2>&1 || true
else
    fail "second sandbox (--max-sessions 3) did not come up" "$(tail -n 10 "$SB2.up.log")"
fi

# ------------------------------------------------------------------ 3
test_case "the bridge's sshd connection processes killed mid-burst: only transport/timeout errors, then the daemon reconnects"
if start_daemon c3 "$CONF"; then
    D3=$DAEMON_PID
    expect_exit 0 bridge --mode daemon --user "$U" query "$JOB_ID"  # opens the pool
    N3=300 WAVE=20
    killed=()
    t0=$(now_ms)
    for ((w = 0; w * WAVE < N3; w++)); do
        launch_clients "$WORK/c3" $((w * WAVE + 1)) $(((w + 1) * WAVE)) --config "$CONF" --mode daemon --user "$U" query "$JOB_ID"
        if ((w >= 4 && ${#killed[@]} == 0)); then
            # The per-connection sshd processes: children of the listener
            # ("sshd: jupyterspawner [priv]") and their children (the
            # unprivileged "sshd: jupyterspawner@notty" holding the TCP
            # connection). Never the listener itself.
            for c in $(pgrep -P "$SSHD_PID" || true); do
                killed+=("$c")
                for g in $(pgrep -P "$c" || true); do killed+=("$g"); done
            done
            if ((${#killed[@]} > 0)); then
                logins_at_kill=$(accepted_logins "$SSHD_LOG")
                kill -KILL "${killed[@]}" 2>/dev/null || true
                info "killed sshd connection processes ${killed[*]} at +$(($(now_ms) - t0)) ms (wave $w)"
            fi
        fi
        sleep 0.1
    done
    collect_clients "$WORK/c3" 1 "$N3"
    t1=$(now_ms)
    ((${#killed[@]} > 0)) || fail "found no sshd connection process to kill during the burst"
    classify "$WORK/c3" 1 "$N3" 'transport|timeout'
    info "burst of $N3 over $((t1 - t0)) ms: $C_OK ok, $C_ERR clear errors (${C_CODES:-none}), $C_BAD other"
    expect_eq "$C_BAD" "0" "every client either printed 'RUNNING node1' or failed with exit 255 and 'slurm-ssh-bridge: transport|timeout:'"
    ((C_BAD == 0)) || fail "clients with other results (batchspawner could read these as job gone)" "${C_SAMPLES[@]}"
    for ((i = 1; i <= N3; i++)); do
        if grep -q 'remote_failed' "$WORK/c3/err.$i" "$WORK/c3/out.$i"; then
            fail "client $i reported remote_failed" "$(cat "$WORK/c3/err.$i")"
            break
        fi
    done
    # Afterwards: queries succeed again and the daemon reconnected on its own.
    launch_clients "$WORK/c3b" 1 20 --config "$CONF" --mode daemon --user "$U" query "$JOB_ID"
    collect_clients "$WORK/c3b" 1 20
    classify "$WORK/c3b" 1 20 'NONE'
    expect_eq "$C_OK" "20" "20 queries after the outage all succeed"
    ((C_BAD == 0)) || fail "queries after the outage" "${C_SAMPLES[@]}"
    st=$(bridge status 2>&1) || true
    info "status after: pool $(pool_summary "$st")"
    expect_match "$(jget "$st" 'sum(c["reconnects"] for c in d["connections"]) >= 1')" '^True$' "status: reconnects >= 1"
    if [[ -n ${logins_at_kill:-} ]]; then
        new=$(($(accepted_logins "$SSHD_LOG") - logins_at_kill))
        info "sshd accepted $new new connection(s) after the kill"
        expect_match "$new" '^[12]$' "the daemon opened 1 or 2 new connections after the kill (not one per request)"
    fi
    expect_file_not_contains "$DAEMON_LOG" 'outcome=remote_failed' "the daemon logged no remote_failed outcome"
    stop_daemon "$D3"
    expect_eq "$DAEMON_RC" "0" "the daemon exits 0 on SIGTERM"
fi

# shellcheck source=daemon/lifecycle.sh
source "$HERE/daemon/lifecycle.sh"
# shellcheck source=daemon/requests.sh
source "$HERE/daemon/requests.sh"
summary
