#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Exactly-once submit, proved (issue 14): 10 rounds of 50 concurrent
# `slurm-ssh-bridge --json submit` clients through the daemon (client.mode
# auto, the default batchspawner runs with: while the daemon is dead the
# later clients go direct, which must be exactly-once too); even rounds
# SIGKILL the daemon 0.2-1.5 s into the burst, odd rounds cut the network
# between the bridge (daemon and clients, in a private network namespace)
# and the login host for 3-9 s (iptables blackhole, or link down). After each
# round the ids acknowledged to clients must be exactly Slurm's jobs of that
# round's submit.tag (no orphan, no duplicate, no id told twice), every
# "did not start" token absent from Slurm, no submit_unknown. One more round
# on a sandbox with PrivateData=jobs: lost outcomes are submit_unknown, and
# each is accounted for with root's squeue. The driver is exactly_once.py.
#
#   sudo tests/integration/exactly_once.sh build/slurm-ssh-bridge
#   EO_SEED=1234 ...   # replay the disruption moments
# SC2153: SSH_PORT, KNOWN_HOSTS come from the sourced sandbox.env.
# shellcheck disable=SC2153
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup exactly_once "${1:-}"
PY=/usr/bin/python3
DRIVER=$HERE/exactly_once.py
FORWARD=$HERE/helpers/faults_helper.py
RESULTS=$WORK/rounds.jsonl
SEED=${EO_SEED:-$$}
ROUNDS=${EO_ROUNDS:-10}
T_SUITE=$(now_ms)
NS=ssbeo-$$ VR=ssbeor$$ VN=ssbeon$$
NET_MADE=no

# Every job of this suite carries ssb:eo-...: cancel them all as root.
cancel_all() {
    local ids
    ids=$(squeue -h -a -t all -o '%i %k' 2>/dev/null | awk '$2 ~ /^ssb:eo-/ {print $1}') || true
    if [[ -n $ids ]]; then
        # shellcheck disable=SC2086 # one id per word
        scancel $ids 2>/dev/null || true
    fi
}
suite_teardown() {
    cancel_all
    stop_started "$WORK"
    if [[ $NET_MADE == yes ]]; then
        ip netns del "$NS" 2>/dev/null || true
        ip link del "$VR" 2>/dev/null || true
    fi
}

test_case "the check catches an orphan, a duplicate, an id told twice, a wrong 'did not start'"
expect_exit 0 "$PY" "$DRIVER" selftest
[[ $EXIT_CODE == 0 ]] || info "$STDOUT"

sandbox_up "$SB" --cpus 2 || exit 1
use_sandbox "$SB"

# ------------------------------------------------------------------ the network
# The daemon and the clients run in a private namespace whose veth reaches
# sshd through a forwarder (as faults.sh case 2): cutting that link cuts
# both the daemon's pool and the clients' direct token lookups.
NET_HOST="" NET_PEER=""
for _ in $(seq 20); do
    o3=$((RANDOM % 256)) o4=$(((RANDOM % 64) * 4))
    if ! ip -o addr show | grep -qF " 10.251.$o3." && [[ -z $(ip route show "10.251.$o3.$o4/30") ]]; then
        NET_HOST=10.251.$o3.$((o4 + 1)) NET_PEER=10.251.$o3.$((o4 + 2))
        break
    fi
done
if [[ -n $NET_HOST ]] && ip netns add "$NS" && NET_MADE=yes &&
    ip link add "$VR" type veth peer name "$VN" && ip link set "$VN" netns "$NS" &&
    ip addr add "$NET_HOST/30" dev "$VR" && ip link set "$VR" up &&
    ip netns exec "$NS" ip addr add "$NET_PEER/30" dev "$VN" &&
    ip netns exec "$NS" ip link set "$VN" up && ip netns exec "$NS" ip link set lo up; then
    pass "network namespace $NS ($NET_PEER) -> $NET_HOST"
else
    fail "cannot build the network namespace"
    summary
fi
"$PY" "$FORWARD" forward "$NET_HOST" "$SSH_PORT" 127.0.0.1 "$SSH_PORT" "$WORK" >"$WORK/forward.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for 10 grep -q forwarding "$WORK/forward.log" || fail "the forwarder did not start" "$(log_tail "$WORK/forward.log")"
sed "s/^\[127\.0\.0\.1\]:$SSH_PORT /[$NET_HOST]:$SSH_PORT /" "$KNOWN_HOSTS" >"$WORK/known_hosts_net"
if ip netns exec "$NS" iptables -w 5 -S >/dev/null 2>&1; then
    BLACKHOLE=yes
else
    BLACKHOLE=no
    info "iptables does not work in the namespace: every cut is a link down"
fi
cut_cmd() { # KIND: the command lines that cut and heal the link
    if [[ $1 == blackhole ]]; then
        local r="-o $VN -j DROP" s="-i $VN -j DROP"
        CUT="ip netns exec $NS iptables -w 5 -I OUTPUT $r && ip netns exec $NS iptables -w 5 -I INPUT $s"
        HEAL="ip netns exec $NS iptables -w 5 -D OUTPUT $r && ip netns exec $NS iptables -w 5 -D INPUT $s"
    else
        CUT="ip netns exec $NS ip link set $VN down"
        HEAL="ip netns exec $NS ip link set $VN up"
    fi
}

# Small timeouts keep a round short: a lost outcome settles 8 s after its
# submit was sent; the lookups of a cut round retry until the cut heals.
NETCONF=(--config "$CONF" --set "ssh.host=$NET_HOST" --set "ssh.known_hosts=$WORK/known_hosts_net"
    --set ssh.connect_timeout_s=3 --set ssh.command_timeout_s=8 --set pool.queue_timeout_s=10
    --set ssh.keepalive_interval_s=2 --set pool.reconnect_min_ms=100 --set pool.reconnect_max_ms=1000
    --set "daemon.socket=$WORK/eo.sock")

# ------------------------------------------------------------------ the rounds
test_case "$ROUNDS rounds of 50 submits, daemon SIGKILLed (even) or network cut (odd): acknowledged ids = Slurm's jobs"
D=""
for ((r = 1; r <= ROUNDS; r++)); do
    tag=eo-r$r
    conf=("${NETCONF[@]}" --set "submit.tag=$tag")
    DAEMON_NETNS=$NS
    start_daemon_logged "$WORK/d$r.log" "${conf[@]}" || { fail "round $r: the daemon did not start"; continue; }
    DAEMON_NETNS=""
    D=$DAEMON_PID
    disown "$D"
    # A serving daemon has its pool connected: one listing through it first,
    # or a cut at 0.2 s only shows that nothing connects (all "not sent").
    ip netns exec "$NS" "$BRIDGE" "${conf[@]}" --mode daemon jobs >/dev/null 2>&1 || info "round $r: warm-up listing failed"
    if ((r % 2 == 0)); then
        fault="daemon SIGKILL"
        args=(--disrupt "kill -KILL $D")
    else
        kind=linkdown
        [[ $BLACKHOLE == yes && $((r % 4)) == 1 ]] && kind=blackhole
        cut_cmd "$kind"
        # 3-9 s: shorter than ssh.command_timeout_s (TCP recovers the
        # sessions) or longer (in-flight execs time out, sessions drop).
        secs=$((3 + (SEED + r) % 7))
        fault="cut $secs s ($kind)"
        args=(--disrupt "$CUT" --heal "$HEAL" --heal-after "$secs")
    fi
    rc=0
    "$PY" "$DRIVER" round --tag "$tag" --label "$r" --fault "$fault" --results "$RESULTS" \
        --seed "$((SEED + r))" --expect-unknown zero --cancel "${args[@]}" -- \
        ip netns exec "$NS" "$BRIDGE" "${conf[@]}" || rc=$?
    if ((rc == 0)); then pass "round $r"; else fail "round $r ($fault): acknowledged ids != Slurm's jobs, see above"; fi
    if alive "$D"; then stop_daemon "$D" 10; fi
done
T_ROUNDS=$(now_ms)

# ------------------------------------------------------------------ PrivateData
test_case "PrivateData=jobs, daemon SIGKILLed: lost outcomes are submit_unknown, each accounted for by root's squeue"
SBP=$WORK/sb-private
if sandbox_up "$SBP" --private-data jobs; then
    use_sandbox "$SBP"
    pconf=(--config "$CONF" --set ssh.command_timeout_s=8 --set pool.queue_timeout_s=10
        --set submit.tag=eo-private --set "daemon.socket=$WORK/eo-private.sock")
    if start_daemon_logged "$WORK/dp.log" "${pconf[@]}"; then
        disown "$DAEMON_PID"
        rc=0
        "$PY" "$DRIVER" round --tag eo-private --label private --fault "daemon SIGKILL, PrivateData=jobs" \
            --results "$RESULTS" --seed "$SEED" --expect-unknown some --cancel \
            --disrupt "kill -KILL $DAEMON_PID" -- "$BRIDGE" "${pconf[@]}" || rc=$?
        if ((rc == 0)); then pass "private round"; else fail "private round: see above"; fi
        if alive "$DAEMON_PID"; then stop_daemon "$DAEMON_PID" 10; fi
        unknown=$("$PY" -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["unknown"])' "$RESULTS") || unknown="?"
        info "PrivateData round: $unknown submit_unknown"
    fi
    cancel_all
    use_sandbox "$SB"
else
    fail "the PrivateData sandbox did not come up"
fi

echo
echo "Exactly-once rounds (EO_SEED=$SEED):"
echo
"$PY" "$DRIVER" table "$RESULTS"
echo
info "rounds took $(((T_ROUNDS - T_SUITE) / 1000)) s, the suite $((($(now_ms) - T_SUITE) / 1000)) s"
cancel_all
summary
