# shellcheck shell=bash
# tests/sandbox/lib/up.sh - part of tests/sandbox/sandbox.sh (sourced by it):
# the steps of `up`, in the order cmd_up runs them: options, programs, the
# directory, a new identity, the state file, runtime directories, every
# generated file, the daemons.
# SC2034: the variables set here are read by the other parts (shellcheck
# also lints this file alone, without them).
# shellcheck disable=SC2034

# prepare_dir: DIR exists, is empty or holds a sandbox that is down (whose
# files are removed), and every directory above it is traversable.
prepare_dir() {
    if [[ -e $DIR && ! -d $DIR ]]; then
        die "$DIR exists and is not a directory"
    fi
    if [[ -f $DIR/$MARKER_NAME ]]; then
        # A previous sandbox: reuse the directory only if it is down.
        local old_id
        old_id=$(cat "$DIR/$MARKER_NAME")
        if [[ -f $DIR/state/sandbox.conf ]]; then
            (
                load_state "$DIR"
                for name in $(process_names); do
                    if process_running "$name"; then
                        die "a sandbox is running in $DIR ($name); run '$PROG down $DIR' first"
                    fi
                done
            )
        fi
        say "reusing $DIR (previous sandbox $old_id is down; its files are replaced)"
        rm -rf "${DIR:?}"/{state,pids,run,log,slurm,munge,ssh,wrappers} \
            "${DIR:?}"/{sandbox.env,bridge.toml,slurm.conf,client_key,client_key.pub,known_hosts,known_hosts_wrong,sshd.log,bridge.sock} \
            "${DIR:?}/$MARKER_NAME"
    elif [[ -d $DIR && -n $(ls -A "$DIR") ]]; then
        die "$DIR is not empty and not a sandbox directory"
    fi
    mkdir -p "$DIR"
    chown root:root "$DIR"
    chmod 0755 "$DIR"
    # Every directory above DIR must be traversable: the test users run the
    # wrappers and reach the munge socket and slurm.conf as themselves.
    local d=$DIR
    while [[ $d != / ]]; do
        d=$(dirname "$d")
        (( (8#$(stat -c '%a' "$d") & 8#001) != 0 )) ||
            die "$d is not traversable by other users (mode $(stat -c '%a' "$d")); the sandbox users need it"
    done
}

# parse_up_options ARGS...: the options of `up` into SB_MAX_SESSIONS,
# SB_MAX_STARTUPS, SB_ACCEPT_ENV, SB_NODE_COUNT, SB_CPUS, SB_PRIVATE_DATA, and DIR as given
# into UP_DIR.
parse_up_options() {
    local opt
    UP_DIR=""
    SB_MAX_SESSIONS="" SB_MAX_STARTUPS="" SB_ACCEPT_ENV=no SB_NODE_COUNT=1 SB_CPUS=8 SB_PRIVATE_DATA=""
    while (( $# > 0 )); do
        opt=$1
        case $opt in
            --max-sessions)
                [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "$PROG: --max-sessions needs a number" >&2; usage; }
                SB_MAX_SESSIONS=$2
                shift 2
                ;;
            --max-startups)
                [[ ${2:-} =~ ^[0-9]+(:[0-9]+:[0-9]+)?$ ]] || { echo "$PROG: --max-startups needs N or START:RATE:FULL" >&2; usage; }
                SB_MAX_STARTUPS=$2
                shift 2
                ;;
            --accept-env)
                SB_ACCEPT_ENV=yes
                shift
                ;;
            --nodes)
                [[ ${2:-} =~ ^[1-8]$ ]] || { echo "$PROG: --nodes needs a number from 1 to 8" >&2; usage; }
                SB_NODE_COUNT=$2
                shift 2
                ;;
            --cpus)
                if ! [[ ${2:-} =~ ^[0-9]+$ ]] || (( $2 < 1 || $2 > 256 )); then
                    echo "$PROG: --cpus needs a number from 1 to 256" >&2
                    usage
                fi
                SB_CPUS=$2
                shift 2
                ;;
            --private-data)
                [[ ${2:-} =~ ^[a-z]+(,[a-z]+)*$ ]] || { echo "$PROG: --private-data needs words such as jobs or jobs,usage" >&2; usage; }
                SB_PRIVATE_DATA=$2
                shift 2
                ;;
            -*)
                echo "$PROG: unknown option '$opt'" >&2
                usage
                ;;
            *)
                [[ -z $UP_DIR ]] || { echo "$PROG: more than one DIR" >&2; usage; }
                UP_DIR=$opt
                shift
                ;;
        esac
    done
    [[ -n $UP_DIR ]] || { echo "$PROG: up needs DIR" >&2; usage; }
}

# check_programs: everything `up` runs is installed (before touching DIR).
check_programs() {
    local t
    for t in /usr/sbin/sshd /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/bin/sudo \
        /usr/sbin/visudo /usr/bin/python3 setpriv ss ssh ssh-keygen sbatch squeue scancel sinfo scontrol munge unmunge; do
        command -v "$t" >/dev/null || die "$t not found (apt-get install -y slurm-wlm munge openssh-server openssh-client sudo python3 util-linux iproute2)"
    done
    getent passwd munge >/dev/null || die "no 'munge' user (install munge)"
    getent passwd slurm >/dev/null || die "no 'slurm' user (install slurm-wlm)"
}

# new_identity: a random sandbox id (names the cluster, the sudoers
# fragment, the port reservation and the cgroup) and the node names.
new_identity() {
    local nodes=() i
    SB_ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
    SB_CLUSTER=ssb$SB_ID
    for (( i = 1; i <= SB_NODE_COUNT; i++ )); do
        nodes+=("node$i")
    done
    SB_NODES=$(IFS=,; echo "${nodes[*]}")
}

# write_state: DIR/state/sandbox.conf, everything later subcommands
# (load_state) need to know about this sandbox.
write_state() {
    {
        printf '%s=%q\n' SB_ID "$SB_ID" SB_CLUSTER "$SB_CLUSTER" SB_NODES "$SB_NODES" \
            SB_NODE_COUNT "$SB_NODE_COUNT" SB_CPUS "$SB_CPUS" SB_SSH_PORT "$SB_SSH_PORT" \
            SB_SLURMCTLD_PORT "$SB_SLURMCTLD_PORT" SB_SLURMD_PORTS "$SB_SLURMD_PORTS" \
            SB_MAX_SESSIONS "$SB_MAX_SESSIONS" SB_MAX_STARTUPS "$SB_MAX_STARTUPS" \
            SB_ACCEPT_ENV "$SB_ACCEPT_ENV" SB_PRIVATE_DATA "$SB_PRIVATE_DATA" SB_CGROUP "$SB_CGROUP" SB_WRAPPERS_BIN "$SB_WRAPPERS_BIN"
    } >"$DIR/state/sandbox.conf"
}

# make_runtime_dirs: Slurm's state/log/pid paths belong to the slurm user
# (slurmctld drops to it); slurmd (root) writes its spool/log/pid there too.
# munge gets its own directory and a fresh key.
make_runtime_dirs() {
    local node
    install -d -m 0755 -o munge -g munge "$DIR/munge"
    install -d -m 0755 -o slurm -g slurm "$DIR/slurm" "$DIR/run"
    chown slurm:slurm "$DIR/log"
    install -d -m 0700 -o slurm -g slurm "$DIR/slurm/state"
    install -d -m 0755 -o root -g root "$DIR/slurm/spool"
    for node in "${NODE_LIST[@]}"; do
        install -d -m 0755 -o root -g root "$DIR/slurm/spool/$node"
    done
    head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
    chown munge:munge "$DIR/munge/munge.key"
    chmod 0400 "$DIR/munge/munge.key"
}

# write_configuration: every generated file except sandbox.env (which holds
# the PIDs, so it is written once the processes run).
write_configuration() {
    write_slurm_conf
    make_keys
    write_sshd_config
    install_wrappers
    install_sudoers
    write_bridge_toml
    say "configuration written"
}

# start_all: munge first (Slurm authenticates through it), then the
# controller, the nodes (until idle), sshd last (no login before Slurm works).
start_all() {
    start_munged
    start_slurmctld
    start_slurmd idle
    start_sshd
}
