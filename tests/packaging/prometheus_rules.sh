#!/usr/bin/env bash
# tests/packaging/prometheus_rules.sh - the Prometheus alerting rules
# (packaging/prometheus) and the Grafana dashboard (packaging/grafana)
# against a real daemon and a real Prometheus:
#   1. promtool check rules / test rules (the rules' unit tests);
#   2. a daemon whose login host is 127.0.0.1:1 (nothing connects, no SSH
#      needed) serving [metrics] listen on a free loopback port;
#   3. GET /metrics and `slurm-ssh-bridge metrics` parse with
#      prometheus_client's parser, promtool check metrics finds no problem;
#   4. every slurm_ssh_bridge_* name, label and label value the rules and the
#      dashboard use is in that scrape (and the check fails on broken copies);
#   5. /usr/bin/prometheus scrapes the daemon with the rules loaded: up == 1,
#      SlurmSshBridgeNoConnection pending or firing (one query made the pool
#      try to connect), no unknown-submit alert, every rule evaluates.
#
#   tests/packaging/prometheus_rules.sh PATH/TO/slurm-ssh-bridge [ARTIFACT_DIR]
#
# With ARTIFACT_DIR (and /usr/bin/chromium), step 5 also saves
# ARTIFACT_DIR/prometheus-alerts.png: Prometheus's alerts page with the
# pending alert, as an admin sees it.
#
# Needs no root; the daemon and Prometheus run from a private work directory.
set -euo pipefail

bridge=$(realpath "${1:?usage: $0 PATH/TO/slurm-ssh-bridge [ARTIFACT_DIR]}")
artifacts=${2:-}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RULES=$ROOT/packaging/prometheus/slurm-ssh-bridge-rules.yml
RULES_TEST=$ROOT/packaging/prometheus/slurm-ssh-bridge-rules.test.yml
DASHBOARD=$ROOT/packaging/grafana/slurm-ssh-bridge.json
check=(/usr/bin/python3 "$ROOT/tests/packaging/prometheus_check.py")
# free_port: a free TCP port on 127.0.0.1 (the suites' helper prints port=N).
free_port() { /usr/bin/python3 "$ROOT/tests/integration/helpers/metrics_check.py" freeport | sed -n 's/^port=//p'; }
started=$SECONDS

fails=0
ok() { printf 'ok: %s\n' "$*"; }
bad() {
    printf 'FAIL: %s\n' "$*"
    fails=$((fails + 1))
}
# expect DESCRIPTION CMD...: runs CMD showing its output; ok when it succeeds.
expect() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
# expect_fail DESCRIPTION CMD...: ok when CMD fails (its output is hidden).
expect_fail() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then bad "$what"; else ok "$what"; fi
}

for tool in promtool /usr/bin/prometheus ssh-keygen /usr/bin/python3; do
    command -v "$tool" >/dev/null || {
        echo "prometheus_rules.sh: $tool is missing (scripts/install-deps.sh installs it)" >&2
        exit 1
    }
done

work=$(mktemp -d)
daemon_pid=
prom_pid=
cleanup() {
    local pid
    for pid in $prom_pid $daemon_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# 1. The rules and their unit tests.
expect "promtool check rules" promtool check rules "$RULES"
expect "promtool test rules" promtool test rules "$RULES_TEST"

# 2. A daemon that needs no login host.
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
: >"$work/known_hosts"
metrics_port=$(free_port)
config=$work/config.toml
cat >"$config" <<EOF
[ssh]
host = "127.0.0.1"
port = 1
identity_file = "$work/key"
known_hosts = "$work/known_hosts"
strict_key_permissions = false
[daemon]
socket = "$work/bridge.sock"
[pool]
queue_timeout_s = 1
[metrics]
listen = "127.0.0.1:$metrics_port"
EOF
"$bridge" --config "$config" serve >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
    "$bridge" --config "$config" status >"$work/status.json" 2>/dev/null && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
if ! "$bridge" --config "$config" status >"$work/status.json" 2>&1; then
    bad "daemon answers status"
    sed 's/^/  daemon: /' "$work/daemon.log"
    exit 1
fi
ok "daemon answers status (pid $daemon_pid, metrics on 127.0.0.1:$metrics_port)"
# One request through the daemon: requests_total and request_duration_seconds
# get series whose labels the drift check sees, and a connection tries (the
# pool opens them only when work waits), fails and stays in backoff, which
# SlurmSshBridgeNoConnection needs. The request fails (transport, or timeout
# after pool.queue_timeout_s).
timeout 30 "$bridge" --config "$config" --mode daemon --user alice query 1 >/dev/null 2>&1 || true

# 3. The scrape, over HTTP and from the socket.
expect "GET /metrics" "${check[@]}" fetch "http://127.0.0.1:$metrics_port/metrics" "$work/scrape.txt" --wait 10
if "$bridge" --config "$config" metrics >"$work/cli.txt"; then ok "slurm-ssh-bridge metrics"; else bad "slurm-ssh-bridge metrics"; fi
expect "both parse with prometheus_client" "${check[@]}" parse "$work/scrape.txt" "$work/cli.txt"
if lint=$(promtool check metrics <"$work/scrape.txt" 2>&1) && [[ -z $lint ]]; then
    ok "promtool check metrics: no problems"
else
    bad "promtool check metrics:"
    printf '%s\n' "$lint" | sed 's/^/  /'
fi

# 4. Drift: the rules and the dashboard against that scrape.
"$bridge" config --error-codes >"$work/error-codes.json"
drift=("${check[@]}" drift --scrape "$work/scrape.txt" --error-codes "$work/error-codes.json")
expect "rules and dashboard match the scrape" "${drift[@]}" --rules "$RULES" --dashboard "$DASHBOARD"
# ...and the check catches what it is for.
sed 's/slurm_ssh_bridge_queue_size/slurm_ssh_bridge_queue_sise/' "$RULES" >"$work/misspelt.yml"
sed 's/state="connected"/status="connected"/' "$RULES" >"$work/wrong-label.yml"
sed 's/outcome="overloaded"/outcome="overload"/' "$RULES" >"$work/wrong-outcome.yml"
sed 's/state=~"backoff|connecting"/state=~"backof|connecting"/' "$RULES" >"$work/wrong-state.yml"
sed 's/slurm_ssh_bridge_reconnects_total/slurm_ssh_bridge_reconnect_total/' "$DASHBOARD" >"$work/misspelt.json"
sed 's/"id": 15,/"id": 14,/' "$DASHBOARD" >"$work/duplicate-id.json"
expect_fail "drift check fails on a misspelt metric in the rules" "${drift[@]}" --rules "$work/misspelt.yml" --dashboard "$DASHBOARD"
expect_fail "drift check fails on a label the family lacks" "${drift[@]}" --rules "$work/wrong-label.yml" --dashboard "$DASHBOARD"
expect_fail "drift check fails on an outcome that is no error code" "${drift[@]}" --rules "$work/wrong-outcome.yml" --dashboard "$DASHBOARD"
expect_fail "drift check fails on a state that does not exist" "${drift[@]}" --rules "$work/wrong-state.yml" --dashboard "$DASHBOARD"
expect_fail "drift check fails on a misspelt metric in the dashboard" "${drift[@]}" --rules "$RULES" --dashboard "$work/misspelt.json"
expect_fail "drift check fails on a duplicate panel id" "${drift[@]}" --rules "$RULES" --dashboard "$work/duplicate-id.json"

# 5. A real Prometheus with the rules, scraping the daemon.
prom_port=$(free_port)
cat >"$work/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$RULES"]
scrape_configs:
  - job_name: slurm-ssh-bridge
    static_configs: [{targets: ["127.0.0.1:$metrics_port"]}]
EOF
/usr/bin/prometheus --config.file="$work/prometheus.yml" --web.listen-address="127.0.0.1:$prom_port" \
    --storage.tsdb.path="$work/tsdb" >"$work/prometheus.log" 2>&1 &
prom_pid=$!
if "${check[@]}" prometheus --url "http://127.0.0.1:$prom_port" --timeout 60; then
    ok "Prometheus scrapes the daemon and shows the expected alerts"
else
    bad "Prometheus scrapes the daemon and shows the expected alerts"
    tail -n 20 "$work/prometheus.log" | sed 's/^/  prometheus: /'
fi
if [[ -n $artifacts && -x /usr/bin/chromium ]]; then
    expect "Prometheus's alerts page" "${check[@]}" screenshot --url "http://127.0.0.1:$prom_port" \
        --out "$artifacts/prometheus-alerts.png"
fi

echo "prometheus_rules.sh: $((SECONDS - started)) s, $fails failure(s)"
((fails == 0))
