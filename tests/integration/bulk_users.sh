#!/usr/bin/env bash
# bulk_users.sh - the sandbox's load-test accounts (`sandbox.sh up
# --bulk-users N`, tests/sandbox/lib/bulk_users.py) and the thousand-user
# benchmark's refusals: bad counts are refused, the accounts are real
# (sudo's %group rule admits them, the bridge submits and queries as one),
# a name that exists is never taken over, only this sandbox's accounts are
# ever removed, and `down` leaves none behind.
#
# usage: tests/integration/bulk_users.sh PATH/TO/slurm-ssh-bridge   (as root)
# shellcheck disable=SC2153 # SANDBOX_* come from the sourced sandbox.env
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/lib.sh
source "$HERE/lib.sh"
suite_setup bulk-users "${1:-}"
BULK_PY=$HERE/../sandbox/lib/bulk_users.py
THOUSAND=$HERE/../bench/thousand.py

test_case "up refuses a bulk-user count that is not 1..2000, naming the option"
for bad in 0 2001 x; do
    expect_exit 2 bash "$SANDBOX" up "$WORK/bad" --bulk-users "$bad"
    expect_match "$STDERR" "--bulk-users needs a number from 1 to 2000" "--bulk-users $bad: the message names the option and the range"
done
expect_eq "$(ls -A "$WORK/bad" 2>/dev/null)" "" "nothing was created for a refused count"

test_case "up --bulk-users 3: three locked accounts of this sandbox, in the users' group"
sandbox_up "$SB" --bulk-users 3 || exit 1
use_sandbox "$SB"
expect_eq "$SANDBOX_BULK_USERS" 3 "sandbox.env: SANDBOX_BULK_USERS"
mapfile -t USERS <"$SANDBOX_BULK_USERS_FILE"
expect_eq "${#USERS[@]}" 3 "the list file names three accounts"
expect_eq "$(grep -c "^sb${SANDBOX_ID}u" /etc/passwd)" 3 "/etc/passwd has exactly three sb${SANDBOX_ID}u* accounts"
U=${USERS[1]}
expect_match "$U" "^sb${SANDBOX_ID}u0002$" "names carry the sandbox id"
expect_eq "$(id -gn "$U")" "$SANDBOX_GROUP" "primary group is $SANDBOX_GROUP"
expect_eq "$(getent shadow "$U" | cut -d: -f2)" '!' "password locked"
expect_eq "$(getent passwd "$U" | cut -d: -f5)" "ssb-sandbox $SANDBOX_ID bulk user" "GECOS marks the sandbox"

test_case "the bridge submits and queries as a bulk user (sudo's %group admits a primary group)"
printf '#!/bin/bash\n#SBATCH --output=/dev/null\n#SBATCH --chdir=/tmp\n#SBATCH --hold\nsleep 60\n' >"$WORK/job.sh"
expect_exit 0 "$BRIDGE" --config "$CONF" --mode direct --user "$U" submit <"$WORK/job.sh"
JOB=$STDOUT
expect_match "$JOB" '^[0-9]+$' "submit printed a job id"
expect_exit 0 "$BRIDGE" --config "$CONF" --mode direct --user "$U" query "$JOB"
expect_eq "$STDOUT" "PENDING n/a" "query answers for the bulk user's held job"
expect_eq "$(squeue -h -j "$JOB" -o %u)" "$U" "Slurm runs the job as the bulk user"
expect_exit 0 "$BRIDGE" --config "$CONF" --mode direct --user "$U" cancel "$JOB"

test_case "create refuses a name that already exists and leaves it alone"
cp /etc/passwd "$WORK/passwd.before"
expect_exit 1 /usr/bin/python3 "$BULK_PY" create "$WORK/list2" "sb${SANDBOX_ID}u" 1 0 "$SB/bulk-home" other
expect_match "$STDERR" "account sb${SANDBOX_ID}u0001 already exists .* left alone" "the message names the account"
expect_exit 0 cmp /etc/passwd "$WORK/passwd.before"
expect_eq "$(ls "$WORK/list2" 2>/dev/null)" "" "no list written for a refused create"

test_case "remove touches only accounts whose GECOS is this sandbox's marker"
cp "$SANDBOX_BULK_USERS_FILE" "$WORK/list3"
expect_exit 0 /usr/bin/python3 "$BULK_PY" remove "$WORK/list3" "some other sandbox"
expect_exit 0 getent passwd "${USERS[0]}" "${USERS[2]}"

test_case "the thousand-user benchmark refuses a sandbox with too few bulk users, saying what to do"
expect_exit 1 /usr/bin/python3 "$THOUSAND" --sandbox-env "$SB/sandbox.env" --bridge "$BRIDGE" --work "$WORK" \
    --json-out "$WORK/t.json" --users 5 --storm-users 0 --plot ''
expect_match "$STDERR" "the sandbox has 3 bulk users .*this run needs 5: bring it up with --bulk-users 5" \
    "the message gives the count and the option"
expect_eq "$(squeue -h -t PENDING,RUNNING -o %i | wc -l)" 0 "no job was submitted"

test_case "down removes every bulk user (and only them)"
bash "$SANDBOX" down "$SB" >"$WORK/down.log" 2>&1
expect_file_contains "$WORK/down.log" "removed 3 bulk users" "down says so"
expect_eq "$(grep -c "^sb${SANDBOX_ID}u" /etc/passwd /etc/shadow | tr '\n' ' ')" "/etc/passwd:0 /etc/shadow:0 " \
    "no sb${SANDBOX_ID}u* line left in passwd or shadow"
expect_exit 0 getent passwd "$SANDBOX_USER" "$SANDBOX_SERVICE_USER"
expect_eq "$(ls "$SANDBOX_BULK_USERS_FILE" 2>/dev/null)" "" "the list file is gone"

summary
