#!/usr/bin/env bash
# sandbox_selftest.sh - bring a test sandbox up and check it the way the real
# clients use it (ssh as jupyterspawner with strict host-key checking, sudo
# to a user, the slurmspawner wrappers, a real Slurm job), then tear it down
# and check that nothing is left running.
#
# usage: tests/integration/sandbox_selftest.sh [--keep]   (as root)
#   --keep   leave the sandbox up at the end (prints its DIR) instead of down.
#
# SC2317: helpers are called indirectly (trap, wait_for, expect_exit).
# SC2153: SSH_PORT, KNOWN_HOSTS, ... come from the sourced sandbox.env.
# shellcheck disable=SC2317,SC2153
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SANDBOX="$HERE/../sandbox/sandbox.sh"
# shellcheck source=tests/integration/lib.sh
source "$HERE/lib.sh"

KEEP=no
case ${1:-} in
    --keep) KEEP=yes ;;
    "") ;;
    *)
        echo "usage: $0 [--keep]" >&2
        exit 2
        ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "$0: must run as root" >&2; exit 2; }

DIR=$(mktemp -d /tmp/ssb-selftest.XXXXXX)
WORK=$(mktemp -d /tmp/ssb-selftest-work.XXXXXX)
DOWN_DONE=no

cleanup() {
    local rc=$?
    if [[ $DOWN_DONE == no && $KEEP == no ]]; then
        "$SANDBOX" down "$DIR" --purge >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    [[ -n ${ALICE_HOME:-} ]] && rm -f "$ALICE_HOME"/ssb-selftest-*.out
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ssh_as KNOWN_HOSTS KEY USER REMOTE_COMMAND : one fresh ssh connection, as
# batchspawner's reference exec_prefix does it.
ssh_as() {
    local known_hosts=$1 key=$2 user=$3
    shift 3
    timeout 30 ssh -F /dev/null -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o ConnectTimeout=5 -o UserKnownHostsFile="$known_hosts" \
        -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
        -p "$SSH_PORT" "$user@127.0.0.1" "$@"
}
remote() { ssh_as "$KNOWN_HOSTS" "$CLIENT_KEY" "$SSH_USER" "$@"; }

submit_as() { remote "sudo -n -u $1 $WRAPPERS_DIR/slurmspawner_sbatch"; }
query_as() { remote "SLURMSPAWNER_JOB_ID=$2 sudo -n -u $1 $WRAPPERS_DIR/slurmspawner_squeue"; }
cancel_as() { remote "SLURMSPAWNER_JOB_ID=$2 sudo -n -u $1 $WRAPPERS_DIR/slurmspawner_scancel"; }

query_is() { [[ $(query_as "$1" "$2" 2>/dev/null) == "$3" ]]; }
query_not_active() {
    local out
    out=$(query_as "$1" "$2" 2>&1) || true
    [[ ! $out =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING) ]]
}

# pid_alive PID: exists and is not a zombie.
pid_alive() {
    local state
    state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

cat >"$WORK/job.sh" <<'EOF'
#!/bin/bash
#SBATCH --output=/dev/null
#SBATCH --job-name=ssb-selftest
sleep 600
EOF

# ------------------------------------------------------------------ up
test_case "sandbox up"
t0=${EPOCHREALTIME//[.,]/}
expect_exit 0 "$SANDBOX" up "$DIR"
t1=${EPOCHREALTIME//[.,]/}
UP_MS=$(((t1 - t0) / 1000))
echo "      up took ${UP_MS} ms"
expect_eq "$STDOUT" "$DIR/sandbox.env" "up prints the path of sandbox.env"
if ! last_ok || [[ ! -f $DIR/sandbox.env ]]; then
    summary
fi
# shellcheck source=/dev/null
source "$DIR/sandbox.env"

test_case "sandbox.env, bridge.toml, keys and known_hosts"
for v in SANDBOX_DIR SSH_PORT SLURM_CONF SLURMCTLD_PORT SLURMD_PORT WRAPPERS_DIR CLIENT_KEY \
    KNOWN_HOSTS KNOWN_HOSTS_WRONG BRIDGE_CONFIG BRIDGE_SOCKET MUNGED_PID SLURMCTLD_PID SLURMD_PID SSHD_PID; do
    expect_ne "${!v:-}" "" "sandbox.env sets $v"
done
expect_eq "$(stat -c '%a %U' "$DIR")" "755 root" "DIR is root-owned 0755"
expect_eq "$(stat -c '%a' "$CLIENT_KEY")" "600" "client key is mode 0600"
expect_file_contains "$KNOWN_HOSTS" "^\[127\.0\.0\.1\]:$SSH_PORT ssh-ed25519 " "known_hosts has [127.0.0.1]:PORT ed25519"
expect_file_contains "$KNOWN_HOSTS" "^\[127\.0\.0\.1\]:$SSH_PORT ecdsa-sha2-nistp256 " "known_hosts has [127.0.0.1]:PORT ecdsa"
expect_file_contains "$KNOWN_HOSTS_WRONG" "^\[127\.0\.0\.1\]:$SSH_PORT ssh-ed25519 " "known_hosts_wrong names the same host"
expect_ne "$(awk '{print $3}' "$KNOWN_HOSTS" | sort)" "$(awk '{print $3}' "$KNOWN_HOSTS_WRONG" | sort)" "known_hosts_wrong holds other keys"
expect_file_contains "$BRIDGE_CONFIG" "^port = $SSH_PORT$" "bridge.toml has the ssh port"
expect_file_contains "$BRIDGE_CONFIG" "^wrappers_dir = \"$WRAPPERS_DIR\"$" "bridge.toml has wrappers_dir"
expect_file_contains "$BRIDGE_CONFIG" "^socket = \"$DIR/bridge.sock\"$" "bridge.toml has the daemon socket"
expect_file_contains "$SUDOERS_FILE" "^jupyterspawner ALL=\(%jupyterusers\) NOPASSWD: $WRAPPERS_DIR/slurmspawner_sbatch, " "sudoers rule installed"
expect_eq "$(stat -c '%a' "$SUDOERS_FILE")" "440" "sudoers fragment is mode 0440"
expect_exit 0 "$WRAPPERS_DIR/python" -c 'import importlib.metadata as m; print(m.version("slurmspawner_wrappers"))'
expect_match "$STDOUT" '^[0-9]' "$WRAPPERS_DIR is a venv with the upstream slurmspawner_wrappers installed"
expect_eq "$(stat -c '%U %A' "$WRAPPERS_DIR" "$WRAPPERS_DIR/slurmspawner_sbatch" | sed 's/ .\(.....\).*/ \1/' | sort -u)" \
    "root rwxr-" "wrappers and their bin/ are root-owned, not writable by group or others"
expect_exit 0 "$SANDBOX" status "$DIR"
expect_match "$STDOUT" "node node1 idle" "status shows node1 idle"

# --------------------------------------------------------------- ssh
test_case "ssh as jupyterspawner with strict host-key checking"
# shellcheck disable=SC2016 # expanded by the remote shell
expect_exit 0 remote 'id -un; echo "$SLURM_CONF"'
expect_eq "$STDOUT" "jupyterspawner"$'\n'"$SLURM_CONF" "logged in as jupyterspawner, SLURM_CONF set by sshd"

test_case "a client with the wrong host key is refused"
expect_exit 255 ssh_as "$KNOWN_HOSTS_WRONG" "$CLIENT_KEY" "$SSH_USER" true
expect_match "$STDERR" "REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed" "host key mismatch reported"

test_case "an unknown client key is refused"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/other_key"
expect_exit 255 ssh_as "$KNOWN_HOSTS" "$WORK/other_key" "$SSH_USER" true
expect_match "$STDERR" "Permission denied \(publickey\)" "publickey refusal"

test_case "only jupyterspawner may log in"
expect_exit 255 ssh_as "$KNOWN_HOSTS" "$CLIENT_KEY" "$SANDBOX_USER" true
expect_match "$STDERR" "Permission denied" "other account refused"

# ------------------------------------------------- submit / query / cancel
test_case "sbatch through sudo as alice.proj1 returns a job id"
expect_exit 0 submit_as "$SANDBOX_USER" <"$WORK/job.sh"
expect_match "$STDOUT" '^[0-9]+$' "job id on stdout"
JOB=$STDOUT
if ! last_ok; then
    summary
fi

test_case "query shows PENDING/RUNNING, then RUNNING node1"
expect_exit 0 query_as "$SANDBOX_USER" "$JOB"
expect_match "$STDOUT" '^(PENDING|CONFIGURING|RUNNING) ' "first query: pending or running"
if wait_for 20 query_is "$SANDBOX_USER" "$JOB" "RUNNING node1"; then
    pass "RUNNING node1"
else
    fail "job $JOB did not reach 'RUNNING node1' within 20 s" "last: $(query_as "$SANDBOX_USER" "$JOB" 2>&1)"
fi
expect_match "$(SLURM_CONF=$SLURM_CONF squeue -h -j "$JOB" -o '%u %j')" "^$SANDBOX_USER ssb-selftest$" "the job belongs to alice.proj1"

test_case "environment reaches the job (env_keep JUPYTERHUB_*, wrapper passes it unchanged)"
ALICE_HOME=$(getent passwd "$SANDBOX_USER" | cut -d: -f6)
cat >"$WORK/envjob.sh" <<EOF
#!/bin/bash
#SBATCH --output=$ALICE_HOME/ssb-selftest-%j.out
echo "user=\$(id -un) token=\$JUPYTERHUB_API_TOKEN jpy=\$JPY_API_TOKEN"
EOF
expect_exit 0 remote "JUPYTERHUB_API_TOKEN=tok-123 JPY_API_TOKEN=jpy-456 sudo -n -u $SANDBOX_USER $WRAPPERS_DIR/slurmspawner_sbatch" <"$WORK/envjob.sh"
ENVJOB=$STDOUT
if wait_for 20 grep -q 'user=' "$ALICE_HOME/ssb-selftest-$ENVJOB.out"; then
    expect_file_contains "$ALICE_HOME/ssb-selftest-$ENVJOB.out" "^user=$SANDBOX_USER token=tok-123 jpy=jpy-456$" "job ran as the user with the tokens"
else
    fail "output of job $ENVJOB did not appear"
fi

# The upstream slurmspawner_wrappers: a missing job id is their own error,
# a malformed one is Slurm's; arguments are ignored (never passed to sbatch),
# so a sudoers rule without arguments cannot smuggle options to Slurm.
test_case "wrappers: bad input fails, arguments never reach Slurm"
expect_exit 1 remote "sudo -n -u $SANDBOX_USER $WRAPPERS_DIR/slurmspawner_squeue"
expect_match "$STDERR" "SLURMSPAWNER_JOB_ID must be set" "missing job id"
expect_exit 1 remote "SLURMSPAWNER_JOB_ID='1 2' sudo -n -u $SANDBOX_USER $WRAPPERS_DIR/slurmspawner_scancel"
expect_match "$STDERR" "Invalid job id 1 2" "invalid job id refused by scancel"
sed 's/--job-name=ssb-selftest$/--job-name=ssb-selftest-args/' "$WORK/job.sh" >"$WORK/argsjob.sh"
expect_exit 0 remote "sudo -n -u $SANDBOX_USER $WRAPPERS_DIR/slurmspawner_sbatch --job-name=smuggled --wrap=id" <"$WORK/argsjob.sh"
ARGSJOB=$STDOUT
expect_match "$ARGSJOB" '^[0-9]+$' "the script on stdin was submitted"
expect_eq "$(SLURM_CONF=$SLURM_CONF squeue -h -j "$ARGSJOB" -o '%j' 2>&1)" "ssb-selftest-args" \
    "job $ARGSJOB is the stdin script, not --wrap/--job-name from the wrapper's arguments"
[[ $ARGSJOB =~ ^[0-9]+$ ]] && SLURM_CONF=$SLURM_CONF scancel "$ARGSJOB"

test_case "sudo refuses mallory.other (not in jupyterusers) and other commands"
expect_exit 1 remote "SLURMSPAWNER_JOB_ID=$JOB sudo -n -u $SANDBOX_OUTSIDER $WRAPPERS_DIR/slurmspawner_squeue"
expect_match "$STDERR" "sudo: (a password is required|.*not allowed)" "sudo refusal for mallory.other"
expect_exit 1 remote "sudo -n -u $SANDBOX_USER /bin/id"
expect_match "$STDERR" "sudo: " "sudo refusal for another command"

test_case "another user cannot cancel alice's job"
expect_exit nonzero cancel_as "$SANDBOX_USER2" "$JOB"
expect_match "$STDERR" "Access/permission denied" "scancel refused"

# ----------------------------------------------------------- faults
# squeue needs ~18 s (its connect retries) to give up on a stopped slurmctld.
test_case "slurmctld stop/start: query reports an unknown state, job survives"
expect_exit 0 "$SANDBOX" stop slurmctld "$DIR"
expect_exit 1 query_as "$SANDBOX_USER" "$JOB"
expect_match "$STDERR" "^slurm_load_jobs error: Unable to contact slurm controller" "batchspawner's 'unknown' text"
expect_exit 0 "$SANDBOX" start slurmctld "$DIR"
if wait_for 20 query_is "$SANDBOX_USER" "$JOB" "RUNNING node1"; then pass "job still running"; else fail "job $JOB not RUNNING after restart"; fi

test_case "sshd stop/start"
expect_exit 0 "$SANDBOX" stop sshd "$DIR"
expect_exit 255 remote true
expect_exit 0 "$SANDBOX" start sshd "$DIR"
# shellcheck source=/dev/null
source "$DIR/sandbox.env"
expect_exit 0 query_as "$SANDBOX_USER" "$JOB"
expect_eq "$STDOUT" "RUNNING node1" "query works again"

# ------------------------------------------------------------ cancel
test_case "scancel removes the job"
expect_exit 0 cancel_as "$SANDBOX_USER" "$JOB"
if wait_for 20 query_not_active "$SANDBOX_USER" "$JOB"; then
    pass "job left the active states"
else
    fail "job $JOB still active after scancel" "last: $(query_as "$SANDBOX_USER" "$JOB" 2>&1)"
fi

# ------------------------------------------------------------- down
if [[ $KEEP == yes ]]; then
    trap - EXIT
    rm -rf "$WORK"
    echo "sandbox kept: source $DIR/sandbox.env; stop with: $SANDBOX down $DIR --purge"
    summary
fi

test_case "down stops every process and removes the sudoers fragment"
# shellcheck source=/dev/null
source "$DIR/sandbox.env"
# Everything the sandbox runs, including session and job processes.
PIDS=("$MUNGED_PID" "$SLURMCTLD_PID" "$SSHD_PID")
read -r -a more <<<"$SLURMD_PIDS"
PIDS+=("${more[@]}")
if [[ -n $SANDBOX_CGROUP && -f $SANDBOX_CGROUP/cgroup.procs ]]; then
    mapfile -t more <"$SANDBOX_CGROUP/cgroup.procs"
    PIDS+=("${more[@]}")
fi
# A job still running at `down` must be cancelled by it.
remote "sudo -n -u $SANDBOX_USER2 $WRAPPERS_DIR/slurmspawner_sbatch" <"$WORK/job.sh" >/dev/null || true
expect_exit 0 "$SANDBOX" down "$DIR"
DOWN_DONE=yes
left=()
for p in "${PIDS[@]}"; do
    if pid_alive "$p"; then
        left+=("$p")
    fi
done
expect_eq "${left[*]}" "" "no sandbox process left (checked ${#PIDS[@]} PIDs)"
if [[ -n $SANDBOX_CGROUP ]]; then
    expect_eq "$([[ -d $SANDBOX_CGROUP ]] && echo present)" "" "cgroup $SANDBOX_CGROUP removed"
fi
expect_eq "$([[ -e $SUDOERS_FILE ]] && echo present)" "" "sudoers fragment removed"
expect_eq "$(ss -Hltn "sport = :$SSH_PORT")" "" "ssh port closed"
expect_eq "$(ss -Hltn "sport = :$SLURMCTLD_PORT")" "" "slurmctld port closed"
expect_file_contains "$DIR/log/slurmctld.log" "." "logs kept after down"

test_case "down is idempotent; --purge removes DIR"
expect_exit 0 "$SANDBOX" down "$DIR"
expect_exit 0 "$SANDBOX" down "$DIR" --purge
expect_eq "$([[ -e $DIR ]] && echo present)" "" "DIR removed"

summary
