#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/packaging/systemd.sh - the Debian package under a real systemd: a
# podman container with systemd as init and the .deb installed as an admin
# would, pointed at a sandbox login host (sshd + sudo + Slurm on loopback;
# the container shares the host's network namespace, nothing else). Checks:
#   - slurm-ssh-bridge.socket + .service start; `status` answers through
#     /run/slurm-ssh-bridge/bridge.sock, socket from systemd;
#   - a job round trip (submit, query, cancel) through the service;
#   - `systemctl restart` during a burst of queries: none fails (in-flight
#     requests drain, new ones wait in the socket's backlog);
#   - `systemd-analyze security` of the running unit, exposure below 2.0.
#
#   sudo tests/packaging/systemd.sh build/slurm-ssh-bridge [DEB | DIR]
#
# The package: DEB, or the slurm-ssh-bridge_*.deb in DIR (default
# build/artifacts/deb, where tests/packaging/deb.sh, CTest packaging.deb,
# leaves it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/containers/podman/containers.conf}"

suite_setup systemd "${1:-}"
DEB=${2:-$ROOT/build/artifacts/deb}
if [[ -d $DEB ]]; then
    debs=("$DEB"/slurm-ssh-bridge_*.deb)
    DEB=${debs[0]}
fi
[[ -f $DEB ]] || {
    echo "systemd.sh: no .deb (${DEB:-none}); build it first: tests/packaging/deb.sh" >&2
    exit 1
}
command -v podman >/dev/null || {
    echo "systemd.sh: podman is missing (scripts/install-deps.sh)" >&2
    exit 1
}
TAG=$(basename "$WORK" | tr '[:upper:]' '[:lower:]')
IMAGE=localhost/ssb-test/systemd:$TAG
NAME=ssb-systemd-$TAG
suite_teardown() {
    podman rm -f -t 5 "$NAME" >/dev/null 2>&1
    podman rmi -f "$IMAGE" >/dev/null 2>&1
}

BASE=$(bash "$ROOT/containers/offline/build_offline_bases.sh" --print-names | sed 's/.*debian=\([^ ]*\).*/\1/')
if ! podman image exists "$BASE"; then
    bash "$ROOT/containers/offline/build_offline_bases.sh" >"$WORK/bases.log" 2>&1 ||
        { cat "$WORK/bases.log"; exit 1; }
fi
mkdir "$WORK/ctx"
cp "$HERE/Containerfile.systemd" "$DEB" "$WORK/ctx/"
if ! podman build --network host --build-arg "BASE=$BASE" -t "$IMAGE" -f "$WORK/ctx/Containerfile.systemd" \
    "$WORK/ctx" >"$WORK/build.log" 2>&1; then
    tail -30 "$WORK/build.log"
    exit 1
fi

sandbox_up "$SB" || exit 1
use_sandbox "$SB"

in_ct() { podman exec "$NAME" "$@"; }
bridge_ct() { podman exec -i -e "SLURM_CONF=$SLURM_CONF" "$NAME" slurm-ssh-bridge "$@"; }

test_case "the package's units start under systemd and answer on /run/slurm-ssh-bridge/bridge.sock"
podman run -d --name "$NAME" --network host --systemd=always "$IMAGE" >/dev/null
wait_for 60 in_ct systemctl is-system-running --quiet ||
    wait_for 5 bash -c "podman exec $NAME systemctl is-system-running | grep -q degraded" ||
    fail "systemd did not come up in the container" "$(in_ct systemctl --failed 2>&1)"
# What the admin does (README "As a system service"): key, known_hosts,
# configuration pointing at the login host.
podman cp "$CLIENT_KEY" "$NAME:/etc/slurm-ssh-bridge/id_ed25519"
podman cp "$KNOWN_HOSTS" "$NAME:/etc/slurm-ssh-bridge/known_hosts"
in_ct chown _slurm-ssh-bridge:_slurm-ssh-bridge /etc/slurm-ssh-bridge/id_ed25519
in_ct chmod 0600 /etc/slurm-ssh-bridge/id_ed25519
sed -e '/^\[daemon\]/,$d' -e 's|^identity_file = .*|identity_file = "/etc/slurm-ssh-bridge/id_ed25519"|' \
    -e 's|^known_hosts = .*|known_hosts = "/etc/slurm-ssh-bridge/known_hosts"|' "$CONF" >"$WORK/config.toml"
cat >>"$WORK/config.toml" <<'EOF'

[daemon]
socket = "/run/slurm-ssh-bridge/bridge.sock"
socket_mode = "0660"
socket_group = "_slurm-ssh-bridge"
drain_timeout_s = 30

[client]
mode = "daemon"
EOF
podman cp "$WORK/config.toml" "$NAME:/etc/slurm-ssh-bridge/config.toml"
in_ct chgrp _slurm-ssh-bridge /etc/slurm-ssh-bridge/config.toml
in_ct chmod 0640 /etc/slurm-ssh-bridge/config.toml
expect_exit 0 in_ct systemctl enable --now slurm-ssh-bridge.socket slurm-ssh-bridge.service
expect_exit 0 in_ct systemctl is-active slurm-ssh-bridge.service
wait_for 10 bridge_ct status || true
expect_exit 0 bridge_ct status
expect_match "$STDOUT" '"socket_activated":true' "status: the socket came from systemd"
expect_match "$(in_ct stat -c '%a %U %G' /run/slurm-ssh-bridge/bridge.sock)" '^660 _slurm-ssh-bridge _slurm-ssh-bridge$' \
    "the socket is 0660, owned by the daemon's account and group"
main_pid=$(in_ct systemctl show -p MainPID --value slurm-ssh-bridge.service)
expect_eq "$(in_ct stat -c %U "/proc/$main_pid")" _slurm-ssh-bridge "serve runs as _slurm-ssh-bridge"

test_case "a job round trip through the service: submit, query, cancel"
U=$SANDBOX_USER
cat >"$WORK/job.sh" <<'EOF'
#!/bin/bash
#SBATCH --output=/dev/null
#SBATCH --time=5
#SBATCH --job-name=ssb-systemd
sleep 300
EOF
expect_exit 0 bridge_ct --user "$U" submit <"$WORK/job.sh"
JOB=$(tail -1 <<<"$STDOUT")
expect_match "$JOB" '^[0-9]+$' "submit printed a job id"
if wait_for 20 bash -c "podman exec -e SLURM_CONF=$SLURM_CONF $NAME slurm-ssh-bridge --user $U query $JOB | grep -q '^RUNNING '"; then
    pass "the job runs"
else
    fail "the job did not reach RUNNING" "$(bridge_ct --user "$U" query "$JOB" 2>&1)"
fi
expect_match "$(squeue -h -j "$JOB" -o '%u %T' 2>&1)" "^$U RUNNING" "Slurm runs it as $U"

test_case "systemctl restart during a burst of queries: no request fails, the socket stays"
# Three clients query without pause inside the container until told to
# stop; the restart lands in the middle. One line per query: its exit
# status and output. Lines written before, during and after the restart
# show that the burst really spans it.
cat >"$WORK/burst.sh" <<BURST_SCRIPT
#!/bin/bash
one() { out=\$(SLURM_CONF=$SLURM_CONF slurm-ssh-bridge --user $U query $JOB 2>&1); echo "\$? \$out"; }
while [[ ! -e /tmp/burst.stop ]]; do one & one & one; wait; done
BURST_SCRIPT
podman cp "$WORK/burst.sh" "$NAME:/tmp/burst.sh"
in_ct bash /tmp/burst.sh >"$WORK/burst.txt" 2>&1 &
BURST=$!
wait_for 20 bash -c "(( \$(wc -l <'$WORK/burst.txt') >= 15 ))" || true
before=$(wc -l <"$WORK/burst.txt")
t0=$(now_ms)
expect_exit 0 in_ct systemctl restart slurm-ssh-bridge.service
during=$(($(wc -l <"$WORK/burst.txt") - before))
info "systemctl restart took $(($(now_ms) - t0)) ms; answers before it: $before, while it ran: $during"
after0=$(wc -l <"$WORK/burst.txt")
wait_for 20 bash -c "(( \$(wc -l <'$WORK/burst.txt') >= $after0 + 15 ))" || true
in_ct touch /tmp/burst.stop
wait "$BURST" || true
total=$(wc -l <"$WORK/burst.txt")
ok=$(grep -c "^0 RUNNING " "$WORK/burst.txt" || true)
if ((before >= 15 && total >= after0 + 15)); then
    pass "the burst spans the restart ($before answers before, $((total - after0)) after)"
else
    fail "the burst did not span the restart (before $before, after $((total - after0)))"
fi
expect_eq "$ok" "$total" "all $total queries answered RUNNING across the restart"
if [[ $ok != "$total" ]]; then info "$(grep -v '^0 RUNNING ' "$WORK/burst.txt" | head -5)"; fi
journal=$(in_ct journalctl -u slurm-ssh-bridge.service --no-pager -o cat 2>&1)
expect_eq "$(grep -c 'socket from systemd' <<<"$journal")" 2 "two daemons in the journal, both on systemd's socket"
expect_match "$journal" 'draining' "the first one drained"
expect_exit 0 bridge_ct --user "$U" cancel "$JOB"
if wait_for 20 bash -c "[[ -z \$(squeue -h -j $JOB -t PD,R,CG -o %i 2>/dev/null) ]]"; then
    pass "the job is gone from Slurm"
else
    fail "job $JOB still in Slurm after cancel" "$(squeue -h -j "$JOB" 2>&1)"
fi

test_case "systemd-analyze security of the running unit: exposure below 2.0"
sec=$(in_ct systemd-analyze security slurm-ssh-bridge.service 2>&1 | tail -1)
info "$sec"
exposure=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$sec")
if [[ -n $exposure ]] && awk -v e="$exposure" 'BEGIN { exit !(e < 2.0) }'; then
    pass "exposure $exposure"
else
    fail "exposure '${exposure:-?}' is not below 2.0" "$sec"
fi

summary
