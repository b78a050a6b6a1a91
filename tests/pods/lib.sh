#!/bin/bash
# Helpers for the pod tests (source it). Each test script counts checks with
# check/pass/fail and ends with `summary`, which prints "N passed, N failed"
# and returns non-zero when anything failed.
# shellcheck shell=bash

PODS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${PODS_DIR}/../.." && pwd)"
# podman on Debian 12 hosts like CI needs runc and no default ulimits
# (containers/podman/containers.conf); a caller's own choice wins.
export CONTAINERS_CONF="${CONTAINERS_CONF:-${REPO_ROOT}/containers/podman/containers.conf}"
PASSED=0
FAILED=0
T_START=$SECONDS

log() { printf '[%s %4ds] %s\n' "${TEST_NAME:-pods}" "$((SECONDS - T_START))" "$*" >&2; }
pass() { PASSED=$((PASSED + 1)); printf 'ok - %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'not ok - %s\n' "$*"; }
# check DESCRIPTION COMMAND...: run COMMAND, pass or fail on its status.
check() {
  local desc=$1
  shift
  if "$@"; then pass "$desc"; else fail "$desc"; fi
}
summary() {
  printf '%s: %d passed, %d failed\n' "${TEST_NAME:-pods}" "$PASSED" "$FAILED" >&2
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  ((FAILED == 0))
}

# wait_for SECONDS COMMAND...: retry COMMAND every second until it succeeds
# or SECONDS have passed (bounded); returns COMMAND's last status.
wait_for() {
  local limit=$1 deadline
  shift
  deadline=$((SECONDS + limit))
  while true; do
    if "$@"; then return 0; fi
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# http_status URL: HTTP status code of a GET (loopback URLs only).
http_status() {
  case $1 in
    http://127.0.0.1:*|http://localhost:*) ;;
    *) echo "refusing non-loopback URL $1" >&2; return 1 ;;
  esac
  /usr/bin/python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
PY
}

# env_leftovers ENV: print the pods, containers, volumes and secrets of ENV
# that still exist (nothing when clean).
env_leftovers() {
  local env=$1 slug pod
  slug=${env//_/-}
  pod="jupyterhub-slurm-${slug}"
  podman pod ps --format '{{.Name}}' | grep -x -- "$pod" | sed 's/^/pod /' || true
  podman ps -a --format '{{.Names}}' | grep -- "^${pod}-\|^${pod}$" | sed 's/^/container /' || true
  podman volume ls --format '{{.Name}}' | grep -- "-${slug}$" | sed 's/^/volume /' || true
  podman secret ls --format '{{.Name}}' | grep -- "-${slug}$" | sed 's/^/secret /' || true
}

require_root_podman() {
  [[ $(id -u) == 0 ]] || { echo "pod tests need root (rootful podman)" >&2; return 1; }
  command -v podman >/dev/null || { echo "podman is not installed (apt-get install podman runc catatonit)" >&2; return 1; }
}

# quiet COMMAND...: run COMMAND with its output discarded (for check).
quiet() { "$@" >/dev/null 2>&1; }

# teardown_and_prove_empty ENV DEPLOY_DIR: `down.sh --force`, then check that
# no pod, container, volume or secret of ENV is left.
teardown_and_prove_empty() {
  local env_name=$1 deploy=$2 t0=$SECONDS left
  check "down.sh --force" quiet bash "${REPO_ROOT}/environments/down.sh" "$env_name" "$deploy" --force
  left=$(env_leftovers "$env_name")
  if [[ -z $left ]]; then
    pass "nothing left: no pod, container, volume or secret of ${env_name} ($((SECONDS - t0)) s)"
  else
    fail "left behind after down --force:"$'\n'"${left}"
  fi
}
