# shellcheck shell=bash disable=SC2154,SC2034
# faults.sh case 2: the network cut in a private namespace (blackhole, then link down), under daemon and direct requests.
# Sourced by faults.sh (its setup, helpers and variables are in effect);
# not a suite on its own.

# ------------------------------------------------------------------ 2
test_case "2 network cut (private netns): every request fails within its timeouts, none hangs, status answers, recovery"
NS=ssbf-$$
VR=ssbfr$$
VN=ssbfn$$
NET_HOST="" NET_PEER=""
for _ in $(seq 20); do
    o3=$((RANDOM % 256))
    o4=$(((RANDOM % 64) * 4))
    if ! ip -o addr show | grep -qF " 10.250.$o3." && [[ -z $(ip route show "10.250.$o3.$o4/30") ]]; then
        NET_HOST=10.250.$o3.$((o4 + 1))
        NET_PEER=10.250.$o3.$((o4 + 2))
        break
    fi
done
net_ok=no
if [[ -n $NET_HOST ]] &&
    ip netns add "$NS" &&
    ip link add "$VR" type veth peer name "$VN" &&
    ip link set "$VN" netns "$NS" &&
    ip addr add "$NET_HOST/30" dev "$VR" &&
    ip link set "$VR" up &&
    ip netns exec "$NS" ip addr add "$NET_PEER/30" dev "$VN" &&
    ip netns exec "$NS" ip link set "$VN" up &&
    ip netns exec "$NS" ip link set lo up; then
    net_ok=yes
fi
expect_eq "$net_ok" yes "network namespace $NS with veth $VR ($NET_HOST) <-> $VN ($NET_PEER)"
# sshd listens on 127.0.0.1 only: a forwarder on our veth address reaches it.
# ($WORK as its tag: stop_started stops processes naming the work directory)
"$PY" "$HELPER" forward "$NET_HOST" "$SSH_PORT" 127.0.0.1 "$SSH_PORT" "$WORK" >"$WORK/forward.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for 10 grep -q forwarding "$WORK/forward.log" || fail "the forwarder did not start" "$(log_tail "$WORK/forward.log")"
sed "s/^\[127\.0\.0\.1\]:$SSH_PORT /[$NET_HOST]:$SSH_PORT /" "$KNOWN_HOSTS" >"$WORK/known_hosts_net"
NET_CONNECT_S=3 NET_COMMAND_S=5 NET_QUEUE_S=5
DNET=(--config "$CONF" --set "ssh.host=$NET_HOST" --set "ssh.known_hosts=$WORK/known_hosts_net"
    --set "ssh.connect_timeout_s=$NET_CONNECT_S" --set "ssh.command_timeout_s=$NET_COMMAND_S"
    --set "pool.queue_timeout_s=$NET_QUEUE_S" --set pool.reconnect_min_ms=100 --set pool.reconnect_max_ms=1000
    --set ssh.keepalive_interval_s=2 --set "daemon.socket=$WORK/net.sock")
DAEMON_NETNS=$NS
start_daemon "$WORK/d2.log" "${DNET[@]}" || true
DAEMON_NETNS=""
D2=$DAEMON_PID
in_ns() { ip netns exec "$NS" "$BRIDGE" "${DNET[@]}" "$@"; }
expect_exit 0 "$BRIDGE" "${DNET[@]}" --mode daemon --user "$U" query "$J1"
expect_eq "$STDOUT" "RUNNING node1" "through the namespace: daemon query works"
expect_exit 0 in_ns --mode direct --user "$U" query "$J1"
expect_eq "$STDOUT" "RUNNING node1" "through the namespace: direct query works"
NETNAME=ssbf-net-$$
job_script "$NETNAME" 600 "--job-name=$NETNAME-{i}" >"$WORK/net-submit.sh"
DAEMON_BOUND=$((NET_QUEUE_S + NET_CONNECT_S + NET_COMMAND_S + 3))
DIRECT_BOUND=$((NET_CONNECT_S + NET_COMMAND_S + 3))
SUBMIT_I=0
NET_SUBMITS=()  # per-submit result files, in the order of their job-name numbers

# net_phase NAME CUT_CMD RESTORE_CMD: cut the link, send requests (daemon
# and direct, queries and submits), check bounds, status, then recovery.
net_phase() {
    local name=$1 cut=$2 restore=$3 pids=() k
    info "phase $name: $cut"
    if ! eval "$cut"; then
        fail "$name: could not cut the link ($cut)"
        return 0
    fi
    sleep 0.5
    burst_bg "$WORK/n-$name-dq.jsonl" --count 4 --concurrency 4 --timeout 60 -- \
        "$BRIDGE" "${DNET[@]}" --mode daemon --user "$U" query "$J1"
    pids+=("$BG_PID")
    burst_bg "$WORK/n-$name-xq.jsonl" --count 2 --concurrency 2 --timeout 60 -- \
        ip netns exec "$NS" "$BRIDGE" "${DNET[@]}" --mode direct --user "$U" query "$J1"
    pids+=("$BG_PID")
    sed "s/{i}/$SUBMIT_I/" "$WORK/net-submit.sh" >"$WORK/n-$name-ds.sh"
    burst_bg "$WORK/n-$name-ds.jsonl" --count 1 --timeout 60 --stdin-template "$WORK/n-$name-ds.sh" -- \
        "$BRIDGE" "${DNET[@]}" --mode daemon --user "$U" submit
    pids+=("$BG_PID")
    sed "s/{i}/$((SUBMIT_I + 1))/" "$WORK/net-submit.sh" >"$WORK/n-$name-xs.sh"
    burst_bg "$WORK/n-$name-xs.jsonl" --count 1 --timeout 60 --stdin-template "$WORK/n-$name-xs.sh" -- \
        ip netns exec "$NS" "$BRIDGE" "${DNET[@]}" --mode direct --user "$U" submit
    pids+=("$BG_PID")
    SUBMIT_I=$((SUBMIT_I + 2))
    NET_SUBMITS+=("$WORK/n-$name-ds.jsonl" "$WORK/n-$name-xs.jsonl")
    # status answers while everything is stuck
    local t0 st dt worst=0 bad=0
    for k in 1 2 3; do
        sleep 1.5
        t0=$(now_ms)
        st=$(timeout 10 "$BRIDGE" "${DNET[@]}" status 2>&1) || bad=$((bad + 1))
        dt=$(($(now_ms) - t0))
        ((dt > worst)) && worst=$dt
        [[ $st == *'"ok":true'* ]] || bad=$((bad + 1))
    done
    expect_eq "$bad" 0 "$name: status answered ok 3 times during the cut"
    if ((worst < 2000)); then pass "$name: status within 2 s"; else fail "$name: status took $worst ms"; fi
    for k in "${pids[@]}"; do wait_bg "$k" 90; done
    local f
    for f in dq xq; do
        kv "$PY" "$HELPER" summary --out "$WORK/n-$name-$f.jsonl" --fail-re "$QUERY_FAIL_RE"
        local bound=$DAEMON_BOUND
        [[ $f == xq ]] && bound=$DIRECT_BOUND
        info "$name $f: ${KV[total]:-?} requests, ${KV[failed]:-?} failed, slowest ${KV[max_s]:-?} s (bound $bound s)"
        expect_kv hung -eq 0 "$name $f: none hung"
        expect_kv failed -eq "${KV[total]:-x}" "$name $f: every request failed"
        expect_kv fail_other -eq 0 "$name $f: each with a transport/timeout line"
        expect_kv notfound -eq 0 "$name $f: none reads as 'job gone'"
        expect_kv max_s -le "$bound" "$name $f: each within its timeouts ($bound s)"
    done
    for f in ds xs; do
        kv "$PY" "$HELPER" summary --out "$WORK/n-$name-$f.jsonl" \
            --fail-re '^slurm-ssh-bridge: (transport|timeout|submit_unknown): '
        local bound=$DAEMON_BOUND
        [[ $f == xs ]] && bound=$DIRECT_BOUND
        info "$name $f: submit: $("$PY" "$HELPER" brief "$WORK/n-$name-$f.jsonl")"
        expect_kv hung -eq 0 "$name $f: the submit did not hang"
        expect_kv fail_other -eq 0 "$name $f: the submit failed with transport/timeout/submit_unknown"
        expect_kv max_s -le "$bound" "$name $f: within its timeouts ($bound s)"
    done
    # A silent drop leaves sessions that look connected; unacknowledged data
    # older than ssh.command_timeout_s (TCP_USER_TIMEOUT) must drop them, or
    # a recovered link still fails requests behind TCP's retransmit backoff.
    if [[ $name == blackhole ]]; then
        local dropped
        # (The socket error ends the session wherever it surfaces: in a read,
        # or, when a channel was opening, in that channel's error.)
        dropped=$(count_lines "$WORK/d2.log" 'connection lost: (.* failed while opening a channel: )?Socket error: Connection timed out')
        if ((dropped > 0)); then
            pass "$name: the daemon dropped $dropped silent session(s) (TCP_USER_TIMEOUT)"
        else
            fail "$name: no session was dropped during the silent cut" "$(log_tail "$WORK/d2.log")"
        fi
    fi
    if ! eval "$restore"; then
        fail "$name: could not restore the link ($restore)"
        return 0
    fi
    local t_restore
    t_restore=$(now_ms)
    if wait_for 45 bash -c "[[ \$('$BRIDGE' ${DNET[*]} --mode daemon --user $U query $J1 2>/dev/null) == 'RUNNING node1' ]]"; then
        info "$name: daemon answered again $(($(now_ms) - t_restore)) ms after the link came back"
    else
        fail "$name: the daemon did not recover within 45 s" "$(log_tail "$WORK/d2.log")"
    fi
    burst "$WORK/n-$name-after.jsonl" --count 10 --concurrency 3 --timeout 60 -- \
        "$BRIDGE" "${DNET[@]}" --mode daemon --user "$U" query "$J1"
    kv "$PY" "$HELPER" summary --out "$WORK/n-$name-after.jsonl"
    expect_kv running -eq 10 "$name: after recovery 10 daemon queries succeed"
    expect_exit 0 in_ns --mode direct --user "$U" query "$J1"
    expect_eq "$STDOUT" "RUNNING node1" "$name: after recovery a direct query succeeds"
    expect_eq "$(alive "$D2" && echo alive)" alive "$name: the same daemon process served throughout"
}
if [[ $net_ok == yes ]] && alive "$D2"; then
    if ip netns exec "$NS" iptables -w 5 -S >/dev/null 2>&1; then
        net_phase blackhole \
            "ip netns exec $NS iptables -w 5 -I OUTPUT -o $VN -j DROP && ip netns exec $NS iptables -w 5 -I INPUT -i $VN -j DROP" \
            "ip netns exec $NS iptables -w 5 -D OUTPUT -o $VN -j DROP && ip netns exec $NS iptables -w 5 -D INPUT -i $VN -j DROP"
    else
        info "iptables does not work in the namespace: the silent-drop phase is skipped"
    fi
    net_phase linkdown "ip netns exec $NS ip link set $VN down" "ip netns exec $NS ip link set $VN up"
    # Submits sent into the cut: none may have left a job it did not report.
    sleep 3
    slurm_jobs "$NETNAME" "$WORK/n-slurm.txt"
    cat "${NET_SUBMITS[@]}" >"$WORK/n-submits.jsonl" 2>/dev/null || true
    # each file numbers its one submit 0; number them as their job names do
    "$PY" "$HELPER" renumber "$WORK/n-submits.jsonl"
    kv "$PY" "$HELPER" submits --out "$WORK/n-submits.jsonl" --slurm "$WORK/n-slurm.txt" --prefix "$NETNAME"
    expect_kv problems -eq 0 "submits sent into the cut: every job Slurm has was reported (ok or submit_unknown)"
    info "cut submits: ${KV[ok]:-?} ok, ${KV[unknown]:-?} submit_unknown (${KV[unknown_with_job]:-?} with a job), ${KV[failed]:-?} failed (${KV[codes]:-})"
fi
if [[ -n $D2 ]]; then stop_daemon "$D2"; fi
slurm_jobs "$NETNAME" "$WORK/n-slurm.txt"
cancel_listed "$WORK/n-slurm.txt"
net_teardown
NS="" VR=""

