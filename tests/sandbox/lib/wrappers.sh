# shellcheck shell=bash
# tests/sandbox/lib/wrappers.sh - part of tests/sandbox/sandbox.sh (sourced by it):
# the real (upstream) slurmspawner wrappers, in a venv shared by all
# sandboxes.

# The directory holding slurmspawner_wrappers' source, resolved the way
# scripts/install-support-packages.sh does (SSB_SUPPORT_PACKAGES, else
# ../shared/vendor beside the repository); nothing = the package index.
support_source() {
    if [[ -n ${SSB_SUPPORT_PACKAGES:-} ]]; then
        realpath -m -- "$SSB_SUPPORT_PACKAGES"
    elif [[ -d $REPO_ROOT/../shared/vendor ]]; then
        realpath -- "$REPO_ROOT/../shared/vendor"
    fi
}

# wrappers_venv: the path of the venv for the current wrapper source: keyed
# by the content of the source tree and of the install script, so a change
# makes a new venv and sandboxes already running keep using theirs.
wrappers_venv() {
    local src key
    src=$(support_source)
    key=$({
        sha256sum <"$INSTALL_SUPPORT"
        if [[ -n $src && -d $src/slurmspawner_wrappers ]]; then
            (cd "$src/slurmspawner_wrappers" && find . -path ./.git -prune -o -type f -print0 |
                LC_ALL=C sort -z | xargs -0 sha256sum)
            cat "$src/slurmspawner_wrappers.commit" 2>/dev/null || true
        else
            echo "index"
        fi
    } | sha256sum | cut -c1-16)
    echo "$VENV_CACHE/wrappers-$key"
}

# install_wrappers: the REAL slurmspawner_{sbatch,squeue,scancel} (upstream
# slurmspawner_wrappers, unmodified), installed by
# scripts/install-support-packages.sh into SB_WRAPPERS_BIN's venv. The venv
# is made once and reused by every later `up` (the script is idempotent and
# locks the venv while it installs); it is root-owned and world-readable,
# as the wrappers run as the notebook users through sudo.
install_wrappers() {
    local venv=${SB_WRAPPERS_BIN%/bin} log=$DIR/log/wrappers-install.log w
    install -d -m 0755 -o root -g root "$VENV_CACHE"
    if ! "$INSTALL_SUPPORT" --venv "$venv" slurmspawner_wrappers >"$log" 2>&1; then
        tail_log "$log"
        die "could not install slurmspawner_wrappers into $venv with $INSTALL_SUPPORT (output above; source: ${SSB_SUPPORT_PACKAGES:-$REPO_ROOT/../shared/vendor, else the package index})"
    fi
    say "$(tail -n 1 "$log")"
    for w in "${WRAPPER_NAMES[@]}"; do
        [[ -x $SB_WRAPPERS_BIN/$w ]] || die "$SB_WRAPPERS_BIN/$w is missing after installing slurmspawner_wrappers (see $log)"
    done
}
