# shellcheck shell=bash
# tests/lib/wait.sh - the one bounded wait of the test scripts, sourced by
# tests/integration/lib.sh (the suites) and tests/sandbox/sandbox.sh.
#
# Every wait in the tests is bounded: a check that never succeeds costs its
# timeout, never a hung run.

# wait_for TIMEOUT_S CMD... : run CMD until it succeeds (return 0) or
# TIMEOUT_S whole seconds have passed (return 1), sleeping WAIT_FOR_EVERY_S
# (default 0.2; the sandbox's start-up checks use 0.1) between attempts.
# CMD runs in the current shell (a function may set variables); its output
# is discarded: it is a check, its answer is its exit status.
wait_for() {
    local timeout_s=$1
    shift
    local now=${EPOCHREALTIME//[.,]/}
    local deadline=$((now + timeout_s * 1000000))
    while true; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        now=${EPOCHREALTIME//[.,]/}
        if ((now >= deadline)); then
            return 1
        fi
        sleep "${WAIT_FOR_EVERY_S:-0.2}"
    done
}
