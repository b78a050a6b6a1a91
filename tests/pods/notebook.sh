#!/bin/bash
# A real notebook server through the hub in a pod (source it; lib.sh first):
# log in through the login form on the hub's published 127.0.0.1 port, start
# the server (batchspawner → slurm-ssh-bridge → sudo → the real
# slurmspawner_wrappers → Slurm), wait until ready, reach it through the
# hub's proxy (/api/status, a kernel evaluates 6*7, the job's identity),
# screenshot its notebook tree in headless Chromium, restart the hub and see
# the server kept, stop it through the hub and see the Slurm job gone.
# The HTTP and browser work is in notebook_e2e.py (tests/hub/harness.py, chromium_shot.py).
# shellcheck shell=bash

# Inputs (set by the test script):
#   NB_ENV       environment name (names the screenshot)
#   NB_HUB       hub URL on 127.0.0.1
#   NB_USER      hub user the login yields;  NB_ACCOUNT  the Slurm account (<USER>.<PROJECT>)
#   NB_PROJECT   project key picked in the spawn form (empty: no form)
#   NB_HOME      the account's home directory on the login host
#   NB_PASSWORD  the dummyAuthPassword (passed to Python in its environment only)
#   NB_SQUEUE    name of a function running `squeue ARGS...` on the cluster
#   NB_DIAG      optional: name of a function printing the hub's log tail (run on failure)
#   SSB_ARTIFACTS_DIR  where the screenshot goes (default <repo>/build/artifacts/pods)

# nb_step STEP ARGS...: run one notebook_e2e.py step; prints its findings.
nb_step() {
  SSB_HUB_PASSWORD=$NB_PASSWORD /usr/bin/python3 "${PODS_DIR}/notebook_e2e.py" "$1" --hub "$NB_HUB" \
    --user "$NB_USER" "${@:2}" 2>&1
}

# nb_check DESCRIPTION STEP ARGS...: one check from one step (status 1 when it failed).
nb_check() {
  local desc=$1 out
  shift
  if out=$(nb_step "$@"); then
    pass "${desc}: ${out//$'\n'/; }"
  else
    fail "${desc}: ${out//$'\n'/; }"
    return 1
  fi
}

# nb_job: the account's notebook job, "ID STATE NODE" (nothing when none).
nb_job() {
  "$NB_SQUEUE" -h -u "$NB_ACCOUNT" -n spawner-jupyterhub -o '%i %T %B' 2>/dev/null | head -n 1
}

# notebook_round_trip [BETWEEN_CMD...]: the whole user path; BETWEEN_CMD
# (a hub restart) runs while the server is up. Sets NB_JOB_ID.
NB_JOB_ID=
notebook_round_trip() {
  local job shot out
  shot=${SSB_ARTIFACTS_DIR:-${REPO_ROOT}/build/artifacts/pods}/${NB_ENV}-notebook.png
  rm -f -- "$shot"
  local spawn_args=(--timeout 300)
  [[ -n $NB_PROJECT ]] && spawn_args+=(--project "$NB_PROJECT")
  if out=$(nb_step login-spawn "${spawn_args[@]}"); then
    pass "logged in through /hub/login, started the server through the hub${NB_PROJECT:+ (project ${NB_PROJECT} picked in the spawn form)}: ${out}"
  else
    fail "login and spawn through the hub: ${out//$'\n'/; }"
    nb_job_diagnostics
    return
  fi
  job=$(nb_job)
  # shellcheck disable=SC2034  # read by the test script
  NB_JOB_ID=${job%% *}
  if [[ $job =~ ^[0-9]+\ RUNNING\ [^[:space:]]+$ ]]; then
    pass "the server is Slurm job ${job% RUNNING*} of ${NB_ACCOUNT} (${job#* })"
  else
    fail "no RUNNING Slurm job of ${NB_ACCOUNT} named spawner-jupyterhub (squeue: '${job}')"
  fi
  nb_check "through the hub's proxy" check --expect-account "$NB_ACCOUNT" --expect-home "$NB_HOME" \
    || nb_job_diagnostics
  nb_check "headless Chromium with the login cookie" screenshot --out "$shot" || nb_job_diagnostics
  [[ -s $shot ]] && log "screenshot: ${shot}"
  if (($#)); then
    if "$@"; then
      nb_check "after '$*', the hub still has the server and it answers" check \
        --expect-account "$NB_ACCOUNT" --expect-home "$NB_HOME" || nb_job_diagnostics
    else
      fail "step '$*' failed"
    fi
  fi
  nb_check "stop through the hub" stop --timeout 120 || nb_job_diagnostics
  nb_job_gone() { [[ -z $(nb_job) ]]; }
  if wait_for 60 nb_job_gone; then
    pass "the Slurm job ${job%% *} is gone after the stop"
  else
    fail "the Slurm job is still there 60 s after the stop: '$(nb_job)'"
    nb_job_diagnostics
  fi
}

# nb_job_diagnostics: what the cluster says about the account's jobs.
nb_job_diagnostics() {
  log "jobs of ${NB_ACCOUNT}: $("$NB_SQUEUE" -h -u "$NB_ACCOUNT" -o '%i %T %B %R' 2>&1 | head -n 5)"
  if [[ -n ${NB_DIAG:-} ]]; then
    log "hub log (last lines):"
    "$NB_DIAG" 2>&1 | tail -n 25 | sed 's/^/    /' >&2
  fi
}
