#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Integration suite for the direct path (issue: build, config, CLI, direct SSH
# execution): the real slurm-ssh-bridge binary against a real sshd + sudo +
# munge + Slurm sandbox on loopback (tests/sandbox/sandbox.sh).
#
#   sudo tests/integration/direct.sh build/slurm-ssh-bridge
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup direct "${1:-}"
PY=/usr/bin/python3
SB2=$WORK/sb-acceptenv
suite_teardown() {
    if [[ -n ${SAMPLER_PID:-} ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
}

sandbox_up "$SB" || exit 1
use_sandbox "$SB"

bridge() { "$BRIDGE" --config "$CONF" "$@"; }
accepted_logins() { grep -c "Accepted publickey" "$SB/sshd.log" || true; }

OUT=$WORK/jobout  # where test jobs write what they saw
mkdir -m 1777 "$OUT"
JOB="$WORK/job.sh"
cat >"$JOB" <<SCRIPT
#!/bin/bash
#SBATCH --output=/dev/null
#SBATCH --time=10
#SBATCH --job-name=ssb-direct
SSB_OUT=$OUT
env -0 > "\$SSB_OUT/ssb-job-env.\$SLURM_JOB_ID"
sleep 300
SCRIPT

# A token with every character that broke shell-quoted passing before.
TOKEN="t0k3n-'quote' \"dq\" \$HOME \$(id) \`id\` back\\slash {\"json\": [1, 2]} *?~ end"

# job_env FILE NAME: NAME's value in a job's `env -0` dump.
job_env() { tr '\0' '\n' <"$1" | grep "^$2=" | head -n1 | cut -d= -f2-; }

# expect_identity FILE USER: the job ran as USER in every sense: USER,
# LOGNAME, HOME and SHELL are USER's passwd entry on the login host, never
# the service account's (the reference sudoers keeps "USER HOME SHELL").
expect_identity() {
    local file=$1 user=$2 home shell
    IFS=: read -r _ _ _ _ _ home shell <<<"$(getent passwd "$user")"
    expect_eq "$(job_env "$file" USER)" "$user" "USER in $user's job"
    expect_eq "$(job_env "$file" LOGNAME)" "$user" "LOGNAME in $user's job"
    expect_eq "$(job_env "$file" HOME)" "$home" "HOME in $user's job"
    expect_eq "$(job_env "$file" SHELL)" "$shell" "SHELL in $user's job"
}

test_case "submit prints the job id and exits 0"
export JUPYTERHUB_API_TOKEN=$TOKEN JPY_API_TOKEN=$TOKEN JUPYTERHUB_USER=alice.proj1
ps_log=$WORK/ps.log
: >"$ps_log"
( while :; do ps -eww -o pid=,user=,args= >>"$ps_log"; sleep 0.01; done ) &
SAMPLER_PID=$!
expect_exit 0 bridge --user alice.proj1 submit <"$JOB"
expect_match "$STDOUT" '^[0-9]+$' "stdout is the job id"
expect_eq "$STDERR" "" "stderr is empty"
JOB_ID=$STDOUT
# more submits while sampling, so the sampler sees processes at every stage
for _ in 1 2 3; do
    expect_exit 0 bridge --user alice.proj1 submit <"$JOB"
    [[ $STDOUT =~ ^[0-9]+$ ]] && bridge --user alice.proj1 cancel "$STDOUT" >/dev/null
done
kill "$SAMPLER_PID"; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=
unset JUPYTERHUB_API_TOKEN JPY_API_TOKEN JUPYTERHUB_USER

test_case "the job runs: query shows PENDING then RUNNING with its host"
expect_exit 0 bridge --user alice.proj1 query "$JOB_ID"
expect_match "$STDOUT" '^(PENDING|CONFIGURING|RUNNING) ' "query output is STATE HOST"
wait_for 30 bash -c "[[ \$('$BRIDGE' --config '$CONF' --user alice.proj1 query $JOB_ID) == 'RUNNING node1' ]]" ||
    fail "job $JOB_ID did not reach RUNNING within 30 s"
expect_exit 0 bridge --user alice.proj1 query "$JOB_ID"
expect_eq "$STDOUT" "RUNNING node1" "query output once running"

test_case "the API token reached the job's environment intact"
ENV_FILE=$OUT/ssb-job-env.$JOB_ID
wait_for 20 test -s "$ENV_FILE" || fail "job did not write $ENV_FILE"
if [[ -s $ENV_FILE ]]; then
    got=$(tr '\0' '\n' <"$ENV_FILE" | grep '^JUPYTERHUB_API_TOKEN=' | head -n1)
    expect_eq "${got#JUPYTERHUB_API_TOKEN=}" "$TOKEN" "JUPYTERHUB_API_TOKEN in the job"
    got=$(tr '\0' '\n' <"$ENV_FILE" | grep '^JPY_API_TOKEN=' | head -n1)
    expect_eq "${got#JPY_API_TOKEN=}" "$TOKEN" "JPY_API_TOKEN in the job"
fi

test_case "the job runs as the user: USER, LOGNAME, HOME, SHELL from the login host's passwd (env.method=stdin)"
[[ -s $ENV_FILE ]] && expect_identity "$ENV_FILE" alice.proj1
rm -f "$ENV_FILE"

test_case "a HOME from the hub never reaches the job; a different one is a notice"
USER=alice.proj1 HOME=/somewhere/else expect_exit 0 bridge --user alice.proj1 submit <"$JOB"
J_HOME=$STDOUT
expect_match "$STDERR" "^slurm-ssh-bridge: notice: the hub set HOME=/somewhere/else for alice.proj1; the login host's passwd entry says $(getent passwd alice.proj1 | cut -d: -f6), which the job uses\$" "the notice names both values"
if wait_for 30 test -s "$OUT/ssb-job-env.$J_HOME"; then
    expect_identity "$OUT/ssb-job-env.$J_HOME" alice.proj1
    rm -f "$OUT/ssb-job-env.$J_HOME"
else
    fail "job $J_HOME did not start"
fi
bridge --user alice.proj1 cancel "$J_HOME" >/dev/null 2>&1 || true
USER=alice.proj1 HOME=$(getent passwd alice.proj1 | cut -d: -f6) expect_exit 0 bridge --json --user alice.proj1 submit <"$JOB"
expect_no_match "$STDOUT" '"notices"' "the same HOME as the passwd entry: no notice"
J_HOME=$(sed -n 's/.*"job_id":"\([0-9]*\)".*/\1/p' <<<"$STDOUT")
[[ -n $J_HOME ]] && bridge --user alice.proj1 cancel "$J_HOME" >/dev/null 2>&1

test_case "the token never appeared in any process's argv during the submits"
expect_match "$(wc -l <"$ps_log")" '^[0-9]{3,}$' "the ps sampler took samples"
expect_file_contains "$ps_log" 'slurmspawner_sbatch|sbatch|sudo' "the sampler saw the submit's remote processes"
expect_file_not_contains "$ps_log" 't0k3n' "no argv holds the token"
expect_file_not_contains "$SB/sshd.log" 't0k3n' "sshd's log does not hold the token"

test_case "--json query gives state and host"
expect_exit 0 bridge --json --user alice.proj1 query "$JOB_ID"
expect_match "$STDOUT" '"state":"RUNNING"' "state field"
expect_match "$STDOUT" '"host":"node1"' "host field"
expect_match "$STDOUT" '"ok":true' "ok field"
expect_match "$STDOUT" '"path":"direct"' "path field"

test_case "cancel, then the job is gone"
expect_exit 0 bridge --user alice.proj1 cancel "$JOB_ID"
wait_for 20 bash -c "[[ -z \$(squeue -h -j $JOB_ID -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %T 2>/dev/null) ]]" ||
    fail "job $JOB_ID still active 20 s after cancel"
expect_exit any bridge --user alice.proj1 query "$JOB_ID"
expect_no_match "$STDOUT" '^(PENDING|CONFIGURING|RUNNING|COMPLETING)' "query no longer reports an active state"

test_case "a wrapper's failure passes through: unknown job id"
expect_exit 1 bridge --user alice.proj1 query 999999
expect_match "$STDERR" 'slurm_load_jobs error: Invalid job id specified' "squeue's own error on stderr"
expect_exit 1 bridge --json --user alice.proj1 query 999999
expect_match "$STDOUT" '"code":"remote_failed"' "json error code"
expect_match "$STDOUT" '"exit_status":1' "json exit status"

test_case "explain: a failed job says FAILED, its exit code and its log; a pending one its reason; others' jobs and unknown ids are not_found (direct and daemon)"
FAILJOB=$WORK/fail.sh
printf '#!/bin/bash\n#SBATCH --output=%s/explain-%%j-%%u-%%x.log\n#SBATCH --job-name=ssb-x\nexit 3\n' "$OUT" >"$FAILJOB"
HOLDJOB=$WORK/hold.sh
printf '#!/bin/bash\n#SBATCH --output=/dev/null\n#SBATCH --cpus-per-task=8\nsleep 120\n' >"$HOLDJOB"
expect_exit 0 bridge --user alice.proj1 submit <"$FAILJOB"
FJ=$STDOUT
LOG_EXPECT="$OUT/explain-$FJ-alice.proj1-ssb-x.log"
wait_for 20 bash -c "[[ \$(scontrol -o show job $FJ 2>/dev/null) == *JobState=FAILED* ]]" || fail "job $FJ did not fail"
start_daemon_logged "$WORK/d-explain.log" --config "$CONF" --set "daemon.socket=$WORK/explain.sock" || true
for mode in direct daemon; do
    M=(--mode "$mode" --set "daemon.socket=$WORK/explain.sock")
    expect_exit 0 bridge "${M[@]}" --user alice.proj1 explain "$FJ"
    expect_eq "$STDOUT" "FAILED exit 3 (NonZeroExitCode), log $LOG_EXPECT" "$mode: the one line names state, exit code, reason and the expanded --output"
    expect_exit 0 bridge "${M[@]}" --json --user alice.proj1 explain "$FJ"
    kv "$PY" "$HERE/helpers/explain_check.py" "$STDOUT"
    expect_eq "${KV[job]:-}" "FAILED|3|None|NonZeroExitCode|$LOG_EXPECT|None|scontrol" "$mode: --json job object"
    expect_exit 1 bridge "${M[@]}" --json --user bob.proj1 explain "$FJ"
    foreign=$STDOUT
    expect_match "$foreign" '"code":"not_found"' "$mode: bob cannot explain alice's job"
    expect_exit 1 bridge "${M[@]}" --json --user bob.proj1 explain 4000000000
    kv "$PY" "$HERE/helpers/explain_check.py" "$foreign" "$STDOUT"
    expect_eq "${KV[same_error]:-}" yes "$mode: alice's job and an unknown id give bob the same answer"
done
expect_exit 2 bridge --user alice.proj1 explain '42; id'
expect_match "$STDERR" '^slurm-ssh-bridge: invalid_job_id: invalid job id "42; id": ' "a bad job id is refused before any connection"
expect_file_contains "$WORK/d-explain.log" "user=bob.proj1 explain refused: job $FJ belongs to alice.proj1, not to the requesting user bob.proj1" "the daemon logged the refusal with user and id"
stop_daemon "$DAEMON_PID"
# pending: two jobs that each want all 8 CPUs of node1; the second waits
expect_exit 0 bridge --user alice.proj1 submit <"$HOLDJOB"
H1=$STDOUT
expect_exit 0 bridge --user alice.proj1 submit <"$HOLDJOB"
H2=$STDOUT
wait_for 20 bash -c "[[ \$(scontrol -o show job $H2 2>/dev/null) == *'Reason=Resources'* || \$(scontrol -o show job $H2 2>/dev/null) == *'Reason=Priority'* ]]" || true
expect_exit 0 bridge --user alice.proj1 explain "$H2"
expect_match "$STDOUT" '^PENDING \((Resources|Priority)\)' "a pending job's explain names Slurm's reason"
bridge --user alice.proj1 cancel "$H1" >/dev/null 2>&1 || true
bridge --user alice.proj1 cancel "$H2" >/dev/null 2>&1 || true
# once slurmctld has forgotten the job (MinJobAge=10 s) only sacct could
# tell, and the sandbox has no accounting: not_found, sacct's words logged
if wait_for 60 bash -c "! scontrol -o show job $FJ >/dev/null 2>&1"; then
    expect_exit 1 bridge --user alice.proj1 explain "$FJ"
    expect_match "$STDERR" "notice: explain: job $FJ of user alice.proj1 not found: scontrol: slurm_load_jobs error: Invalid job id specified; sacct: Slurm accounting storage is disabled" "sacct was asked and its own message kept for the operator"
    expect_match "$STDERR" "slurm-ssh-bridge: not_found: Slurm knows no job $FJ of user alice.proj1" "then not_found"
else
    fail "slurmctld still holds job $FJ after 60 s"
fi

test_case "a user outside jupyterusers is refused by sudo, which never prompts; batchspawner reads it as unknown"
expect_exit 255 bridge --user mallory.other query 1
expect_match "$STDERR" '^slurm-ssh-bridge: auth: sudo on the login host refused to run the query wrapper as mallory\.other: sudo: (a password is required|.*not allowed)' "sudo's refusal as one bridge line"
expect_eq "$(wc -l <<<"$STDERR")" "1" "exactly one stderr line"

test_case "invalid users and job ids are refused before any connection"
before=$(accepted_logins)
# shellcheck disable=SC2016 # the $(...) and backticks are the hostile input
for bad_user in 'a;b' '$(id)' '`id`' "a'b" 'a b' $'a\nb' '-u' '' 'älice' "$(printf 'x%.0s' {1..70})"; do
    expect_exit 2 bridge --user "$bad_user" query 1
    expect_match "$STDERR" '^slurm-ssh-bridge: (invalid_user|usage): ' "user [$bad_user] refused with a clear code"
done
# shellcheck disable=SC2016
for bad_id in '' '-1' 'abc' '1 2' '1;$(id)' '99999999999' '0'; do
    expect_exit 2 bridge --user alice.proj1 query "$bad_id"
    expect_match "$STDERR" '^slurm-ssh-bridge: (invalid_job_id|usage): ' "job id [$bad_id] refused with a clear code"
done
expect_eq "$(accepted_logins)" "$before" "sshd accepted no login for any of them"

test_case "a changed host key is refused, naming the file and the host"
expect_exit 255 bridge --set "ssh.known_hosts=$SB/known_hosts_wrong" --user alice.proj1 query 1
expect_match "$STDERR" "^slurm-ssh-bridge: host_key: host key of \[127\.0\.0\.1\]:$SSH_PORT does not match its entry in $SB/known_hosts_wrong" "message"
expect_eq "$(wc -l <<<"$STDERR")" "1" "exactly one stderr line"

test_case "an unknown host key is refused (no trust on first use)"
: >"$WORK/empty_known_hosts"
expect_exit 255 bridge --set "ssh.known_hosts=$WORK/empty_known_hosts" --user alice.proj1 query 1
expect_match "$STDERR" "^slurm-ssh-bridge: host_key: host \[127\.0\.0\.1\]:$SSH_PORT is not in $WORK/empty_known_hosts" "message"
expect_eq "$(wc -c <"$WORK/empty_known_hosts" | tr -d ' ')" "0" "known_hosts was not written"
expect_exit 255 bridge --set "ssh.known_hosts=$WORK/nonexistent" --user alice.proj1 query 1
expect_match "$STDERR" "^slurm-ssh-bridge: host_key: known_hosts file $WORK/nonexistent \(ssh.known_hosts\) does not exist" "missing file"

test_case "a key sshd does not know is refused as auth"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/other_key"
expect_exit 255 bridge --set "ssh.identity_file=$WORK/other_key" --user alice.proj1 query 1
expect_match "$STDERR" "^slurm-ssh-bridge: auth: jupyterspawner@127\.0\.0\.1:$SSH_PORT refused public-key authentication with $WORK/other_key" "message"

test_case "an identity file open to others is refused, or only warned about when configured"
cp "$CLIENT_KEY" "$WORK/loose_key"
chmod 0644 "$WORK/loose_key"
expect_exit 255 bridge --set "ssh.identity_file=$WORK/loose_key" --user alice.proj1 query 1
expect_match "$STDERR" "^slurm-ssh-bridge: auth: identity file $WORK/loose_key has permissions 0644" "refused"
expect_exit 1 bridge --set "ssh.identity_file=$WORK/loose_key" --set ssh.strict_key_permissions=false --user alice.proj1 query 999999
expect_match "$STDERR" 'Invalid job id' "with strict_key_permissions=false the request runs"

test_case "nothing listening: a transport error, exit 255"
expect_exit 255 bridge --set ssh.port=1 --user alice.proj1 query 1
expect_match "$STDERR" '^slurm-ssh-bridge: transport: cannot connect to jupyterspawner@127\.0\.0\.1:1: ' "message"

test_case "configuration errors name the file, line and key (exit 2)"
printf '[ssh]\nhost = "h"\nprot = 22\n' >"$WORK/bad.toml"
expect_exit 2 "$BRIDGE" --config "$WORK/bad.toml" --user alice.proj1 query 1
expect_eq "$STDERR" "slurm-ssh-bridge: config: $WORK/bad.toml:3: unknown key 'ssh.prot' (did you mean 'ssh.port'?)" "unknown key"
printf '[ssh]\nport = 22\n' >"$WORK/bad2.toml"
expect_exit 2 "$BRIDGE" --config "$WORK/bad2.toml" --user alice.proj1 query 1
expect_match "$STDERR" "required key 'ssh.host' is missing" "missing key"
expect_exit 2 env SLURM_SSH_BRIDGE_CONFIG="$WORK/none.toml" "$BRIDGE" --user alice.proj1 query 1
expect_match "$STDERR" "^slurm-ssh-bridge: config: $WORK/none.toml: cannot read the configuration file" "SLURM_SSH_BRIDGE_CONFIG is honoured"

test_case "check: every step passes for a good setup"
expect_exit 0 bridge check --user alice.proj1
for step in config identity known_hosts connect host_key auth wrappers sudo; do
    expect_match "$STDOUT" "\[ OK \] $step " "step $step ok"
done
expect_match "$STDOUT" 'verdict: all checks passed' "verdict"

test_case "check: sudo refusal and host key problems are reported per step"
expect_exit 1 bridge check --user mallory.other
expect_match "$STDOUT" '\[FAIL\] sudo ' "sudo step fails"
expect_exit 1 bridge --set "ssh.known_hosts=$SB/known_hosts_wrong" check
expect_match "$STDOUT" '\[FAIL\] host_key +host key of' "host_key step fails"
expect_match "$STDOUT" '\[SKIP\] auth ' "later steps skipped"
expect_exit 1 bridge --json --set "remote.wrappers_dir=/nonexistent" check
expect_match "$STDOUT" '"step":"wrappers","verdict":"fail"' "missing wrappers reported"

test_case "request: one JSON request in, one JSON response out"
expect_exit 0 bridge request <<<'{"v":1,"id":"r1","op":"submit","user":"bob.proj1","script":"#!/bin/bash\n#SBATCH --output=/dev/null\nsleep 60\n","env":{"JUPYTERHUB_API_TOKEN":"x"}}'
expect_match "$STDOUT" '"id":"r1"' "id echoed"
expect_match "$STDOUT" '"ok":true' "ok"
if [[ $STDOUT =~ \"job_id\":\"([0-9]+)\" ]]; then
    R_JOB=${BASH_REMATCH[1]}
    expect_exit 0 bridge request <<<"{\"v\":1,\"id\":2,\"op\":\"cancel\",\"user\":\"bob.proj1\",\"job_id\":\"$R_JOB\"}"
    expect_match "$STDOUT" '"id":2,' "integer id echoed"
else
    fail "submit response carries a job_id" "$STDOUT"
fi
expect_exit 2 bridge request <<<'{"v":1,"id":3,"op":"query","user":"bob.proj1","job_id":"1","extra":1}'
expect_match "$STDOUT" '"code":"bad_request"' "unknown field refused"

test_case "env.method=setenv without AcceptEnv fails clearly and runs nothing"
export JUPYTERHUB_API_TOKEN=secret-setenv-value
expect_exit 2 bridge --set env.method=setenv --user alice.proj1 submit <"$JOB"
expect_match "$STDERR" '^slurm-ssh-bridge: config: sshd on jupyterspawner@127.0.0.1:[0-9]+ refused the environment variable JUPYTERHUB_API_TOKEN; add `AcceptEnv' "names the variable and the fix"
expect_no_match "$STDERR" 'secret-setenv-value' "never the value"
unset JUPYTERHUB_API_TOKEN

test_case "env.method=setenv with AcceptEnv forwards the token; the job runs as the user"
sandbox_up "$SB2" --accept-env || fail "second sandbox"
export JUPYTERHUB_API_TOKEN=$TOKEN
expect_exit 0 "$BRIDGE" --config "$SB2/bridge.toml" --set env.method=setenv --user bob.proj1 submit <"$JOB"
unset JUPYTERHUB_API_TOKEN
J2=$STDOUT
ENV2=$OUT/ssb-job-env.$J2
if wait_for 30 test -s "$ENV2"; then
    got=$(tr '\0' '\n' <"$ENV2" | grep '^JUPYTERHUB_API_TOKEN=' | head -n1)
    expect_eq "${got#JUPYTERHUB_API_TOKEN=}" "$TOKEN" "token intact through SSH env requests"
    expect_identity "$ENV2" bob.proj1
    rm -f "$ENV2"
else
    fail "job $J2 of the AcceptEnv sandbox did not start"
fi
"$BRIDGE" --config "$SB2/bridge.toml" --user bob.proj1 cancel "$J2" >/dev/null 2>&1 || true

summary
