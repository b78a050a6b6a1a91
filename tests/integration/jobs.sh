#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# `jobs` and submit tokens (issue 14 item 4, exactly-once submit) against the
# real sandbox: every submit's job carries the comment ssb:<submit.tag>:<token>
# (the token --json reports), `jobs` lists exactly this tag's jobs through the
# daemon and directly, another tag sees none of them, scripts that cannot
# carry the token are refused before anything runs, and with PrivateData=jobs
# the listing says visible:false instead of an empty answer.
#
#   sudo tests/integration/jobs.sh build/slurm-ssh-bridge
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup jobs "${1:-}"
PY=/usr/bin/python3
JGET="$HERE/helpers/sockclient.py"
SBP=$WORK/sb-private
sandbox_up "$SB" --cpus 2 || exit 1
use_sandbox "$SB"

bridge() { "$BRIDGE" --config "$CONF" --set "daemon.socket=$WORK/jobs.sock" "$@"; }
jget() { "$PY" "$JGET" jget "$1" "$2"; }
job() { printf '#!/bin/bash\n#SBATCH --output=/dev/null\n#SBATCH --time=5\n#SBATCH --job-name=ssb-jobs\nsleep 300\n'; }
suite_teardown() { scancel -n ssb-jobs 2>/dev/null || true; }

test_case "submit: the job carries ssb:<tag>:<token>, the token --json reports (direct and daemon)"
start_daemon_logged "$WORK/d.log" --config "$CONF" --set "daemon.socket=$WORK/jobs.sock" || true
declare -A TOKEN
for mode in direct daemon; do
    out=$(job | bridge --mode "$mode" --user alice.proj1 --json submit) || true
    id=$(jget "$out" 'd["job_id"]')
    tok=$(jget "$out" 'd["token"]')
    expect_match "$tok" '^[0-9a-f]{32}$' "$mode: the response carries a 32-hex token"
    expect_eq "$(squeue -h -j "$id" -o %k)" "ssb:jupyterhub:$tok" "$mode: Slurm stores the comment ssb:jupyterhub:<token> on job $id"
    TOKEN[$id]=$tok
done
expect_exit 0 bridge --mode direct --user bob.proj1 submit < <(job)
BOB=$STDOUT
expect_match "$BOB" '^[0-9]+$' "text-mode submit output is still the job id alone"

test_case "jobs: lists this tag's jobs with user, state and token, through the daemon and directly"
for mode in direct daemon; do
    expect_exit 0 bridge --mode "$mode" --json jobs
    j=$STDOUT
    expect_eq "$(jget "$j" 'd["visible"]')" True "$mode: visible"
    expect_eq "$(jget "$j" 'd["tag"]')" jupyterhub "$mode: tag"
    expect_eq "$(jget "$j" 'len(d["jobs"])')" 3 "$mode: three jobs"
    for id in "${!TOKEN[@]}"; do
        expect_eq "$(jget "$j" "[x['token'] for x in d['jobs'] if x['job_id']=='$id'][0]")" "${TOKEN[$id]}" "$mode: job $id with its token"
    done
    expect_eq "$(jget "$j" "[x['user'] for x in d['jobs'] if x['job_id']=='$BOB'][0]")" bob.proj1 "$mode: bob's job, seen by the service account"
done
expect_exit 0 bridge --mode direct jobs
expect_eq "$(wc -l <"$STDOUT_FILE" | tr -d ' ')" 3 "text: one line per job"
expect_match "$(grep "^$BOB " "$STDOUT_FILE")" "^$BOB bob.proj1 [A-Z]+ [0-9a-f]{32}$" "text: ID USER STATE TOKEN"
expect_exit 0 bridge --mode direct --set submit.tag=otherhub --json jobs
expect_eq "$(jget "$STDOUT" 'len(d["jobs"])')" 0 "another tag lists none of these jobs"

test_case "bad input: refused before anything runs, with the reason"
expect_exit 2 bridge --mode direct --set submit.tag=bad:tag jobs
expect_match "$STDERR" "submit.tag.*1 to 64 of the characters" "a bad submit.tag is a config error naming the key"
expect_exit 2 bridge --mode direct --user alice.proj1 submit < <(printf 'sleep 1\n')
expect_match "$STDERR" 'does not start with a "#!" line' "a script without a shebang is refused"
expect_exit 2 bridge --mode direct --user alice.proj1 submit < <(printf '#!/bin/bash\n#SBATCH --comment=mine\nsleep 1\n')
expect_match "$STDERR" 'sets its own #SBATCH --comment \(line 2\)' "a script with its own --comment is refused, naming the line"
expect_exit 2 bridge request < <(printf '{"v":1,"id":1,"op":"submit","user":"alice.proj1","script":"#!/bin/sh\\n","token":"XYZ"}\n')
expect_match "$STDOUT" 'not 32 lowercase hex digits' "a malformed protocol token is refused"
expect_exit 2 bridge request < <(printf '{"v":1,"id":1,"op":"jobs","user":"alice.proj1"}\n')
expect_match "$STDOUT" 'op \\"jobs\\" does not take the field \\"user\\"' "jobs takes no user"
expect_eq "$(squeue -h -t all -n ssb-jobs -o %i | wc -l | tr -d ' ')" 3 "no refused submit reached Slurm"

test_case "PrivateData=jobs: visible false and why, never an empty answer read as 'no job'"
if sandbox_up "$SBP" --private-data jobs; then
    use_sandbox "$SBP"
    expect_exit 0 "$BRIDGE" --config "$CONF" --mode direct --json jobs
    expect_eq "$(jget "$STDOUT" 'd["visible"]')" False "visible is false"
    expect_match "$(jget "$STDOUT" 'd["why"]')" "PrivateData = jobs hides other users' jobs" "why says what hides them"
    expect_exit 1 "$BRIDGE" --config "$CONF" --mode direct jobs
    expect_match "$STDERR" "PrivateData = jobs" "text mode fails with the reason"
    use_sandbox "$SB"
else
    fail "the PrivateData sandbox did not come up"
fi
summary
