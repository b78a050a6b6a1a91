#!/bin/bash
# The job round trip through the bridge, run from inside a JupyterHub
# container (source it; lib.sh first): submit → RUNNING <node> → cancel → gone.
# shellcheck shell=bash

# bridge CONTAINER ARGS...: run the bridge CLI in CONTAINER (stdin passed on).
bridge() {
  local ctr=$1
  shift
  podman exec -i "$ctr" slurm-ssh-bridge "$@"
}

# job_state CONTAINER USER JOB: the query output (state and node), or the
# bridge's error line.
job_state() {
  bridge "$1" --user "$2" query "$3" </dev/null 2>&1 | head -n 1
}

is_running() { [[ $(job_state "$@") =~ ^RUNNING[[:space:]]+[^[:space:]]+$ ]]; }
# Gone as batchspawner sees it: no PENDING/CONFIGURING/RUNNING/COMPLETING.
is_gone() {
  local s
  s=$(job_state "$@")
  [[ ! $s =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING) && ! $s =~ ^slurm-ssh-bridge: ]]
}

# job_round_trip CONTAINER USER [BETWEEN_CMD...]: submit a job, see it RUNNING
# on a node, run BETWEEN_CMD (e.g. a hub restart) and see it still RUNNING,
# cancel it, see it gone. Records checks with pass/fail.
job_round_trip() {
  local ctr=$1 user=$2 out job state
  shift 2
  local script
  script=$'#!/bin/bash\n#SBATCH --job-name=ssb-pod-test\n#SBATCH --output=/tmp/ssb-pod-test-%j.out\n#SBATCH --time=10\nsleep 600\n'
  local t0=$SECONDS
  if ! out=$(bridge "$ctr" --user "$user" submit <<<"$script" 2>&1); then
    fail "submit from ${ctr}: ${out}"
    return
  fi
  job=${out##*$'\n'}
  job=${job%%;*}
  if [[ $job =~ ^[0-9]+$ ]]; then
    pass "submit through the bridge printed job id ${job} ($((SECONDS - t0)) s)"
  else
    fail "submit printed '${out}', not a job id"
    return
  fi
  if wait_for 60 is_running "$ctr" "$user" "$job"; then
    pass "job ${job} is '$(job_state "$ctr" "$user" "$job")'"
  else
    fail "job ${job} did not reach RUNNING <node> within 60 s (last: '$(job_state "$ctr" "$user" "$job")')"
  fi
  if (($#)); then
    if ! "$@"; then
      fail "step '$*' failed"
    fi
    state=$(job_state "$ctr" "$user" "$job")
    if wait_for 60 is_running "$ctr" "$user" "$job"; then
      pass "job ${job} still RUNNING after: $* ('$(job_state "$ctr" "$user" "$job")')"
    else
      fail "job ${job} not RUNNING after: $* (last: '${state}')"
    fi
  fi
  if out=$(bridge "$ctr" --user "$user" cancel "$job" </dev/null 2>&1); then
    pass "cancel ${job} through the bridge"
  else
    fail "cancel ${job}: ${out}"
  fi
  if wait_for 60 is_gone "$ctr" "$user" "$job"; then
    pass "job ${job} is gone after cancel (query says '$(job_state "$ctr" "$user" "$job")')"
  else
    fail "job ${job} still there 60 s after cancel: '$(job_state "$ctr" "$user" "$job")'"
  fi
  # Another user may not see or cancel it: the wrappers run as the user.
}
