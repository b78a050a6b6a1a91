#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Metrics and logs (issue 15, items 1 and 5) against the real sandbox: the
# daemon's loopback /metrics and `slurm-ssh-bridge metrics` parse with the
# real Prometheus parser and agree, a submit/query/cancel round trip moves
# the counters and histograms, a refused request is counted by its error
# code, no user name or job id is a label value, promtool accepts the live
# scrape, and the JSON log has one parseable line per request with the
# issue's fields and no secret. helpers/metrics_check.py does the reading.
#
#   sudo tests/integration/metrics.sh build/slurm-ssh-bridge
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

suite_setup metrics "${1:-}"
PY=/usr/bin/python3
CHECK=$HERE/helpers/metrics_check.py
SOCKC=$HERE/helpers/sockclient.py
sandbox_up "$SB" --cpus 2 || exit 1
use_sandbox "$SB"

SOCK=$WORK/metrics.sock
kv "$PY" "$CHECK" freeport
PORT=${KV[port]:?no free port}
LOG=$WORK/daemon.json.log
U=alice.proj1
SECRET="ssb-metrics-secret-$RANDOM$RANDOM"
MARKER="ssb-metrics-script-marker-$RANDOM"
bridge() { "$BRIDGE" --config "$CONF" --set "daemon.socket=$SOCK" "$@"; }
scrape() { kv "$PY" "$CHECK" http "$PORT" /metrics GET "$1"; }
suite_teardown() { scancel -n ssb-metrics 2>/dev/null || true; }
job() {
    printf '#!/bin/bash\n#SBATCH --output=/dev/null\n#SBATCH --time=5\n#SBATCH --job-name=ssb-metrics\n'
    printf 'echo %s >/dev/null\nsleep 300\n' "$MARKER"
}

test_case "metrics.listen: GET /metrics in the text format; other paths and methods refused; loopback only"
expect_exit 2 timeout 10 "$BRIDGE" --config "$CONF" --set "daemon.socket=$WORK/x.sock" --set metrics.listen=0.0.0.0:9 serve
expect_match "$STDERR" 'metrics.listen.*loopback only' "a non-loopback metrics.listen is refused at start, saying why"
start_daemon_logged "$LOG" --config "$CONF" --set "daemon.socket=$SOCK" --set "metrics.listen=127.0.0.1:$PORT" \
    --set log.format=json || exit 1
D=$DAEMON_PID
scrape "$WORK/m0.txt"
expect_eq "${KV[code]:-}" 200 "GET /metrics: 200"
expect_eq "${KV[content_type]:-}" "text/plain;version=0.0.4;charset=utf-8" "the Prometheus text format's content type"
expect_eq "${KV[length_ok]:-}" True "Content-Length matches the body"
kv "$PY" "$CHECK" http "$PORT" /other GET "$WORK/404.txt"
expect_eq "${KV[code]:-}" 404 "GET /other: 404"
kv "$PY" "$CHECK" http "$PORT" /metrics POST "$WORK/405.txt"
expect_eq "${KV[code]:-}" 405 "POST /metrics: 405"
kv "$PY" "$CHECK" http "$PORT" /metrics HEAD "$WORK/head.txt"
expect_eq "${KV[code]:-}/${KV[bytes]:-}" 200/0 "HEAD /metrics: 200, no body"

test_case "a submit, query and cancel round trip moves the counters and histograms; a refusal counts by its code"
expect_exit 0 env JUPYTERHUB_API_TOKEN="$SECRET" "$BRIDGE" --config "$CONF" --set "daemon.socket=$SOCK" \
    --mode daemon --user "$U" submit < <(job)
JOB=$STDOUT
expect_match "$JOB" '^[0-9]+$' "submit through the daemon: job $JOB"
expect_exit 0 bridge --mode daemon --user "$U" query "$JOB"
expect_exit 0 bridge --mode daemon --user "$U" cancel "$JOB"
# A protocol client's query the daemon refuses before it runs anything.
bad='{"v":1,"id":"bad1","op":"query","user":"alice.proj1","job_id":"12x"}'
expect_exit 0 timeout -k 5 30 "$PY" "$SOCKC" session "$SOCK" "bad=$bad"
expect_match "$STDOUT" '"code":"invalid_job_id"' "the bad job id is refused as invalid_job_id"
scrape "$WORK/m1.txt"
kv "$PY" "$CHECK" delta "$WORK/m0.txt" "$WORK/m1.txt"
for op in submit query cancel; do
    expect_eq "${KV[requests_${op}_ok]:-}" 1 "requests_total{op=\"$op\",outcome=\"ok\"} went up by 1"
done
expect_eq "${KV[requests_query_invalid_job_id]:-}" 1 "requests_total{op=\"query\",outcome=\"invalid_job_id\"} went up by 1"
expect_eq "${KV[duration_submit]:-}/${KV[duration_query]:-}/${KV[duration_cancel]:-}" 1/2/1 \
    "request_duration_seconds_count by op: submit 1, query 2 (the refusal too), cancel 1"
expect_eq "${KV[queue_wait]:-}" 3 "queue_wait_seconds_count went up by 3 (the refusal never queued)"
expect_eq "${KV[submit_inf_is_count]:-}" 1 "the +Inf bucket equals _count"
expect_match "${KV[connected]:-}" '^[12]$' "connections{state=\"connected\"}: ${KV[connected]:-?} of pool.connections = 2"
expect_eq "${KV[uptime_moved]:-}" 1 "uptime_seconds does not go back"

test_case "HTTP and the socket's \`metrics\` agree"
scrape "$WORK/a.txt"
expect_exit 0 bridge --mode daemon metrics
cp "$STDOUT_FILE" "$WORK/b.txt"
scrape "$WORK/c.txt"
kv "$PY" "$CHECK" agree "$WORK/a.txt" "$WORK/b.txt" "$WORK/c.txt"
expect_eq "${KV[disagree]:-x}" 0 "the same series, each counter between the two HTTP scrapes (${KV[compared]:-?} compared)"
expect_exit 0 bridge --mode daemon --json metrics
expect_eq "$("$PY" "$SOCKC" jget "$STDOUT" 'd["ok"] and d["metrics"].startswith("# HELP slurm_ssh_bridge_")')" True \
    "metrics --json: the same text in the JSON envelope"

test_case "the real parser reads every family; no user name or job id as a label value; promtool accepts it"
kv "$PY" "$CHECK" check "$WORK/c.txt" "user:$U" "user:bob.proj1" "job:$JOB"
expect_eq "${KV[unprefixed]:-x}/${KV[bad_labels]:-x}/${KV[leaked]:-x}/${KV[bad_connection]:-x}" 0/0/0/0 \
    "every name slurm_ssh_bridge_*, labels only op/outcome/state/connection/le/version, no user or job id, connection an index"
expect_match "${KV[types]:-}" '^counter,gauge,histogram$' "counters, gauges and histograms (${KV[families]:-?} families)"
expect_exit 0 promtool check metrics <"$WORK/c.txt"
expect_eq "$STDOUT$STDERR" "" "promtool check metrics: no problem reported"

test_case "log.format = \"json\": one line per request with id, op, user, job_id, outcome, elapsed_ms, connection; no secret"
kv "$PY" "$CHECK" logs "$LOG" "$SECRET" "$MARKER"
expect_eq "${KV[bad_json]:-x}" 0 "every one of the ${KV[lines]:-?} log lines is JSON"
expect_eq "${KV[request_lines]:-x}" 4 "four request lines (submit, query, cancel, the refused query)"
expect_eq "${KV[missing]:-x}" 0 "each has every field, elapsed_ms a number"
expect_eq "${KV[with_job_id]:-x}/${KV[with_connection]:-x}" 3/3 \
    "the job id on query, cancel and the submit's answer; the connection index on the three it ran"
expect_eq "${KV[leaked]:-x}" 0 "neither the API token nor the script is logged"
expect_file_contains "$LOG" "\"op\":\"submit\",\"user\":\"$U\",\"job_id\":\"$JOB\"" "the submit's line names user and job"
stop_daemon "$D"

test_case "--log-level beats the file and --set: warn silences the request lines, debug adds the idle close"
# A silent client closed after daemon.idle_timeout_s is a debug event.
for level in warn debug; do
    start_daemon_logged "$WORK/$level.log" --config "$CONF" --set "daemon.socket=$SOCK" --set log.level=info \
        --set daemon.idle_timeout_s=1 --log-level "$level" || exit 1
    expect_exit 0 bridge --mode daemon --user "$U" query "$JOB"
    kv "$PY" "$HERE/helpers/hostile_helper.py" idle "$SOCK" 5
    expect_match "${KV[closed_after_s]:-never}" '^[0-9.]+$' "$level: the silent client was closed"
    stop_daemon "$DAEMON_PID"
done
expect_eq "$(count_lines "$WORK/warn.log" ' (info|debug) ')" 0 "--log-level warn: no info or debug line"
expect_file_contains "$WORK/debug.log" ' debug client [0-9]+: idle for daemon.idle_timeout_s = 1 s; closed' \
    "--log-level debug: the idle close is logged"
expect_file_contains "$WORK/debug.log" "req=[0-9.]+/cli .*op=query user=$U job=$JOB" "and so is the request line"

summary
