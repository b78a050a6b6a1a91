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
  bridge "$1" --user "$2" query "$3" </dev/null 2>&1 | head -n 1 || true
}

is_running() { [[ $(job_state "$@") =~ ^RUNNING[[:space:]]+[^[:space:]]+$ ]]; }
# Gone as batchspawner sees it: no PENDING/CONFIGURING/RUNNING/COMPLETING.
is_gone() {
  local s
  s=$(job_state "$@")
  [[ ! $s =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING) && ! $s =~ ^slurm-ssh-bridge: ]]
}

# job_round_trip CONTAINER USER [BETWEEN_CMD...]: submit a job (with a
# JUPYTERHUB_API_TOKEN in the bridge's environment), see it RUNNING on a node
# through the daemon, see the token arrive in the job (the job's output file
# is read with the function named by $READ_JOB_OUTPUT, given the path), run
# BETWEEN_CMD (e.g. a hub restart) and see it still RUNNING, cancel it, see
# it gone. Records checks with pass/fail.
job_round_trip() {
  local ctr=$1 user=$2 out job state tag token
  shift 2
  tag=$(/usr/bin/python3 -c 'import secrets; print(secrets.token_hex(6))')
  token="test-token-${tag}"
  local script
  script="#!/bin/bash
#SBATCH --job-name=ssb-pod-test
#SBATCH --output=/tmp/ssb-pod-test-${tag}-%j.out
#SBATCH --time=10
echo \"ssb-token=\${JUPYTERHUB_API_TOKEN:-unset}\"
sleep 600
"
  local t0=$SECONDS
  if ! out=$(podman exec -i -e "JUPYTERHUB_API_TOKEN=${token}" "$ctr" slurm-ssh-bridge --user "$user" submit <<<"$script" 2>&1); then
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
  if out=$(bridge "$ctr" --json --user "$user" query "$job" </dev/null 2>&1) && [[ $out == *'"path":"daemon"'* ]]; then
    pass "the query went through the bridge daemon in the container"
  else
    fail "the query did not go through the daemon: ${out}"
  fi
  job_output_has_token() { [[ $("$READ_JOB_OUTPUT" "/tmp/ssb-pod-test-${tag}-${job}.out" 2>/dev/null) == *"ssb-token=${token}"* ]]; }
  if wait_for 30 job_output_has_token; then
    pass "JUPYTERHUB_API_TOKEN reached the job through the bridge (env forwarding, sudo env_keep)"
  else
    fail "the job did not see JUPYTERHUB_API_TOKEN (output: '$("$READ_JOB_OUTPUT" "/tmp/ssb-pod-test-${tag}-${job}.out" 2>&1 | head -c 200)')"
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
  "$READ_JOB_OUTPUT" --remove "/tmp/ssb-pod-test-${tag}-${job}.out" >/dev/null 2>&1 || true
}
