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

# ------------------------------------------------------------------ 4
test_case "SIGTERM during a burst: in-flight requests finish or fail clearly, socket removed, exit 0"
if start_daemon c4 "$CONF" --set daemon.drain_timeout_s=20; then
    D4=$DAEMON_PID
    expect_exit 0 bridge --mode daemon --user "$U" query "$JOB_ID"  # opens the pool
    base=$(count_lines "$DAEMON_LOG" 'op=query ')
    make_gate c4
    launch_clients "$WORK/c4" 1 "$BURST" --config "$CONF" --mode daemon --user "$U" query "$JOB_ID"
    open_gate
    # SIGTERM once the burst is being served (some requests done, most not).
    deadline=$(($(now_ms) + 30000))
    while (($(count_lines "$DAEMON_LOG" 'op=query ') < base + 15 && $(now_ms) < deadline)); do sleep 0.02; done
    ok_at_term=$(($(count_lines "$DAEMON_LOG" 'op=query .*outcome=ok') - 1))
    t_term=$(now_ms)
    stop_daemon "$D4" 40
    t_exit=$(now_ms)
    collect_clients "$WORK/c4" 1 "$BURST"
    close_gate
    expect_eq "$DAEMON_RC" "0" "exit status 0 after SIGTERM"
    info "SIGTERM after $ok_at_term served queries; the daemon exited $((t_exit - t_term)) ms later (drain_timeout_s=20)"
    ((t_exit - t_term < 25000)) || fail "the daemon took $((t_exit - t_term)) ms to exit (drain bound 20 s)"
    expect_eq "$(test -e "$SOCK" && echo present || echo removed)" "removed" "the socket file is removed"
    classify "$WORK/c4" 1 "$BURST" 'shutting_down|daemon_unavailable|transport|timeout|overloaded'
    ok_total=$(($(count_lines "$DAEMON_LOG" 'op=query .*outcome=ok') - 1))
    info "clients: $C_OK ok, $C_ERR clear errors (${C_CODES:-none}), $C_BAD other; served after SIGTERM: $((ok_total - ok_at_term))"
    expect_eq "$C_BAD" "0" "every client got 'RUNNING node1' or one clear 'slurm-ssh-bridge: CODE:' line with exit 255"
    ((C_BAD == 0)) || fail "clients with other results" "${C_SAMPLES[@]}"
    expect_eq "$C_OK" "$ok_total" "every query the daemon logged as ok reached its client (no response lost in the shutdown)"
    expect_eq "$((C_OK + C_ERR))" "$BURST" "every client got an answer"
fi

test_case "SIGTERM with no drain time, clients in auto mode: no shutting_down reaches a client (it goes direct)"
if start_daemon c4b "$CONF" --set daemon.drain_timeout_s=0; then
    D4B=$DAEMON_PID
    expect_exit 0 bridge --mode daemon --user "$U" query "$JOB_ID"  # opens the pool
    base=$(count_lines "$DAEMON_LOG" 'op=query ')
    make_gate c4b
    launch_clients "$WORK/c4b" 1 "$BURST" --config "$CONF" --mode auto --user "$U" query "$JOB_ID"
    open_gate
    deadline=$(($(now_ms) + 30000))
    while (($(count_lines "$DAEMON_LOG" 'op=query ') < base + 15 && $(now_ms) < deadline)); do sleep 0.02; done
    stop_daemon "$D4B" 40
    collect_clients "$WORK/c4b" 1 "$BURST"
    close_gate
    expect_eq "$DAEMON_RC" "0" "exit status 0 after SIGTERM"
    classify "$WORK/c4b" 1 "$BURST" 'shutting_down|daemon_unavailable|transport|timeout|overloaded'
    info "clients: $C_OK ok, $C_ERR clear errors (${C_CODES:-none}), $C_BAD other"
    # The direct fallbacks of a 200-client burst meet sshd's MaxStartups
    # (10:30:100), so some end as transport errors: "unknown, keep polling"
    # for batchspawner, which is right. None may see shutting_down.
    expect_eq "$C_BAD" "0" "every client got 'RUNNING node1' or one clear 'slurm-ssh-bridge: CODE:' line"
    expect_no_match "${C_CODES:-}" 'shutting_down' "no client saw shutting_down: auto mode went direct instead"
    ((C_OK > 0)) || fail "no auto-mode client got an answer"
fi

# ------------------------------------------------------------------ 5
test_case "a second daemon on the same socket refuses to start"
if start_daemon c5 "$CONF"; then
    D5=$DAEMON_PID
    expect_exit nonzero timeout -k 5 15 "$BRIDGE" --config "$CONF" serve
    expect_ne "$EXIT_CODE" "124" "the second daemon exits by itself (does not hang)"
    expect_match "$STDERR" 'already' "its message says a daemon is already running"
    expect_contains "$STDERR" "$SOCK" "its message names the socket"
    expect_match "$STDERR" '^slurm-ssh-bridge: ' "its message starts with slurm-ssh-bridge:"
    expect_eq "$(test -S "$SOCK" && echo socket)" "socket" "the live daemon's socket file is still there"
    expect_exit 0 bridge status
    expect_eq "$(jget "$STDOUT" 'd["pid"]')" "$D5" "the first daemon still answers"
    expect_exit 0 bridge --mode daemon --user "$U" query "$JOB_ID"
    expect_eq "$STDOUT" "RUNNING node1" "and serves queries"
    stop_daemon "$D5"
    expect_eq "$DAEMON_RC" "0" "the first daemon exits 0 on SIGTERM"
fi

test_case "a stale socket file (nobody listening) is replaced"
rm -f "$SOCK"
"$PY" "$HELPER" stale "$SOCK" || fail "could not create a stale socket file at $SOCK"
expect_eq "$(test -S "$SOCK" && echo socket)" "socket" "a stale socket file is in place"
expect_exit 0 bridge --json --user "$U" query "$JOB_ID"
expect_match "$STDOUT" '"path":"direct"' "auto mode with a stale socket falls back to direct"
if start_daemon c5b "$CONF"; then
    D5b=$DAEMON_PID
    expect_exit 0 bridge --json --user "$U" query "$JOB_ID"
    expect_match "$STDOUT" '"path":"daemon"' "auto mode now uses the daemon"
    expect_match "$STDOUT" '"state":"RUNNING"' "state RUNNING"
    stop_daemon "$D5b"
    expect_eq "$DAEMON_RC" "0" "exit 0 on SIGTERM"
    expect_eq "$(test -e "$SOCK" && echo present || echo removed)" "removed" "the socket file is removed"
fi

test_case "no daemon: auto falls back to direct, --mode daemon fails with daemon_unavailable (exit 255)"
expect_eq "$(test -e "$SOCK" && echo present || echo absent)" "absent" "no socket file"
expect_exit 0 bridge --json --user "$U" query "$JOB_ID"
expect_match "$STDOUT" '"path":"direct"' "auto: served directly"
expect_match "$STDOUT" '"ok":true' "auto: ok"
expect_exit 0 bridge --user "$U" query "$JOB_ID"
expect_eq "$STDOUT" "RUNNING node1" "auto, text mode: the wrapper's output"
expect_exit 255 bridge --mode daemon --user "$U" query "$JOB_ID"
expect_match "$STDERR" '^slurm-ssh-bridge: daemon_unavailable: ' "--mode daemon: daemon_unavailable on the first stderr line"
expect_eq "$STDOUT" "" "--mode daemon: nothing on stdout"
expect_exit 255 bridge --mode daemon --json --user "$U" query "$JOB_ID"
expect_match "$STDOUT" '"code":"daemon_unavailable"' "--mode daemon --json: error code daemon_unavailable"
expect_exit 255 bridge status
# status speaks JSON: the code may come as {"ok":false,"error":{...}} on stdout
expect_match "$(jget "$STDOUT" 'd["error"]["code"]') ${STDERR%%$'\n'*}" '^daemon_unavailable |^ERR slurm-ssh-bridge: daemon_unavailable: ' "status without a daemon: daemon_unavailable"

# ------------------------------------------------------------------ 6
test_case "memory stays flat: RSS after 1,000 and after 10,000 requests grows by less than 2 MiB"
if start_daemon c6 "$CONF"; then
    D6=$DAEMON_PID
    rss_start=$(vmrss_kib "$D6")
    expect_exit 0 timeout -k 5 300 "$PY" "$HELPER" load "$SOCK" "$JOB_ID" 1000 4 8 "$U"
    info "first 1,000: $STDOUT"
    rss_1k=$(vmrss_kib "$D6")
    expect_exit 0 timeout -k 5 900 "$PY" "$HELPER" load "$SOCK" "$JOB_ID" 9000 4 8 "$U"
    info "next 9,000: $STDOUT"
    rss_10k=$(vmrss_kib "$D6")
    st=$(bridge status 2>&1) || true
    info "VmRSS: at start ${rss_start} KiB, after 1,000 requests ${rss_1k} KiB, after 10,000 ${rss_10k} KiB (growth $((rss_10k - rss_1k)) KiB); status rss_kib $(jget "$st" 'd["rss_kib"]'), query counters $(jget "$st" 'd["counters"]["query"]')"
    ((rss_1k > 0 && rss_10k > 0)) || fail "could not read VmRSS of pid $D6"
    ((rss_10k - rss_1k < 2048)) || fail "RSS grew by $((rss_10k - rss_1k)) KiB between 1,000 and 10,000 requests (limit 2048 KiB)" "after 1,000: $rss_1k KiB" "after 10,000: $rss_10k KiB"
    expect_match "$(jget "$st" 'd["counters"]["query"]["ok"] >= 10000')" '^True$' "status counts the 10,000 queries"
    stop_daemon "$D6"
    expect_eq "$DAEMON_RC" "0" "exit 0 on SIGTERM"
fi

# ------------------------------------------------------------------ 7
test_case "submit and cancel through the daemon; status counters reflect them"
if start_daemon c7 "$CONF"; then
    D7=$DAEMON_PID
    st0=$(bridge status 2>&1) || true
    cat >"$WORK/job7.sh" <<SCRIPT
#!/bin/bash
#SBATCH --output=/dev/null
#SBATCH --time=10
#SBATCH --job-name=ssb-daemon-7
echo "$MARKER" >/dev/null
env -0 > "$OUT/ssb-job-env.\$SLURM_JOB_ID"
sleep 600
SCRIPT
    expect_exit 0 env JUPYTERHUB_API_TOKEN="$TOKEN" JPY_API_TOKEN="$TOKEN" "$BRIDGE" --config "$CONF" --mode daemon --user "$U" submit <"$WORK/job7.sh"
    expect_match "$STDOUT" '^[0-9]+$' "submit prints the job id"
    expect_eq "$STDERR" "" "submit: stderr empty"
    J7=$STDOUT
    if [[ $J7 =~ ^[0-9]+$ ]]; then
        if wait_for 30 test -s "$OUT/ssb-job-env.$J7"; then
            got=$(tr '\0' '\n' <"$OUT/ssb-job-env.$J7" | grep '^JUPYTERHUB_API_TOKEN=' | head -n1)
            expect_eq "${got#JUPYTERHUB_API_TOKEN=}" "$TOKEN" "the token reached the job intact through the daemon"
        else
            fail "job $J7 did not start within 30 s"
        fi
        expect_exit 0 bridge --mode daemon --json --user "$U" query "$J7"
        expect_match "$STDOUT" '"path":"daemon"' "query --json: path daemon"
        expect_match "$STDOUT" '"job_id":"'"$J7"'"' "query --json: job_id"
        expect_exit 0 bridge --mode daemon --user "$U" cancel "$J7"
        wait_for 20 bash -c "[[ -z \$(squeue -h -j $J7 -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %T 2>/dev/null) ]]" ||
            fail "job $J7 still active 20 s after cancel through the daemon"
    fi
    # The same over the socket, with the token in the request's env.
    sub=$(printf '{"v":1,"id":"sub1","op":"submit","user":"bob.proj1","script":"#!/bin/bash\\n#SBATCH --output=/dev/null\\n#SBATCH --time=5\\necho %s >/dev/null\\nsleep 300\\n","env":{"JUPYTERHUB_API_TOKEN":"%s"}}' "$MARKER" "${TOKEN//\"/\\\"}")
    expect_exit 0 timeout -k 5 60 "$PY" "$HELPER" session "$SOCK" "sub=$sub"
    expect_eq "$(jget "${STDOUT#*"$TAB"}" '(d.get("id"), d["ok"])')" "('sub1', True)" "protocol submit: ok, same id"
    if [[ $STDOUT =~ \"job_id\":\"([0-9]+)\" ]]; then
        JS=${BASH_REMATCH[1]}
        expect_exit 0 timeout -k 5 60 "$PY" "$HELPER" session "$SOCK" "can={\"v\":1,\"id\":99,\"op\":\"cancel\",\"user\":\"bob.proj1\",\"job_id\":\"$JS\"}"
        expect_eq "$(jget "${STDOUT#*"$TAB"}" '(d.get("id"), d["ok"])')" "(99, True)" "protocol cancel: ok, same (numeric) id"
    else
        fail "protocol submit returned a job_id" "$STDOUT"
    fi
    st1=$(bridge status 2>&1) || true
    for op in submit cancel; do
        n0=$(jget "$st0" 'd["counters"].get("'"$op"'", {}).get("ok", 0)')
        n1=$(jget "$st1" 'd["counters"].get("'"$op"'", {}).get("ok", 0)')
        expect_eq "$n1" "$((n0 + 2))" "status: counters.$op.ok went up by 2 (CLI + socket)"
    done
    info "counters after: $(jget "$st1" 'd["counters"]')"
fi

test_case "output is identical whichever path served it"
if alive "${D7:-0}"; then
    expect_exit 0 bridge --mode daemon --user "$U" query "$JOB_ID"
    d_out=$STDOUT d_err=$STDERR
    expect_exit 0 bridge --mode direct --user "$U" query "$JOB_ID"
    expect_eq "$d_out|$d_err" "$STDOUT|$STDERR" "RUNNING job: same stdout and stderr"
    expect_exit 1 bridge --mode daemon --user "$U" query 999999
    d_out=$STDOUT d_err=$STDERR
    expect_exit 1 bridge --mode direct --user "$U" query 999999
    expect_eq "$d_out|$d_err" "$STDOUT|$STDERR" "unknown job: same exit status, stdout and stderr"
    expect_match "$d_err" 'slurm_load_jobs error: Invalid job id specified' "squeue's own error passes through the daemon"
    expect_exit 1 bridge --mode daemon --json --user "$U" query 999999
    expect_match "$STDOUT" '"code":"remote_failed"' "--json through the daemon: remote_failed"
    expect_match "$STDOUT" '"path":"daemon"' "--json through the daemon: path daemon"
    expect_exit 2 bridge --mode daemon --user 'a;b' query 1
    expect_match "$STDERR" '^slurm-ssh-bridge: invalid_user: ' "an invalid user is refused with exit 2"
else
    fail "the daemon of this case is not running"
fi

test_case "a call the daemon serves never loads libssh (CLI start-up); a direct call loads it"
if alive "${D7:-0}"; then
    # LD_DEBUG=files: the dynamic loader names every object it maps, and
    # whether it was a dependency or dlopen'd.
    expect_exit 0 env LD_DEBUG=files "$BRIDGE" --config "$CONF" --mode daemon --user "$U" query "$JOB_ID"
    expect_eq "$STDOUT" "RUNNING node1" "daemon: the answer"
    expect_no_match "$STDERR" 'file=libssh|file=libcrypto' "daemon: neither libssh nor libcrypto was mapped"
    expect_exit 0 env LD_DEBUG=files "$BRIDGE" --config "$CONF" --mode direct --user "$U" query "$JOB_ID"
    expect_eq "$STDOUT" "RUNNING node1" "direct: the answer"
    expect_match "$STDERR" 'file=libssh\.so\.[0-9]+ .*dynamically loaded by' "direct: libssh was dlopen'd"
else
    fail "the daemon of this case is not running"
fi

test_case "protocol errors get bad_request / invalid_user with the same id; the connection stays usable"
if alive "${D7:-0}"; then
    # shellcheck disable=SC2016 # $(id) is the hostile input
    expect_exit 0 timeout -k 5 90 "$PY" "$HELPER" session "$SOCK" \
        'malformed={"v":1,"id":"m1","op":"query",' \
        'notobject=[1,2,3]' \
        'unknown_op={"v":1,"id":"u1","op":"frobnicate","user":"alice.proj1","job_id":"1"}' \
        'bad_user={"v":1,"id":7,"op":"query","user":"a;b","job_id":"1"}' \
        'bad_user2={"v":1,"id":"u2","op":"query","user":"$(id)","job_id":"1"}' \
        'bad_job={"v":1,"id":"j1","op":"query","user":"alice.proj1","job_id":"1;$(id)"}' \
        'bad_job2={"v":1,"id":"j2","op":"cancel","user":"alice.proj1","job_id":"abc"}' \
        'bad_version={"v":99,"id":"v99","op":"query","user":"alice.proj1","job_id":"1"}' \
        "query={\"v\":1,\"id\":\"q1\",\"op\":\"query\",\"user\":\"alice.proj1\",\"job_id\":\"$JOB_ID\"}" \
        'status={"v":1,"id":"s1","op":"status"}'
    P=$STDOUT
    while IFS= read -r l; do info "$l"; done <<<"$P"
    pj() { local l; l=$(grep -m1 "^$1$TAB" <<<"$P") || true; echo "${l#*"$TAB"}"; }
    # expect_resp LABEL ID_REPR CODE: response to LABEL has that id and error code
    expect_resp() {
        local j
        j=$(pj "$1")
        expect_eq "$(jget "$j" 'repr(d.get("id"))') $(jget "$j" 'd["ok"]') $(jget "$j" 'd["error"]["code"]')" "$2 False $3" "$1: id $2, ok false, code $3"
    }
    expect_resp malformed None bad_request
    expect_resp notobject None bad_request
    expect_resp unknown_op "'u1'" bad_request
    expect_resp bad_user 7 invalid_user
    expect_resp bad_user2 "'u2'" invalid_user
    expect_resp bad_job "'j1'" invalid_job_id
    expect_resp bad_job2 "'j2'" invalid_job_id
    expect_resp bad_version "'v99'" bad_request
    j=$(pj query)
    expect_eq "$(jget "$j" '(d.get("id"), d["ok"], d.get("state"), d.get("host"), d.get("stdout"))')" "('q1', True, 'RUNNING', 'node1', 'RUNNING node1\\n')" "then a valid query on the same connection succeeds"
    j=$(pj status)
    expect_eq "$(jget "$j" '(d.get("id"), d["ok"], "connections" in d["status"])')" "('s1', True, True)" "status over the socket"
else
    fail "the daemon of this case is not running"
fi

test_case "the daemon logs one line per request and never a token or a script line"
if alive "${D7:-0}"; then
    stop_daemon "$D7"
    expect_eq "$DAEMON_RC" "0" "exit 0 on SIGTERM"
    expect_file_contains "$DAEMON_LOG" "op=submit .*user=$U.*path=daemon.*dur_ms=[0-9]+.*outcome=ok" "a submit line with op, user, path, duration, outcome"
    expect_file_contains "$DAEMON_LOG" "req=[^ ]+ peer_uid=0 op=cancel .*job=${J7:-x}( |$)" "a cancel line with request id, the client's uid and job id"
    expect_file_contains "$DAEMON_LOG" 'outcome=invalid_user' "refused requests are logged with their outcome"
else
    fail "the daemon of this case is not running"
fi
for log in "$WORK"/daemon-*.log; do
    expect_file_not_contains "$log" "$TOKEN_ID" "$(basename "$log") never holds the API token"
    expect_file_not_contains "$log" "$MARKER|#SBATCH|sleep 1200|sleep 600" "$(basename "$log") never holds a script line"
done
expect_file_not_contains "$SSHD_LOG" "$TOKEN_ID" "sshd's log never holds the API token"

summary
