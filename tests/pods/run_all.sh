#!/bin/bash
# Run the pod tests: (a) manifests of all five environments, the offline image
# build (timed on its own), (b) dev_dummyauth end to end, (c)
# dev_dummyauth_extslurm against the host sandbox. Prints each part's time
# and, last, one line "N passed, N failed"; exits non-zero on any failure.
#
# Usage: tests/pods/run_all.sh [manifests|build|dummyauth|extslurm]...  (default: all)
# Needs root, podman, runc, catatonit, debootstrap, python3-yaml (Debian's
# /usr/bin/python3), openssh-client; the extslurm part also what
# tests/sandbox/sandbox.sh needs (openssh-server, sudo, munge, slurm-wlm).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${HERE}/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-${REPO_ROOT}/containers/podman/containers.conf}"

PARTS=("$@")
((${#PARTS[@]})) || PARTS=(manifests build dummyauth extslurm)
TOTAL_PASSED=0
TOTAL_FAILED=0
TIMES=()

# run_part NAME COMMAND...: run a test script, add up its "N passed, N failed".
run_part() {
  local name=$1 out status=0 t0=$SECONDS line
  shift
  echo "=== ${name}"
  out=$(mktemp)
  "$@" | tee "$out" || status=$?
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1 || true)
  rm -f "$out"
  if [[ -n $line ]]; then
    TOTAL_PASSED=$((TOTAL_PASSED + ${line%% passed*}))
    local f=${line#*passed, }
    TOTAL_FAILED=$((TOTAL_FAILED + ${f%% failed*}))
  fi
  if ((status != 0)) && [[ -z $line || $line == *" 0 failed" ]]; then
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    echo "not ok - ${name} exited with status ${status}"
  fi
  TIMES+=("${name}: $((SECONDS - t0)) s")
}

build_offline() {
  local t0=$SECONDS
  if bash "${REPO_ROOT}/containers/build_images.sh" --offline --stage stage-dev jupyterhub slurm >&2; then
    echo "ok - offline images built (localhost/ssb-jupyterhub:dev-latest, localhost/ssb-slurm:dev-latest) in $((SECONDS - t0)) s"
    echo "1 passed, 0 failed"
  else
    echo "not ok - offline image build failed"
    echo "0 passed, 1 failed"
    return 1
  fi
}

built=0
for part in "${PARTS[@]}"; do
  case $part in
    manifests) run_part "(a) manifests" bash "${HERE}/test_manifests.sh" ;;
    build)
      before=$TOTAL_FAILED
      run_part "offline image build" build_offline
      ((TOTAL_FAILED == before)) && built=1
      ;;
    dummyauth) SSB_POD_TEST_SKIP_BUILD=$built run_part "(b) dev_dummyauth pod" bash "${HERE}/test_dev_dummyauth.sh" ;;
    extslurm) SSB_POD_TEST_SKIP_BUILD=$built run_part "(c) dev_dummyauth_extslurm pod" bash "${HERE}/test_dev_dummyauth_extslurm.sh" ;;
    *) echo "unknown part ${part}" >&2; exit 2 ;;
  esac
done
echo "=== durations"
printf '  %s\n' "${TIMES[@]}"
echo "${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed"
((TOTAL_FAILED == 0))
