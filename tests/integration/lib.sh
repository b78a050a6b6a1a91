# shellcheck shell=bash
# tests/integration/lib.sh - small helpers for the integration suites.
#
# Source it from a bash suite (`set -euo pipefail` is fine):
#
#   source "$(dirname "$0")/lib.sh"
#   test_case "submit returns a job id"
#   expect_exit 0 slurm-ssh-bridge --user alice.proj1 submit <job.sh
#   expect_match "$STDOUT" '^[0-9]+$' "job id on stdout"
#   ...
#   summary            # prints "N passed, N failed"; exits 1 on any failure
#
# A test case passes when none of its expectations failed; expectations made
# outside any test case count one each. Expectations never abort the suite:
# they record the result and return 0 even under `set -e`. To make later
# steps depend on an earlier one, use `last_ok` (the last expectation passed)
# or `case_ok` (nothing failed so far in the current test case):
#   expect_exit 0 submit_job
#   if last_ok; then ... fi
#
# Variables set by expect_exit: EXIT_CODE, STDOUT, STDERR (contents, trailing
# newlines stripped) and STDOUT_FILE, STDERR_FILE (the captured files, valid
# until the next expect_exit).

LIB_PASSED=0
LIB_FAILED=0
LIB_FAILED_NAMES=()
LIB_CASE=""
LIB_CASE_FAILURES=0
LIB_CASE_T0=""
LIB_TMP=""
LIB_LAST_OK=yes
EXIT_CODE=""
STDOUT=""
STDERR=""
STDOUT_FILE=""
STDERR_FILE=""

_lib_now_ms() {
    local t=${EPOCHREALTIME//[.,]/}
    echo $((t / 1000))
}

_lib_tmp() {
    if [[ -z $LIB_TMP || ! -d $LIB_TMP ]]; then
        LIB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ssb-itest.XXXXXX")
    fi
}

# Shorten long values in messages.
_lib_show() {
    local s=$1
    if ((${#s} > 400)); then
        s="${s:0:400}... (${#s} chars)"
    fi
    printf '%q' "$s"
}

_lib_close_case() {
    [[ -n $LIB_CASE ]] || return 0
    local ms=$(($(_lib_now_ms) - LIB_CASE_T0))
    if ((LIB_CASE_FAILURES == 0)); then
        LIB_PASSED=$((LIB_PASSED + 1))
        printf 'ok    %s (%d ms)\n' "$LIB_CASE" "$ms"
    else
        LIB_FAILED=$((LIB_FAILED + 1))
        LIB_FAILED_NAMES+=("$LIB_CASE")
        printf 'FAIL  %s (%d ms)\n' "$LIB_CASE" "$ms"
    fi
    LIB_CASE=""
    LIB_CASE_FAILURES=0
}

# test_case NAME: start a test case (and finish the previous one).
test_case() {
    _lib_close_case
    LIB_CASE=$1
    LIB_CASE_FAILURES=0
    LIB_CASE_T0=$(_lib_now_ms)
    printf -- '--    %s\n' "$LIB_CASE"
}

# pass / fail WHAT [DETAIL...]: record one expectation's result.
pass() {
    LIB_LAST_OK=yes
    if [[ -z $LIB_CASE ]]; then
        LIB_PASSED=$((LIB_PASSED + 1))
        printf 'ok    %s\n' "$1"
    fi
    return 0
}

fail() {
    local what=$1
    shift
    LIB_LAST_OK=no
    printf '  FAILED: %s\n' "$what" >&2
    local line
    for line in "$@"; do
        printf '    %s\n' "$line" >&2
    done
    if [[ -n $LIB_CASE ]]; then
        LIB_CASE_FAILURES=$((LIB_CASE_FAILURES + 1))
    else
        LIB_FAILED=$((LIB_FAILED + 1))
        LIB_FAILED_NAMES+=("$what")
    fi
    return 0
}

# last_ok: the most recent expectation passed.
last_ok() { [[ $LIB_LAST_OK == yes ]]; }

# case_ok: no expectation of the current test case has failed yet.
case_ok() { ((LIB_CASE_FAILURES == 0)); }

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
    if [[ $1 == "$2" ]]; then
        pass "$3"
    else
        fail "$3" "expected: $(_lib_show "$2")" "actual:   $(_lib_show "$1")"
    fi
}

# expect_ne ACTUAL UNEXPECTED WHAT
expect_ne() {
    if [[ $1 != "$2" ]]; then
        pass "$3"
    else
        fail "$3" "expected anything but: $(_lib_show "$2")"
    fi
}

# expect_match STRING REGEX WHAT   (bash ERE, matched anywhere unless anchored)
expect_match() {
    if [[ $1 =~ $2 ]]; then
        pass "$3"
    else
        fail "$3" "regex:  $2" "string: $(_lib_show "$1")"
    fi
}

# expect_no_match STRING REGEX WHAT
expect_no_match() {
    if [[ $1 =~ $2 ]]; then
        fail "$3" "regex:  $2 (must not match)" "string: $(_lib_show "$1")" "match:  $(_lib_show "${BASH_REMATCH[0]}")"
    else
        pass "$3"
    fi
}

# expect_exit CODE CMD... : run CMD (stdin inherited), capture stdout/stderr,
# check the exit status. CODE is a number, "nonzero" or "any".
expect_exit() {
    local want=$1
    shift
    _lib_tmp
    STDOUT_FILE=$LIB_TMP/stdout
    STDERR_FILE=$LIB_TMP/stderr
    EXIT_CODE=0
    "$@" >"$STDOUT_FILE" 2>"$STDERR_FILE" || EXIT_CODE=$?
    STDOUT=$(cat "$STDOUT_FILE")
    STDERR=$(cat "$STDERR_FILE")
    local ok=no
    case $want in
        any) ok=yes ;;
        nonzero) ((EXIT_CODE != 0)) && ok=yes ;;
        *) [[ $EXIT_CODE == "$want" ]] && ok=yes ;;
    esac
    if [[ $ok == yes ]]; then
        pass "exit $want: $*"
    else
        fail "exit status of: $*" "expected: $want" "actual:   $EXIT_CODE" \
            "stdout:   $(_lib_show "$STDOUT")" "stderr:   $(_lib_show "$STDERR")"
    fi
}

# expect_file_contains FILE REGEX WHAT  (grep -E on the file's lines)
expect_file_contains() {
    if [[ ! -f $1 ]]; then
        fail "$3" "file $1 does not exist"
    elif grep -qE -- "$2" "$1"; then
        pass "$3"
    else
        fail "$3" "file:  $1" "regex: $2" "last lines: $(_lib_show "$(tail -n 5 "$1")")"
    fi
}

# expect_file_not_contains FILE REGEX WHAT
expect_file_not_contains() {
    if [[ -f $1 ]] && grep -qE -- "$2" "$1"; then
        fail "$3" "file:  $1" "regex: $2 (must not occur)" "line: $(_lib_show "$(grep -m1 -E -- "$2" "$1")")"
    else
        pass "$3"
    fi
}

# wait_for TIMEOUT_S CMD... : run CMD every 0.2 s until it succeeds (return
# 0) or TIMEOUT_S seconds have passed (return 1). CMD's output is discarded.
# One definition for the suites and the sandbox: tests/lib/wait.sh.
# shellcheck source=tests/lib/wait.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/wait.sh"

# summary: finish the last test case, print "N passed, N failed", remove
# the helpers' temporary files and exit (1 if anything failed).
summary() {
    _lib_close_case
    if ((LIB_FAILED > 0)); then
        local name
        echo "failed:"
        for name in "${LIB_FAILED_NAMES[@]}"; do
            echo "  - $name"
        done
    fi
    if [[ -n $LIB_TMP && -d $LIB_TMP ]]; then
        rm -rf "$LIB_TMP"
    fi
    echo "$LIB_PASSED passed, $LIB_FAILED failed"
    if ((LIB_FAILED > 0)); then
        exit 1
    fi
    exit 0
}

# ---- processes a suite starts -------------------------------------------

# alive PID: the process exists and is not a zombie. gone PID: it does not.
alive() {
    local state=""
    [[ -r /proc/$1/stat ]] || return 1
    read -r _ _ state _ <"/proc/$1/stat" 2>/dev/null || return 1
    [[ $state != Z ]]
}
gone() { ! alive "$1"; }

# Every process a suite starts in the background goes into STARTED_PIDS.
STARTED_PIDS=()

# stop_started MARKER: stop (TERM, then KILL after 5 s) each started process
# that is still alive and whose command line still contains MARKER (a PID
# may have been reused by someone else's process since).
stop_started() {
    local marker=$1 pid termed=()
    for pid in "${STARTED_PIDS[@]}"; do
        if alive "$pid" && grep -qaF -e "$marker" "/proc/$pid/cmdline" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            termed+=("$pid")
        fi
    done
    for pid in "${termed[@]}"; do
        if ! wait_for 5 gone "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

# snapshot_binary SRC DIR: copies the binary into DIR so that a rebuild
# during the run changes nothing; prints the copy's path. Fails (with a
# message) when the copy does not run.
snapshot_binary() {
    local copy
    copy=$2/$(basename "$1")
    cp "$1" "$copy" && chmod 0755 "$copy"
    if ! "$copy" --version >/dev/null; then
        echo "$1 does not run" >&2
        return 1
    fi
    echo "$copy"
}

# ---- suite set-up and clean-up -------------------------------------------

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE_SANDBOXES=()

# suite_setup NAME BRIDGE-PATH: the preamble every suite shares. Makes WORK
# (/tmp/ssb-NAME.XXXXXX, mode 0755: the sandbox's users traverse it to reach
# the wrappers), sets BRIDGE to a snapshot of the binary inside it (a rebuild
# during the run changes nothing), SANDBOX (sandbox.sh) and SB (WORK/sb, the
# main sandbox's directory), and installs the EXIT trap: the suite's own
# suite_teardown function when it defines one, then stop_started "$WORK",
# every sandbox sandbox_up brought up taken down (last first), and WORK
# removed (kept, and its path printed, with KEEP=1).
suite_setup() {
    local bridge_arg
    bridge_arg=$(realpath "${2:?usage: $0 PATH/TO/slurm-ssh-bridge}")
    SANDBOX=$LIB_DIR/../sandbox/sandbox.sh
    WORK=$(mktemp -d "/tmp/ssb-$1.XXXXXX")
    chmod 0755 "$WORK"
    trap _suite_cleanup EXIT
    BRIDGE=$(snapshot_binary "$bridge_arg" "$WORK") || exit 1
    # shellcheck disable=SC2034 # for the suite
    SB=$WORK/sb
}

_suite_cleanup() {
    set +e
    if declare -F suite_teardown >/dev/null; then
        suite_teardown
    fi
    stop_started "$WORK"
    local i
    for ((i = ${#SUITE_SANDBOXES[@]} - 1; i >= 0; i--)); do
        bash "$SANDBOX" down "${SUITE_SANDBOXES[i]}" >/dev/null 2>&1
    done
    if [[ -n ${KEEP:-} ]]; then
        echo "KEEP: logs left in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

# sandbox_up DIR [sandbox.sh up options...]: brings a sandbox up in DIR
# (taken down again at exit). On failure prints its log and returns 1.
sandbox_up() {
    local dir=$1
    shift
    SUITE_SANDBOXES+=("$dir")
    if ! bash "$SANDBOX" up "$dir" "$@" >"$dir.up.log" 2>&1; then
        cat "$dir.up.log"
        return 1
    fi
}

# use_sandbox DIR: the suite's commands talk to this sandbox: its
# sandbox.env (SSHD_PID, SSH_PORT, SLURM_CONF, ...) sourced, CONF set to its
# bridge.toml, SLURM_CONF exported.
use_sandbox() {
    # shellcheck source=/dev/null
    source "$1/sandbox.env"
    # shellcheck disable=SC2034 # for the suite
    CONF=$1/bridge.toml
    export SLURM_CONF
}

# ---- small readers ---------------------------------------------------------

# info TEXT...: an indented line of context in the suite's output.
info() { printf '  info: %s\n' "$*"; }

# count_lines FILE ERE: how many lines of FILE match ERE (0 when FILE is missing).
count_lines() {
    local n
    n=$(grep -cE -- "$2" "$1" 2>/dev/null) || true
    echo "${n:-0}"
}

# kv CMD...: run CMD and load its key=value output lines into KV[key]; its
# stderr (samples of bad results) goes to KV_NOTES.
# shellcheck disable=SC2034 # KV and KV_NOTES are read by the suites
declare -A KV=()
KV_NOTES=""
# shellcheck disable=SC2034
kv() {
    KV=()
    local line out errf=$WORK/kv.err
    out=$("$@" 2>"$errf") || true
    KV_NOTES=$(cat "$errf")
    while IFS= read -r line; do
        [[ $line =~ ^([a-z_]+)=(.*)$ ]] && KV[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    done <<<"$out"
}

# ---- timing, logs and the daemon -----------------------------------------

now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }

# log_tail FILE [N]: the last N (default 12) lines of FILE, indented.
log_tail() { tail -n "${2:-12}" "$1" 2>/dev/null | sed 's/^/      | /'; }

# start_daemon_logged LOG BRIDGE-ARGS...: start `$BRIDGE BRIDGE-ARGS serve`
# in the background (inside the network namespace $DAEMON_NETNS when set),
# stderr appended to LOG; wait (bounded, 15 s) until `status` answers. Sets
# DAEMON_PID and adds it to STARTED_PIDS.
start_daemon_logged() {
    local log=$1
    shift
    if [[ -n ${DAEMON_NETNS:-} ]]; then
        ip netns exec "$DAEMON_NETNS" "$BRIDGE" "$@" serve >/dev/null 2>>"$log" &
    else
        "$BRIDGE" "$@" serve >/dev/null 2>>"$log" &
    fi
    DAEMON_PID=$!
    STARTED_PIDS+=("$DAEMON_PID")
    local deadline=$(($(now_ms) + 15000))
    while (($(now_ms) < deadline)); do
        if ! alive "$DAEMON_PID"; then
            fail "daemon exited at start" "log:" "$(log_tail "$log")"
            return 1
        fi
        if "$BRIDGE" "$@" status >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    fail "daemon did not answer status within 15 s" "log:" "$(log_tail "$log")"
    return 1
}

# stop_daemon PID [TIMEOUT_S]: SIGTERM, wait (bounded, default 30 s) for the
# exit, SIGKILL past the bound. Sets DAEMON_RC (the exit status when the
# daemon is this shell's child and not disowned, or "hung").
stop_daemon() {
    local pid=$1 t=${2:-30}
    # shellcheck disable=SC2034 # read by the suites
    DAEMON_RC=hung
    kill -TERM "$pid" 2>/dev/null || true
    if wait_for "$t" gone "$pid"; then
        DAEMON_RC=0
        # shellcheck disable=SC2034
        wait "$pid" 2>/dev/null || DAEMON_RC=$?
    else
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
