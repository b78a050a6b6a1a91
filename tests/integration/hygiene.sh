#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Config and protocol hygiene (issue 14, items 2 and 3), with no login host:
# a fake daemon run as another uid at the socket path, files others may
# rewrite, serve with an unusable key or known_hosts, a 10 MB script,
# duplicate keys, bytes after the object, a 1 MB user name.
#
#   sudo tests/integration/hygiene.sh build/slurm-ssh-bridge
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup hygiene "${1:-}"
PY=/usr/bin/python3
NOBODY_UID=$(id -u nobody)
RUN=$WORK/run
mkdir -p "$RUN" && chown nobody "$RUN"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/key" -C hygiene
: >"$WORK/known_hosts"
umask 022
CONF=$WORK/bridge.toml
cat >"$CONF" <<EOT
[ssh]
host = "127.0.0.1"
port = 9
identity_file = "$WORK/key"
known_hosts = "$WORK/known_hosts"
connect_timeout_s = 2
[daemon]
socket = "$RUN/d.sock"
EOT
chmod 0600 "$CONF"
B=("$BRIDGE" --config "$CONF")

# ------------------------------------------------------------------ peer
test_case "a listener of another uid at daemon.socket gets nothing, and its answer never reads as gone"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$PY" "$HERE/helpers/fake_daemon.py" "$RUN/d.sock" "$RUN/fake.log" &
STARTED_PIDS+=($!)
wait_for 10 test -e "$RUN/fake.log.ready" || fail "the fake daemon did not start"
for mode in daemon auto; do
    expect_exit 255 "${B[@]}" --mode "$mode" --user alice.proj1 query 42
    expect_match "$STDERR" "^slurm-ssh-bridge: auth: the process listening on $RUN/d.sock \(daemon.socket\) runs as uid $NOBODY_UID \(pid [0-9]+\), not as the daemon's account \(uid 0\); nothing was sent to it\. .*client\.daemon_uid" "$mode: query refused, naming socket, uids and key"
    expect_no_match "$STDERR" "Invalid job id|transport" "$mode: not the impostor's 'gone', no fall-back to direct"
done
printf '#!/bin/sh\necho hi\n' >"$WORK/job.sh"
expect_exit 255 env JUPYTERHUB_API_TOKEN=ssbsecret-hygiene "${B[@]}" --mode auto --user alice.proj1 submit <"$WORK/job.sh"
expect_match "$STDERR" "^slurm-ssh-bridge: auth: the process listening on" "submit: a failure, not a job id"
expect_eq "$STDOUT" "" "submit: nothing on stdout"
expect_eq "$(grep -c . "$RUN/fake.log")" 3 "the fake daemon saw the three connections"
expect_eq "$(grep -vc '^bytes=0$' "$RUN/fake.log" || true)" 0 "and received zero bytes on each (no token)"
# The control: told to trust that uid, the CLI sends, and the impostor's
# answer reads as "gone" to batchspawner (what the check prevents).
expect_exit 1 "${B[@]}" --set client.daemon_uid=nobody --mode daemon --user alice.proj1 query 42
expect_match "$STDERR" "Invalid job id specified" "client.daemon_uid=nobody: the impostor's 'gone' gets through"
expect_match "$(tail -n 1 "$RUN/fake.log")" "^bytes=[1-9]" "client.daemon_uid=nobody: the listener received the request"
expect_exit 2 "${B[@]}" --set client.daemon_uid=no-such-account --mode daemon --user alice.proj1 query 42
expect_match "$STDERR" "^slurm-ssh-bridge: config: client.daemon_uid names no-such-account, which is not an account" "unknown account named"
stop_started "$WORK"

# ------------------------------------------------------------------ files
test_case "a config, key or known_hosts others may rewrite is refused, naming the file and the fix"
cp "$CONF" "$WORK/loose.toml" && chmod 0666 "$WORK/loose.toml"
expect_exit 2 "$BRIDGE" --config "$WORK/loose.toml" config
expect_eq "$STDERR" "slurm-ssh-bridge: config: configuration file $WORK/loose.toml has permissions 0666: every local account can rewrite it; run \`chmod go-w $WORK/loose.toml\`" "config 0666"
cp "$CONF" "$WORK/theirs.toml" && chown nobody "$WORK/theirs.toml"
expect_exit 2 "$BRIDGE" --config "$WORK/theirs.toml" config
expect_match "$STDERR" "^slurm-ssh-bridge: config: configuration file $WORK/theirs.toml is owned by nobody \(uid $NOBODY_UID\).*run \`chown root $WORK/theirs.toml\`" "config owned by nobody"
expect_exit 0 env SLURM_SSH_BRIDGE_TESTING_INSECURE_FILES=1 "$BRIDGE" --config "$WORK/loose.toml" config
expect_match "$STDERR" "warn TESTING ONLY \(SLURM_SSH_BRIDGE_TESTING_INSECURE_FILES=1\): accepting an unsafe file: configuration file $WORK/loose.toml" "the test-only override is loud"
cp "$WORK/key" "$WORK/key-theirs" && chown nobody "$WORK/key-theirs"
expect_exit 255 "${B[@]}" --set "ssh.identity_file=$WORK/key-theirs" --mode direct --user alice.proj1 query 42
expect_match "$STDERR" "^slurm-ssh-bridge: auth: identity file $WORK/key-theirs \(ssh.identity_file\) is owned by nobody" "key owned by nobody"
cp "$WORK/key" "$WORK/key-0660" && chmod 0660 "$WORK/key-0660"
expect_exit 255 "${B[@]}" --set "ssh.identity_file=$WORK/key-0660" --set ssh.strict_key_permissions=false --mode direct --user alice.proj1 query 42
expect_match "$STDERR" "^slurm-ssh-bridge: auth: identity file $WORK/key-0660 \(ssh.identity_file\) has permissions 0660: its group can rewrite it" "group-writable key refused even with strict_key_permissions=false"

# ------------------------------------------------------------------ serve
test_case "serve with an unusable key or known_hosts exits 2 at start, before binding"
cp "$WORK/key" "$WORK/key-0644" && chmod 0644 "$WORK/key-0644"
: >"$WORK/kh-0664" && chmod 0664 "$WORK/kh-0664"
for bad in "ssh.identity_file=$WORK/key-0644" "ssh.known_hosts=$WORK/kh-0664" "ssh.known_hosts=$WORK/none" "ssh.identity_file=$WORK/job.sh"; do
    expect_exit 2 timeout 10 "${B[@]}" --set "daemon.socket=$WORK/s.sock" --set "$bad" serve
    expect_match "$STDERR" "^slurm-ssh-bridge: config: serve cannot start: (identity|known_hosts) file $WORK/[^ ]+ " "$bad: one clear line"
    expect_eq "$(test -e "$WORK/s.sock" && echo bound || echo absent)" absent "$bad: no socket was bound"
done

# ------------------------------------------------------------------ input
test_case "a 10 MB script is 'over the limit'; duplicate keys, trailing bytes and a 1 MB user are refused briefly"
head -c $((10 << 20)) /dev/zero | tr '\0' 'x' >"$WORK/big.sh"
expect_exit 2 "${B[@]}" --mode direct --user alice.proj1 submit <"$WORK/big.sh"
expect_eq "$STDERR" "slurm-ssh-bridge: script_too_large: job script for user alice.proj1 is over the limit of 1048576 bytes (limits.max_script_bytes); make the script smaller or raise the limit" "10 MB script"
expect_exit 2 "${B[@]}" request <<<'{"v":1,"id":1,"op":"query","user":"bob.proj1","user":"alice.proj1","job_id":"1"}'
expect_match "$STDOUT" '"message":"request has the key \\"user\\" twice in one object; send each key once"' "duplicate user refused"
expect_exit 2 "${B[@]}" request <<<'{"v":1,"id":1,"op":"status"} {"v":1}'
expect_match "$STDOUT" '"message":"request has bytes after its JSON object' "trailing bytes refused"
"$PY" -c 'print("{\"v\":1,\"id\":1,\"op\":\"query\",\"user\":\"" + "a" * 1048576 + "\",\"job_id\":\"1\"}")' >"$WORK/big-user.json"
expect_exit 2 "${B[@]}" --set daemon.max_line_bytes=2097152 request <"$WORK/big-user.json"
expect_eq "$((${#STDOUT} < 600))" 1 "the answer to a 1 MB user is short (${#STDOUT} bytes)"
expect_match "$STDOUT" 'invalid user name \\"a{64}\.\.\. \(1048576 bytes\)\\": it is longer than 64' "the user is shown cut at 64 bytes, with its size"

summary
