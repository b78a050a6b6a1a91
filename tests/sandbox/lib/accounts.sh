# shellcheck shell=bash
# tests/sandbox/lib/accounts.sh - part of tests/sandbox/sandbox.sh (sourced by it):
# the port registry shared by all sandboxes (/run/ssb-sandbox), the test
# accounts (shared too, never removed) and one sandbox's SSH keys.
# SC2034: the variables set here are read by the other parts (shellcheck
# also lints this file alone, without them).
# shellcheck disable=SC2034

# ------------------------------------------------------------------ ports

port_in_use() {
    [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
}

reserved_ports() {
    local f dir id
    for f in "$REGISTRY"/ports/*; do
        [[ -f $f ]] || continue
        dir=$(sed -n 1p "$f")
        id=${f##*/}
        # Drop reservations of sandboxes that no longer exist.
        if [[ ! -f $dir/$MARKER_NAME || $(cat "$dir/$MARKER_NAME" 2>/dev/null) != "$id" ]]; then
            rm -f "$f"
            continue
        fi
        sed -n '2,$p' "$f"
    done
}

# pick_ports N: N distinct free TCP ports below the ephemeral range, not
# reserved by another sandbox. Call with the registry lock held.
pick_ports() {
    local count=$1 low=20000 high=32767 eph_low
    eph_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    if (( eph_low > low + 1000 && eph_low - 1 < high )); then
        high=$(( eph_low - 1 ))
    fi
    local -A taken=()
    local p
    for p in $(reserved_ports); do
        taken[$p]=1
    done
    local picked=() tries=0
    while (( ${#picked[@]} < count )); do
        (( ++tries < 2000 )) || die "could not find $count free ports in $low-$high"
        p=$(( low + (RANDOM * 32768 + RANDOM) % (high - low + 1) ))
        [[ -n ${taken[$p]:-} ]] && continue
        port_in_use "$p" && continue
        taken[$p]=1
        picked+=("$p")
    done
    echo "${picked[@]}"
}

with_registry_lock() {
    mkdir -p "$REGISTRY/ports"
    chmod 0755 "$REGISTRY"
    local lockfd
    exec {lockfd}>"$REGISTRY/lock"
    flock -w 120 "$lockfd" || die "timed out waiting for $REGISTRY/lock"
    local rc=0
    "$@" || rc=$?
    exec {lockfd}>&-
    return "$rc"
}

# --------------------------------------------------------------- accounts

ensure_group() {
    getent group "$1" >/dev/null || groupadd "$1"
}

ensure_user() {
    local name=$1 in_group=$2
    if ! getent passwd "$name" >/dev/null; then
        useradd --create-home --shell /bin/bash "$name"
        say "created user $name"
    fi
    local groups
    groups=$(id -nG "$name")
    if [[ $in_group == yes && " $groups " != *" $USERS_GROUP "* ]]; then
        usermod -a -G "$USERS_GROUP" "$name"
    elif [[ $in_group == no && " $groups " == *" $USERS_GROUP "* ]]; then
        gpasswd -d "$name" "$USERS_GROUP" >/dev/null
    fi
}

ensure_accounts() {
    ensure_group "$USERS_GROUP"
    ensure_user "$SSH_USER" none
    # A fresh account has a locked password ("!"); with UsePAM no, sshd then
    # refuses even key logins. "*" = no password, but not locked.
    if [[ $(getent shadow "$SSH_USER" | cut -d: -f2) == '!'* ]]; then
        usermod -p '*' "$SSH_USER"
    fi
    local u
    for u in "${TEST_USERS[@]}"; do
        ensure_user "$u" yes
    done
    ensure_user "$OUTSIDER" no
}

reserve_ports_and_accounts() {
    ensure_accounts
    local ports
    read -r -a ports <<<"$(pick_ports $(( 2 + SB_NODE_COUNT )))"
    SB_SSH_PORT=${ports[0]}
    SB_SLURMCTLD_PORT=${ports[1]}
    SB_SLURMD_PORTS=$(IFS=,; echo "${ports[*]:2}")
    printf '%s\n' "$DIR" "${ports[@]}" >"$REGISTRY/ports/$SB_ID"
}

# ---------------------------------------------------------------- keys

# host_key_line KEYFILE.pub: "[127.0.0.1]:PORT TYPE BASE64", the form OpenSSH
# and libssh look up for a non-default port.
host_key_line() {
    local type blob
    read -r type blob _ <"$1"
    echo "[127.0.0.1]:$SB_SSH_PORT $type $blob"
}

make_keys() {
    local t
    for t in ed25519 ecdsa; do
        ssh-keygen -q -t "$t" -N '' -C "ssb-sandbox-$SB_ID host" -f "$DIR/ssh/ssh_host_${t}_key"
        ssh-keygen -q -t "$t" -N '' -C "ssb-sandbox-$SB_ID wrong host" -f "$DIR/ssh/wrong_host_${t}_key"
    done
    chmod 0600 "$DIR"/ssh/*_key
    ssh-keygen -q -t ed25519 -N '' -C "$SSH_USER@ssb-sandbox-$SB_ID" -f "$DIR/client_key"
    chmod 0600 "$DIR/client_key"
    chmod 0644 "$DIR/client_key.pub"
    install -m 0644 "$DIR/client_key.pub" "$DIR/ssh/authorized_keys"
    {
        host_key_line "$DIR/ssh/ssh_host_ed25519_key.pub"
        host_key_line "$DIR/ssh/ssh_host_ecdsa_key.pub"
    } >"$DIR/known_hosts"
    {
        host_key_line "$DIR/ssh/wrong_host_ed25519_key.pub"
        host_key_line "$DIR/ssh/wrong_host_ecdsa_key.pub"
    } >"$DIR/known_hosts_wrong"
    chmod 0644 "$DIR/known_hosts" "$DIR/known_hosts_wrong"
}

# ------------------------------------------------------------ bulk users

# This sandbox's own accounts for load tests (`up --bulk-users N`):
# sb<ID>u0001..N, primary group $USERS_GROUP (the sudoers rule's %group),
# home DIR/bulk-home, made and removed in one edit by lib/bulk_users.py
# (useradd/userdel would take minutes for 1,000). Unlike the test accounts
# above they belong to this sandbox alone: `down` removes them.
bulk_users_file() { echo "$DIR/state/bulk-users"; }
bulk_users_marker() { echo "ssb-sandbox $SB_ID bulk user"; }

make_bulk_users() {
    (( ${SB_BULK_USERS:-0} > 0 )) || return 0
    local gid
    gid=$(getent group "$USERS_GROUP" | cut -d: -f3)
    [[ -n $gid ]] || die "group $USERS_GROUP is missing"
    install -d -m 0755 -o root -g root "$DIR/bulk-home"
    /usr/bin/python3 "$SCRIPT_DIR/lib/bulk_users.py" create "$(bulk_users_file)" "sb${SB_ID}u" \
        "$SB_BULK_USERS" "$gid" "$DIR/bulk-home" "$(bulk_users_marker)" ||
        die "could not create the $SB_BULK_USERS bulk users (see the error above)"
    say "created $SB_BULK_USERS bulk users sb${SB_ID}u0001..$(printf '%04d' "$SB_BULK_USERS") (listed in $(bulk_users_file))"
}

remove_bulk_users() {
    [[ -f $(bulk_users_file) ]] || return 0
    local n
    n=$(wc -l <"$(bulk_users_file)")
    /usr/bin/python3 "$SCRIPT_DIR/lib/bulk_users.py" remove "$(bulk_users_file)" "$(bulk_users_marker)" &&
        say "removed $n bulk users"
}
