#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Security suite (issue 7, "Bad input" and "Security"): the real
# slurm-ssh-bridge binary and its daemon against a real sshd + sudo + munge +
# Slurm sandbox on loopback (tests/sandbox/sandbox.sh).
#
#   1  host key unknown or changed: refused naming the known_hosts file and
#      the host, on the direct and the daemon path; nothing is trusted on first use
#   2  identity file permissions: refused or warned exactly as documented
#   3  the daemon socket: other uids cannot connect (0600), a configured
#      group can (0660 + socket_group), nobody else
#   4  hostile users, job ids, env names and raw protocol lines (malformed,
#      truncated, non-UTF-8, nested, oversized, unknown ops/fields) are refused
#      with their documented codes before any SSH login; the daemon survives
#   5  only the three configured wrappers ever run, through `sudo -n`, as
#      whatever user sudoers allows (sampled argv of every process of the
#      login host's sandbox); sudo never prompts; explain's scontrol/sacct
#      run as the service account in their fixed form
#   6  secrets (JUPYTERHUB_API_TOKEN, JPY_API_TOKEN, a site pattern) never in
#      any argv (sampled during submits, daemon and direct), in the daemon's
#      log, in `status`, or in error messages
#
#   sudo tests/integration/security.sh build/slurm-ssh-bridge
#   KEEP=1 sudo tests/integration/security.sh build/slurm-ssh-bridge   # keep logs
#
# Needs root (sandbox, runuser). Every wait is bounded; the cleanup stops only
# the processes this suite started (by PID) and takes its sandbox down.
# SC2153: SSH_PORT, SSHD_LOG, ... come from the sourced sandbox.env.
# shellcheck disable=SC2153
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup security "${1:-}"
PY=/usr/bin/python3
# probe, hostile, oneshot, submit, sample, argv ... (on the shared
# helpers/ndjson.py). Other accounts run it too (probe): the checkout is
# world-readable.
HELPER=$HERE/helpers/security_helper.py
U=alice.proj1
T_SUITE=${EPOCHREALTIME//[.,]/}

sandbox_up "$SB" || exit 1
use_sandbox "$SB"

logins() { count_lines "$SSHD_LOG" 'Accepted publickey'; }
sessions() { count_lines "$SSHD_LOG" 'Starting session:'; }
tcp_connections() { count_lines "$SSHD_LOG" '^Connection from'; }


# start_daemon LOG BRIDGE-ARGS...: the daemon, disowned (no job-control
# noise when a case kills it); see start_daemon_logged in lib.sh.
start_daemon() {
    start_daemon_logged "$@" || return 1
    disown "$DAEMON_PID"
}
# as USER CMD...: run CMD as another account with a minimal environment.
as() {
    local user=$1
    shift
    runuser -u "$user" -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
}

OUT=$WORK/jobout  # where test jobs write the environment they got
mkdir -m 1777 "$OUT"
job_script() { # NAME SLEEP_S: a job that records its environment
    printf '#!/bin/bash\n#SBATCH --job-name=%s\n#SBATCH --output=/dev/null\n#SBATCH --time=30\n' "$1"
    # shellcheck disable=SC2016 # $SLURM_JOB_ID belongs to the job script
    printf 'env -0 > %s/env.$SLURM_JOB_ID\nsleep %s\n' "$OUT" "$2"
}
job_script ssbs-main 3000 >"$WORK/main.sh"
J1=$("$BRIDGE" --config "$CONF" --mode direct --user "$U" submit <"$WORK/main.sh") || true
[[ $J1 =~ ^[0-9]+$ ]] || { echo "$0: cannot submit the main job: $J1" >&2; exit 1; }
wait_for 30 bash -c "[[ \$(squeue -h -j $J1 -o %T) == RUNNING ]]" || { echo "$0: job $J1 does not run" >&2; exit 1; }

# The secrets: distinctive ids (what the checks grep for) inside values with
# every character that ever broke shell quoting.
SECRET_A=ssbsecA$RANDOM$RANDOM
SECRET_B=ssbsecB$RANDOM$RANDOM
SECRET_C=ssbsecC$RANDOM$RANDOM
VAL_A="$SECRET_A-'q' \"dq\" \$(id) \`id\` end"
VAL_B="$SECRET_B {\"json\": [1]} \\ end"
VAL_C="$SECRET_C;rm -rf /tmp/nothing"
SECRET_RE="$SECRET_A|$SECRET_B|$SECRET_C|ssbNULsecret"
SITE_VAR=SSB_SITE_CRED
SECSET=(--set "env.forward=JUPYTERHUB_*,JPY_API_TOKEN,$SITE_VAR"
    --set "env.secret_patterns=*TOKEN*,*SECRET*,*PASSWORD*,*KEY*,SSB_SITE_*")
# with_secrets CMD...: CMD with the secrets in its environment (exported in a
# subshell: an `env NAME=VALUE` command line would itself put them in argv).
with_secrets() {
    (
        export JUPYTERHUB_API_TOKEN="$VAL_A" JPY_API_TOKEN="$VAL_B" "$SITE_VAR=$VAL_C"
        exec "$@"
    )
}
# with_var NAME VALUE CMD...: CMD (an absolute path) with one more variable,
# whatever its name, the value passed through the environment, never argv.
with_var() {
    local name=$1 value=$2
    shift 2
    SSB_WITH_VALUE=$value "$PY" "$HELPER" setenv "$name" "$@"
}
ERRS=$WORK/errors.txt  # every error text a secret-bearing request produced
: >"$ERRS"
keep_err() { printf '%s\n%s\n' "$STDOUT" "$STDERR" >>"$ERRS"; }

# ------------------------------------------------------------------ 1
test_case "1 host key changed or unknown: refused with the file and the host, direct and daemon; nothing trusted on first use"
l0=$(logins)
HOST_RE="\[127\.0\.0\.1\]:$SSH_PORT"
: >"$WORK/empty_known_hosts"
sum_wrong=$(sha256sum <"$KNOWN_HOSTS_WRONG")
expect_exit 255 with_secrets "$BRIDGE" --config "$CONF" "${SECSET[@]}" --set "ssh.known_hosts=$KNOWN_HOSTS_WRONG" --mode direct --user "$U" submit <"$WORK/main.sh"
keep_err
expect_match "$STDERR" "^slurm-ssh-bridge: host_key: host key of $HOST_RE does not match its entry in $KNOWN_HOSTS_WRONG " "direct, changed key: file and host named"
expect_exit 255 "$BRIDGE" --config "$CONF" --set "ssh.known_hosts=$WORK/empty_known_hosts" --mode direct --user "$U" query "$J1"
expect_match "$STDERR" "^slurm-ssh-bridge: host_key: host $HOST_RE is not in $WORK/empty_known_hosts " "direct, unknown key: file and host named"
for kind in wrong empty; do
    kh=$KNOWN_HOSTS_WRONG
    [[ $kind == empty ]] && kh=$WORK/empty_known_hosts
    HK=(--config "$CONF" "${SECSET[@]}" --set "ssh.known_hosts=$kh" --set "daemon.socket=$WORK/hk-$kind.sock" --set log.level=debug)
    start_daemon "$WORK/d-hk-$kind.log" "${HK[@]}" || continue
    expect_exit 255 "$BRIDGE" "${HK[@]}" --mode daemon --user "$U" query "$J1"
    if [[ $kind == wrong ]]; then
        expect_match "$STDERR" "^slurm-ssh-bridge: host_key: host key of $HOST_RE does not match its entry in $kh " "daemon, changed key: file and host named"
    else
        expect_match "$STDERR" "^slurm-ssh-bridge: host_key: host $HOST_RE is not in $kh " "daemon, unknown key: file and host named"
    fi
    expect_eq "$(wc -l <<<"$STDERR")" 1 "daemon ($kind): one stderr line"
    expect_exit 255 with_secrets "$BRIDGE" "${HK[@]}" --mode daemon --user "$U" submit <"$WORK/main.sh"
    keep_err
    expect_match "$STDERR" '^slurm-ssh-bridge: host_key: ' "daemon ($kind): the submit is refused too"
    st=$("$BRIDGE" "${HK[@]}" status 2>&1) || true
    printf '%s\n' "$st" >>"$ERRS"
    expect_match "$st" '"last_error":"[^"]*(does not match|is not in)' "daemon ($kind): status shows why"
    stop_daemon "$DAEMON_PID"
done
expect_eq "$(wc -c <"$WORK/empty_known_hosts" | tr -d ' ')" 0 "the empty known_hosts was not written (no trust on first use)"
expect_eq "$(sha256sum <"$KNOWN_HOSTS_WRONG")" "$sum_wrong" "the wrong known_hosts was not changed"
expect_eq "$(($(logins) - l0))" 0 "no login was attempted past a bad host key (our key never offered)"

# ------------------------------------------------------------------ 2
test_case "2 identity file permissions: 0600/0400 used, group/other access refused naming the file and mode (warned with strict_key_permissions=false)"
mkdir -m 0700 "$WORK/keys"
l0=$(logins)
c0=$(tcp_connections)
for mode in 0644 0640 0604 0660 0606 0666 0610 0601; do
    k=$WORK/keys/key-$mode
    cp "$CLIENT_KEY" "$k"
    chmod "$mode" "$k"
    expect_exit 255 "$BRIDGE" --config "$CONF" --set "ssh.identity_file=$k" --mode direct --user "$U" query "$J1"
    expect_match "$STDERR" "^slurm-ssh-bridge: auth: identity file $k has permissions $mode: .*chmod 600 $k.*ssh\.strict_key_permissions = false" "mode $mode refused with the documented message"
    expect_eq "$(wc -l <<<"$STDERR")" 1 "mode $mode: one stderr line"
done
expect_eq "$(($(logins) - l0))" 0 "no login with a refused key"
expect_eq "$(($(tcp_connections) - c0))" 0 "not even a TCP connection to sshd"
for mode in 0600 0400; do
    k=$WORK/keys/key-$mode
    cp "$CLIENT_KEY" "$k"
    chmod "$mode" "$k"
    expect_exit 0 "$BRIDGE" --config "$CONF" --set "ssh.identity_file=$k" --mode direct --user "$U" query "$J1"
    expect_eq "$STDOUT" "RUNNING node1" "mode $mode is accepted"
done
k=$WORK/keys/key-0640
expect_exit 0 "$BRIDGE" --config "$CONF" --set "ssh.identity_file=$k" --set ssh.strict_key_permissions=false --mode direct --user "$U" query "$J1"
expect_eq "$STDOUT" "RUNNING node1" "strict_key_permissions=false: the request runs"
expect_exit 0 "$BRIDGE" --config "$CONF" --set "ssh.identity_file=$k" --set ssh.strict_key_permissions=false check
expect_match "$STDOUT" "\[WARN\] identity +identity file $k has permissions 0640" "check warns"
expect_exit 1 "$BRIDGE" --config "$CONF" --set "ssh.identity_file=$k" check
expect_match "$STDOUT" "\[FAIL\] identity +identity file $k has permissions 0640" "check fails it when strict"
# the daemon applies the same rule, at start (issue 14: it used to start and fail every request)
KD=(--config "$CONF" --set "ssh.identity_file=$WORK/keys/key-0644" --set "daemon.socket=$WORK/key.sock")
expect_exit 2 timeout 20 "$BRIDGE" "${KD[@]}" serve
expect_match "$STDERR" "^slurm-ssh-bridge: config: serve cannot start: identity file $WORK/keys/key-0644 has permissions 0644" "daemon: refuses to start, with the same message"
KD=(--config "$CONF" --set "ssh.identity_file=$WORK/keys/key-0640" --set ssh.strict_key_permissions=false --set "daemon.socket=$WORK/key.sock")
start_daemon "$WORK/d-key2.log" "${KD[@]}" || true
expect_exit 0 "$BRIDGE" "${KD[@]}" --mode daemon --user "$U" query "$J1"
expect_eq "$STDOUT" "RUNNING node1" "daemon with strict_key_permissions=false: serves"
expect_file_contains "$WORK/d-key2.log" "warn .*identity file $WORK/keys/key-0640 has permissions 0640" "daemon: the warning is logged"
stop_daemon "$DAEMON_PID"

# ------------------------------------------------------------------ 3
test_case "3 daemon socket: 0600 keeps other uids out; 0660 + socket_group lets that group in, nobody else"
OUTSIDER=$SANDBOX_OUTSIDER
# socket_access NAME SOCKARGS...: start a daemon, report who can connect
socket_daemon() {
    local name=$1
    shift
    SD=(--config "$CONF" --set "daemon.socket=$WORK/sock-$name/bridge.sock" "$@")
    mkdir -m 0755 "$WORK/sock-$name"
    start_daemon "$WORK/d-sock-$name.log" "${SD[@]}"
}
# can_connect USER SOCKET: the helper's probe as USER ("ok" / errno name)
can_connect() { as "$1" "$PY" "$HELPER" probe "$2" 2>&1 || true; }

if socket_daemon default; then
    sock=$WORK/sock-default/bridge.sock
    expect_eq "$(stat -c '%a %U' "$sock")" "600 root" "default socket: mode 0600, owned by the daemon's user"
    expect_eq "$(can_connect "$U" "$sock")" EACCES "alice (another uid) cannot connect"
    expect_eq "$(can_connect nobody "$sock")" EACCES "nobody cannot connect"
    expect_exit 255 as "$U" "$BRIDGE" "${SD[@]}" --mode daemon --user "$U" query "$J1"
    expect_match "$STDERR" '^slurm-ssh-bridge: daemon_unavailable: .*Permission denied' "the CLI as alice: daemon_unavailable, permission denied"
    expect_exit 0 "$BRIDGE" "${SD[@]}" --mode daemon --user "$U" query "$J1"
    expect_eq "$STDOUT" "RUNNING node1" "the daemon's own uid can"
    stop_daemon "$DAEMON_PID"
fi
if socket_daemon group --set daemon.socket_mode=0660 --set "daemon.socket_group=$SANDBOX_GROUP"; then
    sock=$WORK/sock-group/bridge.sock
    expect_eq "$(stat -c '%a %G' "$sock")" "660 $SANDBOX_GROUP" "0660 + socket_group: mode and group set"
    expect_eq "$(can_connect "$U" "$sock")" ok "alice (in $SANDBOX_GROUP) can connect"
    expect_exit 0 as "$U" "$BRIDGE" "${SD[@]}" --mode daemon --user "$U" query "$J1"
    expect_eq "$STDOUT" "RUNNING node1" "alice's CLI is served through the group socket"
    expect_eq "$(can_connect "$OUTSIDER" "$sock")" EACCES "$OUTSIDER (not in the group) cannot connect"
    expect_eq "$(can_connect nobody "$sock")" EACCES "nobody cannot connect"
    stop_daemon "$DAEMON_PID"
fi
if socket_daemon nogroup --set daemon.socket_mode=0660; then
    sock=$WORK/sock-nogroup/bridge.sock
    expect_eq "$(stat -c '%a %G' "$sock")" "660 root" "0660 without socket_group: the daemon's group"
    expect_eq "$(can_connect "$U" "$sock")" EACCES "alice cannot connect"
    stop_daemon "$DAEMON_PID"
fi

# ------------------------------------------------------------------ 4
test_case "4 hostile users, job ids, env names and protocol lines: refused with their codes before any SSH login; the daemon survives"
HD=(--config "$CONF" "${SECSET[@]}" --set "daemon.socket=$WORK/hostile.sock" --set limits.max_script_bytes=4096
    --set daemon.max_line_bytes=65536 --set log.level=debug)
start_daemon "$WORK/d-hostile.log" "${HD[@]}" || true
DH=$DAEMON_PID
l0=$(logins)
s0=$(sessions)
c0=$(tcp_connections)
# through the CLI, daemon path
n_cli=0
# shellcheck disable=SC2016 # the $(...) and backticks are the hostile input
for bad_user in 'a;b' '$(id)' '`id`' "a'b" 'a b' $'a\nb' '-u' '' 'älice' "$(printf 'x%.0s' {1..65})" 'root;id' '.hidden'; do
    expect_exit 2 "$BRIDGE" "${HD[@]}" --mode daemon --user "$bad_user" query 1
    expect_match "$STDERR" '^slurm-ssh-bridge: (invalid_user|usage): ' "CLI user [$bad_user]: refused"
    n_cli=$((n_cli + 1))
done
# shellcheck disable=SC2016
for bad_id in '' '-1' 'abc' '1 2' '1;$(id)' '99999999999' '0' '01' '1;' $'1\n2'; do
    for op in query cancel; do
        expect_exit 2 "$BRIDGE" "${HD[@]}" --mode daemon --user "$U" "$op" "$bad_id"
        expect_match "$STDERR" '^slurm-ssh-bridge: (invalid_job_id|usage): ' "CLI $op job id [$bad_id]: refused"
        n_cli=$((n_cli + 1))
    done
done
# env names the CLI would forward (they match env.forward) but must not
# shellcheck disable=SC2016
for bad_name in 'JUPYTERHUB_A;B' 'JUPYTERHUB_$(id)' 'JUPYTERHUB_A B' 'JUPYTERHUB_é' 'JUPYTERHUB_A-B'; do
    for mode in daemon direct; do
        expect_exit 2 with_var "$bad_name" "$VAL_A" "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$U" submit <"$WORK/main.sh"
        keep_err
        expect_match "$STDERR" '^slurm-ssh-bridge: invalid_env: invalid environment variable name' "CLI ($mode) env name [$bad_name]: refused"
        n_cli=$((n_cli + 1))
    done
done
# names that steer the shell, loader or sudo, even when env.forward says "*"
for bad_name in LD_PRELOAD LD_LIBRARY_PATH BASH_ENV ENV PATH IFS SHELLOPTS PS4 HOME SUDO_ASKPASS 'BASH_FUNC_x%%'; do
    expect_exit 2 env -i "$bad_name=" "$BRIDGE" "${HD[@]}" --set 'env.forward=*' --mode direct --user "$U" submit <"$WORK/main.sh"
    expect_match "$STDERR" "^slurm-ssh-bridge: invalid_env: invalid environment variable name \"$bad_name\"" "env.forward=*: $bad_name refused"
    n_cli=$((n_cli + 1))
done
head -c 5000 /dev/zero | tr '\0' '#' >"$WORK/big.sh"
expect_exit 2 "$BRIDGE" "${HD[@]}" --mode daemon --user "$U" submit <"$WORK/big.sh"
expect_match "$STDERR" '^slurm-ssh-bridge: script_too_large: ' "CLI: a script over limits.max_script_bytes"
info "$n_cli hostile CLI invocations"
# raw protocol lines (valid UTF-8), all on one connection
"$PY" "$HELPER" hostile "$WORK/hostile.sock" >"$WORK/hostile.out" 2>&1 || true
n_raw=0
bad_raw=()
while IFS=$'\t' read -r label want got; do
    n_raw=$((n_raw + 1))
    [[ $want == "$got" ]] || bad_raw+=("$label: expected $want, got $got")
done <"$WORK/hostile.out"
info "$n_raw raw protocol lines"
if ((n_raw >= 100 && ${#bad_raw[@]} == 0)); then
    pass "raw protocol: each line answered with its documented code, the connection stayed usable"
else
    fail "raw protocol: $n_raw lines answered, ${#bad_raw[@]} wrong" "${bad_raw[@]:0:12}" "$(tail -n 3 "$WORK/hostile.out")"
fi
# a line over daemon.max_line_bytes: answered, then the connection closes
expect_eq "$("$PY" "$HELPER" oneshot "$WORK/hostile.sock" repeat:70000)" bad_request "a line over daemon.max_line_bytes: bad_request"
expect_eq "$(alive "$DH" && echo alive)" alive "the daemon is alive after all valid-UTF-8 hostile lines"
# lines that are not UTF-8: each on its own connection; the daemon must answer and survive
restarts=0
for hex in \
    "$(printf '%s' '{"v":1,"id":"u8","op":"query","user":"alice.p' | od -An -v -tx1 | tr -d ' \n')85$(printf '%s' 'roj1","job_id":"1"}' | od -An -v -tx1 | tr -d ' \n')" \
    "fffe7b7d" \
    "$(printf '{"v":1,"id":"u9","op":"query","user":"alice.proj1","job_id":"1","%s' "$(printf 'a%.0s' {1..63})" | od -An -v -tx1 | tr -d ' \n')c3a9223a317d" \
    "$(printf '{"v":1,"id":"u10","op":"%s' "$(printf 'q%.0s' {1..63})" | od -An -v -tx1 | tr -d ' \n')c3a9$(printf '","user":"alice.proj1","job_id":"1"}' | od -An -v -tx1 | tr -d ' \n')"; do
    got=$("$PY" "$HELPER" oneshot "$WORK/hostile.sock" "$hex" 2>&1) || true
    expect_eq "$got" bad_request "non-UTF-8 / cut-UTF-8 line ${hex:0:40}...: answered bad_request"
    if sleep 0.3 && alive "$DH"; then
        pass "the daemon survives it"
    else
        fail "the daemon died on line ${hex:0:60}..." "$(log_tail "$WORK/d-hostile.log" 3)"
        restarts=$((restarts + 1))
        start_daemon "$WORK/d-hostile.log" "${HD[@]}" || true
        DH=$DAEMON_PID
    fi
done
expect_eq "$(($(logins) - l0))" 0 "sshd accepted no login during all of this"
expect_eq "$(($(sessions) - s0))" 0 "sshd started no session"
expect_eq "$(($(tcp_connections) - c0))" 0 "no TCP connection reached sshd"
expect_file_contains "$WORK/d-hostile.log" 'outcome=invalid_user' "the daemon logged the refusals"

# ------------------------------------------------------------------ 5
test_case "5 only the three configured wrappers run, through sudo -n, as users sudoers allows; sudo never prompts"
STOP=$WORK/sample.stop
"$PY" "$HELPER" sample "${SANDBOX_CGROUP:-/nonexistent}" "$STOP" "$WORK/argv-all.txt" "$WORK/argv-sandbox.txt" &
SAMPLER=$!
STARTED_PIDS+=("$SAMPLER")
sleep 0.3
for mode in daemon direct; do
    for ((k = 0; k < 3; k++)); do
        expect_exit 0 "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$U" query "$J1"
    done
    # explain: the service account's scontrol (and sacct for a job slurmctld
    # does not hold), no sudo; another user's job reads as unknown
    expect_exit 0 "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$U" explain "$J1"
    expect_match "$STDOUT" '^RUNNING' "$mode: explain of the user's own running job"
    expect_exit 1 "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$SANDBOX_OUTSIDER" explain "$J1"
    expect_match "$STDERR" "slurm-ssh-bridge: not_found: Slurm knows no job $J1 of user $SANDBOX_OUTSIDER" "$mode: explain of another user's job is not_found"
    expect_exit 1 "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$U" explain 4000000000
    # accounts sudoers does not allow: refused by sudo -n, at once, never a prompt
    for who in "$SANDBOX_OUTSIDER" root "$SANDBOX_SERVICE_USER" nobody daemon no.such.user; do
        t0=$(now_ms)
        if [[ $mode == daemon && ${SLURM_SSH_BRIDGE_STATUS_MODE:-} == coalesced ]]; then
            # Coalesced status runs no sudo for a query: the daemon's owner
            # check answers $J1 (alice's) to $who as a gone job, never its
            # state. sudo's refusal is then checked on cancel, which is never
            # coalesced.
            expect_exit 1 "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$who" query "$J1"
            expect_eq "$STDOUT$STDERR" "slurm_load_jobs error: Invalid job id specified" "$mode (coalesced): $who is told nothing about job $J1"
            expect_exit 255 "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$who" cancel "$J1"
            expect_match "$STDERR" "^slurm-ssh-bridge: auth: sudo on the login host refused to run the cancel wrapper as $who: " "$mode: sudo refuses $who's cancel: one auth line (never the wrapper's output)"
        else
            expect_exit 255 "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$who" query "$J1"
            expect_match "$STDERR" "^slurm-ssh-bridge: auth: sudo on the login host refused to run the query wrapper as $who: " "$mode: sudo refuses $who: one auth line (never the wrapper's output)"
        fi
        dt=$(($(now_ms) - t0))
        ((dt < 10000)) || fail "$mode: sudo's refusal for $who took $dt ms (a prompt?)"
    done
    J=$(with_secrets "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$SANDBOX_USER2" submit <"$WORK/main.sh" 2>&1) || true
    if [[ $J =~ ^[0-9]+$ ]]; then
        expect_exit 0 "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$SANDBOX_USER2" cancel "$J"
    else
        fail "$mode submit as $SANDBOX_USER2" "$J"
    fi
done
touch "$STOP"
wait_for 20 gone "$SAMPLER" || fail "the argv sampler did not stop"
kv "$PY" "$HELPER" argv "$WORK/argv-sandbox.txt" "$WRAPPERS_DIR" "$SB/slurm/spool"
info "sampled sandbox processes: ${KV[processes]:-?} distinct (sudo ${KV[sudo]:-?}, wrappers ${KV[wrapper]:-?}, slurm ${KV[slurm_cmd]:-?}, explain's scontrol/sacct ${KV[explain_cmd]:-?}, login shell ${KV[login_shell]:-?}, env snippet ${KV[snippet]:-?})"
if [[ ${KV[unexpected]:-x} == 0 ]]; then
    pass "every sampled command on the login host has one of the fixed forms"
else
    fail "commands outside the fixed forms ran on the login host" "$KV_NOTES"
fi
if ((${KV[sudo]:-0} >= 1 && ${KV[wrapper]:-0} >= 1)); then
    pass "the sampler saw sudo and the wrappers (it was looking)"
else
    fail "the sampler saw no sudo/wrapper process" "$(head -c 600 "$WORK/argv-sandbox.txt")"
fi
# shellcheck disable=SC2016
expect_file_not_contains "$SSHD_LOG" 'Failed password|keyboard-interactive' "no password or interactive authentication on the login host"

# ------------------------------------------------------------------ 6
test_case "6 secrets never in argv (sampled during daemon and direct submits), the daemon's log, status, or error messages"
STOP=$WORK/sample2.stop
"$PY" "$HELPER" sample "${SANDBOX_CGROUP:-/nonexistent}" "$STOP" "$WORK/argv-all2.txt" "$WORK/argv-sandbox2.txt" &
SAMPLER=$!
STARTED_PIDS+=("$SAMPLER")
sleep 0.3
SUBMITTED=()
for mode in daemon direct; do
    for ((k = 0; k < 2; k++)); do
        J=$(with_secrets "$BRIDGE" "${HD[@]}" --mode "$mode" --user "$U" submit <"$WORK/main.sh" 2>&1) || true
        if [[ $J =~ ^[0-9]+$ ]]; then SUBMITTED+=("$mode:$J"); else fail "$mode submit with secrets" "$J"; fi
    done
done
# the raw protocol and the `request` subcommand, env object in the request
resp=$(with_secrets "$PY" "$HELPER" submit "$WORK/hostile.sock" raw1 "$U" "$WORK/main.sh" \
    JUPYTERHUB_API_TOKEN JPY_API_TOKEN "$SITE_VAR" 2>&1) || true
if [[ $resp =~ \"job_id\":\"([0-9]+)\" ]]; then SUBMITTED+=("raw:${BASH_REMATCH[1]}"); else fail "raw protocol submit" "$resp"; fi
with_secrets "$PY" "$HELPER" request "$U" "$WORK/main.sh" JUPYTERHUB_API_TOKEN JPY_API_TOKEN "$SITE_VAR" >"$WORK/request.json"
expect_exit 0 "$BRIDGE" "${HD[@]}" request <"$WORK/request.json"
if [[ $STDOUT =~ \"job_id\":\"([0-9]+)\" ]]; then SUBMITTED+=("request:${BASH_REMATCH[1]}"); fi
touch "$STOP"
wait_for 20 gone "$SAMPLER" || fail "the argv sampler did not stop"
info "submitted: ${SUBMITTED[*]}"
expect_eq "${#SUBMITTED[@]}" 6 "six submits carried the secrets (2 daemon, 2 direct, raw protocol, request)"
rounds=$(sed -n 's/^# rounds=//p' "$WORK/argv-all2.txt")
info "argv sampler: $rounds rounds over all processes"
expect_file_contains "$WORK/argv-all2.txt" 'slurmspawner_sbatch' "the sampler saw the submits' remote processes"
expect_file_not_contains "$WORK/argv-all2.txt" "$SECRET_RE" "no process's argv held a secret during the submits"
expect_file_not_contains "$WORK/argv-all.txt" "$SECRET_RE" "nor during case 5's submits"
# the secrets did travel: the daemon-path job got them intact
first_daemon=${SUBMITTED[0]#daemon:}
if wait_for 30 test -s "$OUT/env.$first_daemon"; then
    got=$(tr '\0' '\n' <"$OUT/env.$first_daemon" | grep '^JUPYTERHUB_API_TOKEN=' | head -n 1)
    expect_eq "${got#JUPYTERHUB_API_TOKEN=}" "$VAL_A" "the daemon-path job has JUPYTERHUB_API_TOKEN intact"
    got=$(tr '\0' '\n' <"$OUT/env.$first_daemon" | grep '^JPY_API_TOKEN=' | head -n 1)
    expect_eq "${got#JPY_API_TOKEN=}" "$VAL_B" "and JPY_API_TOKEN"
else
    fail "job $first_daemon did not record its environment"
fi
for s in "${SUBMITTED[@]}"; do scancel "${s#*:}" 2>/dev/null || true; done

# errors forced with the secrets set
expect_exit 2 with_secrets "$BRIDGE" "${HD[@]}" --mode daemon --user 'a;b' submit <"$WORK/main.sh"
keep_err
expect_match "$STDERR" '^slurm-ssh-bridge: invalid_user: ' "bad user (daemon mode)"
# shellcheck disable=SC2016
expect_exit 2 with_secrets "$BRIDGE" "${HD[@]}" --mode direct --user '$(id)' submit <"$WORK/main.sh"
keep_err
expect_exit 2 with_secrets "$BRIDGE" "${HD[@]}" --mode direct --set limits.max_env_bytes=16 --user "$U" submit <"$WORK/main.sh"
keep_err
expect_match "$STDERR" '^slurm-ssh-bridge: invalid_env: forwarded environment is' "env over limits.max_env_bytes"
expect_exit 2 with_secrets "$BRIDGE" "${HD[@]}" --mode direct --set env.method=setenv --user "$U" submit <"$WORK/main.sh"
keep_err
expect_match "$STDERR" '^slurm-ssh-bridge: config: sshd on .* refused the environment variable' "direct: refused env request names the variable"
SE=(--config "$CONF" "${SECSET[@]}" --set env.method=setenv --set "daemon.socket=$WORK/setenv.sock" --set log.level=debug)
start_daemon "$WORK/d-setenv.log" "${SE[@]}" || true
expect_exit 2 with_secrets "$BRIDGE" "${SE[@]}" --mode daemon --user "$U" submit <"$WORK/main.sh"
keep_err
expect_match "$STDERR" '^slurm-ssh-bridge: config: sshd on .* refused the environment variable' "daemon: refused env request names the variable"
st=$("$BRIDGE" "${SE[@]}" status 2>&1) || true
printf '%s\n' "$st" >>"$ERRS"
stop_daemon "$DAEMON_PID"
expect_exit 255 with_secrets "$BRIDGE" "${HD[@]}" --mode direct --set "ssh.known_hosts=$KNOWN_HOSTS_WRONG" --user "$U" submit <"$WORK/main.sh"
keep_err
expect_match "$STDERR" '^slurm-ssh-bridge: host_key: ' "host key failure"
expect_exit 2 with_var JUPYTERHUB_BAD-NAME "$VAL_A" "$BRIDGE" "${HD[@]}" --mode daemon --user "$U" submit <"$WORK/main.sh"
keep_err
expect_match "$STDERR" '^slurm-ssh-bridge: invalid_env: invalid environment variable name "JUPYTERHUB_BAD-NAME"' "invalid name carrying a secret value"
resp=$("$PY" "$HELPER" line "$WORK/hostile.sock" - 2>&1 <<<'{"v":1,"id":"nul","op":"submit","user":"alice.proj1","script":"x","env":{"JPY_API_TOKEN":"ssbNULsecret\u0000x"}}') || true
printf '%s\n' "$resp" >>"$ERRS"
expect_match "$resp" '"code":"invalid_env"' "a NUL in a secret value: invalid_env"
st=$("$BRIDGE" "${HD[@]}" status 2>&1) || true
printf '%s\n' "$st" >>"$ERRS"
expect_match "$st" '"ok":true' "status answers"
expect_file_not_contains "$ERRS" "$SECRET_RE" "no error message and no status output holds a secret"
for log in "$WORK"/d-*.log; do
    expect_file_not_contains "$log" "$SECRET_RE" "daemon log ${log##*/} holds no secret"
done
expect_file_not_contains "$SSHD_LOG" "$SECRET_RE" "sshd's log holds no secret"

test_case "6b a malformed request carrying a token: the error and the daemon's log do not echo it"
# A truncated line (client killed mid-write, or a buggy client) that already
# holds the token, and one with a raw control character inside the value.
resp=$("$PY" "$HELPER" line "$WORK/hostile.sock" - 2>&1 <<<"{\"v\":1,\"id\":\"tr\",\"op\":\"submit\",\"user\":\"alice.proj1\",\"script\":\"x\",\"env\":{\"JUPYTERHUB_API_TOKEN\":\"${SECRET_A}truncated") || true
expect_match "$resp" '"code":"bad_request"' "truncated request: bad_request"
expect_no_match "$resp" "$SECRET_A" "truncated request: the error does not echo the token"
resp=$("$PY" "$HELPER" line "$WORK/hostile.sock" - 2>&1 <<<"{\"v\":1,\"id\":\"cc\",\"op\":\"submit\",\"user\":\"alice.proj1\",\"script\":\"x\",\"env\":{\"JPY_API_TOKEN\":\"${SECRET_B}"$'\x01'"x\"}}") || true
expect_match "$resp" '"code":"bad_request"' "control character in a value: bad_request"
expect_no_match "$resp" "$SECRET_B" "control character in a value: the error does not echo the token"
expect_file_not_contains "$WORK/d-hostile.log" "$SECRET_RE" "the daemon's log does not hold them"
expect_exit 2 "$BRIDGE" "${HD[@]}" request <<<"{\"v\":1,\"id\":\"rq\",\"op\":\"submit\",\"user\":\"alice.proj1\",\"script\":\"x\",\"env\":{\"JUPYTERHUB_API_TOKEN\":\"${SECRET_C}truncated"
expect_match "$STDOUT" '"code":"bad_request"' "request subcommand: bad_request"
expect_no_match "$STDOUT$STDERR" "$SECRET_C" "request subcommand: the error does not echo the token"

stop_daemon "$DH"
T_END=${EPOCHREALTIME//[.,]/}
info "suite time: $(((T_END - T_SUITE) / 1000000)) s"
summary
