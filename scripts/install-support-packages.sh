#!/usr/bin/env bash
# install-support-packages.sh - the one way this project installs the
# supporting packages it works with (never copies of their code):
#   batchspawner            jupyterhub/batchspawner (SlurmSpawner, batchspawner-singleuser)
#   slurmspawner_wrappers   isambard-sc/slurmspawner_wrappers (slurmspawner_{sbatch,squeue,scancel})
#   bricsauthenticator      isambard-sc/bricsauthenticator (BricsAuthenticator, BricsSlurmSpawner)
#
#   scripts/install-support-packages.sh --venv VENV [--system-site-packages] PACKAGE...
#
# Creates VENV with Debian's /usr/bin/python3 when it does not exist, then
# installs each PACKAGE into it and prints one line per package with its
# version. Re-running with an up-to-date VENV only compares fingerprints.
#
# Where the packages come from (the setting SSB_SUPPORT_PACKAGES):
#   - $SSB_SUPPORT_PACKAGES if set: a directory holding one source tree per
#     package (e.g. the read-only snapshots in ../shared/vendor, or git clones);
#   - else <repo>/../shared/vendor when that directory exists;
#   - else the Python package index, as a site would: batchspawner by name,
#     the two isambard-sc packages (not on the index) from their public git
#     repositories. Nothing is built locally in that case.
#
# Building from a local directory (tested with Debian 12's pip 23.0,
# setuptools 66, setuptools-scm 7.1):
#   - Each tree is copied to a private temporary directory first, because the
#     snapshots are read-only (a build writes build/, *.egg-info, _version.py)
#     and carry a stale build/ directory that must not leak into the wheel.
#   - The two isambard-sc trees name their version file with setuptools-scm's
#     newer key `version_file`; Debian's setuptools-scm 7 fails on it
#     ("Configuration.__init__() got an unexpected keyword argument
#     'version_file'"). In the COPY only, that key is renamed to its older
#     name `write_to` (same meaning). The originals are never modified.
#   - The snapshots have no .git, so setuptools-scm cannot find a version:
#     SETUPTOOLS_SCM_PRETEND_VERSION is set to 0.0.0+g<commit> from
#     <dir>/../<name>.commit (the snapshot's upstream commit; the release tag
#     is not known). A tree with its own .git keeps setuptools-scm's version.
#   - Wheels are built by Debian's /usr/bin/python3 (`pip wheel
#     --no-build-isolation --no-index`: its setuptools/setuptools-scm/wheel
#     are the build backends, nothing is fetched), then installed with the
#     venv's own pip (`--no-index`). A venv without --system-site-packages
#     cannot see Debian's build backends, so building inside it would fail.
#   - bricsauthenticator is installed with --no-deps: it declares
#     jupyterhub>=5.0 and PyJWT>=2.9, Debian 12 has 3.0.0 and 2.6.0, and pip
#     --no-index refuses ("No matching distribution found for PyJWT>=2.9").
#     The unmet requirements are printed (pip check). The other two declare no
#     dependencies.
#
# The venv is root-owned and world-readable (umask 022, then go+rX), because
# the wrappers in it run as the notebook users through sudo.
set -euo pipefail

readonly PROG=install-support-packages.sh
readonly PYTHON=/usr/bin/python3
readonly KNOWN=(batchspawner slurmspawner_wrappers bricsauthenticator)
# Bump when the way packages are built changes (invalidates every stamp).
readonly RECIPE=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT

usage() {
    echo "usage: $PROG --venv VENV [--system-site-packages] PACKAGE..." >&2
    echo "       PACKAGE: ${KNOWN[*]}" >&2
    echo "       source: \$SSB_SUPPORT_PACKAGES, else $ROOT/../shared/vendor if present, else the package index" >&2
    exit 2
}
die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

venv="" system_site=no packages=()
while (($# > 0)); do
    case $1 in
        --venv)
            [[ -n ${2:-} ]] || usage
            venv=$2
            shift 2
            ;;
        --system-site-packages) system_site=yes; shift ;;
        -h | --help) usage ;;
        -*) echo "$PROG: unknown option '$1'" >&2; usage ;;
        *)
            [[ " ${KNOWN[*]} " == *" $1 "* ]] || { echo "$PROG: unknown package '$1'" >&2; usage; }
            [[ " ${packages[*]} " == *" $1 "* ]] || packages+=("$1")
            shift
            ;;
    esac
done
[[ -n $venv && ${#packages[@]} -gt 0 ]] || usage
[[ -x $PYTHON ]] || die "$PYTHON not found (apt-get install python3 python3-venv python3-pip)"
venv=$(realpath -m -- "$venv")
umask 022

# bricsauthenticator depends on batchspawner: install in this order.
ordered=()
for p in "${KNOWN[@]}"; do
    [[ " ${packages[*]} " == *" $p "* ]] && ordered+=("$p")
done

if [[ -n ${SSB_SUPPORT_PACKAGES:-} ]]; then
    source_dir=$(realpath -m -- "$SSB_SUPPORT_PACKAGES")
    [[ -d $source_dir ]] || die "SSB_SUPPORT_PACKAGES=$SSB_SUPPORT_PACKAGES is not a directory (unset it to use $ROOT/../shared/vendor or the package index)"
elif [[ -d $ROOT/../shared/vendor ]]; then
    source_dir=$(realpath -- "$ROOT/../shared/vendor")
else
    source_dir=""
fi

# ------------------------------------------------------------------ venv
mkdir -p -- "$venv"
exec {lockfd}>"$venv/.ssb-install.lock"
flock -w 300 "$lockfd" || die "timed out after 300 s waiting for $venv/.ssb-install.lock (another install into $venv?)"

if [[ -f $venv/pyvenv.cfg ]]; then
    have=$(sed -n 's/^include-system-site-packages *= *//p' "$venv/pyvenv.cfg")
    want=false
    [[ $system_site == yes ]] && want=true
    [[ $have == "$want" ]] ||
        die "$venv exists with include-system-site-packages = $have but this call asks for $want: pass the same --system-site-packages choice or remove $venv"
    [[ $(sed -n 's/^home *= *//p' "$venv/pyvenv.cfg") == /usr/bin ]] ||
        die "$venv was not made by $PYTHON (see home = in $venv/pyvenv.cfg); remove it and re-run"
    [[ -x $venv/bin/python ]] || die "$venv/bin/python is missing: remove $venv and re-run"
else
    flags=()
    [[ $system_site == yes ]] && flags=(--system-site-packages)
    "$PYTHON" -m venv "${flags[@]}" "$venv" ||
        die "could not create the venv $venv ($PYTHON -m venv; is python3-venv installed?)"
fi
stamps=$venv/.ssb-support-packages
mkdir -p "$stamps"

# installed_version NAME: the version in the venv, or nothing.
installed_version() {
    "$venv/bin/python" -c 'import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass' "$1"
}

# fingerprint DIR: hash of every file in DIR (not .git), the recipe and Python.
fingerprint() {
    {
        echo "recipe $RECIPE $("$venv/bin/python" -c 'import sys; print(sys.version)')"
        (cd "$1" && find . -path ./.git -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -d' ' -f1
}

work=""
cleanup() { [[ -z $work ]] || rm -rf -- "$work"; }
trap cleanup EXIT

# build_wheel NAME SRC: build NAME from a private copy of SRC into $work/wheels.
build_wheel() {
    local name=$1 src=$2 copy version=""
    [[ -n $work ]] || work=$(mktemp -d /tmp/ssb-support-XXXXXX)
    copy=$work/src/$name
    mkdir -p "$work/src" "$work/wheels"
    cp -a -- "$src" "$copy"
    chmod -R u+w -- "$copy"
    rm -rf -- "$copy/build" "$copy/dist" "$copy"/*.egg-info "$copy"/src/*.egg-info
    if [[ -f $copy/pyproject.toml ]] && grep -q '^version_file *=' "$copy/pyproject.toml"; then
        # setuptools-scm 7 knows this key only by its old name (see the header).
        sed -i 's/^version_file *=/write_to =/' "$copy/pyproject.toml"
    fi
    if [[ ! -e $src/.git ]]; then
        local commit=""
        [[ -f $src/../$name.commit ]] && read -r commit _ <"$src/../$name.commit"
        if [[ $commit =~ ^[0-9a-f]{7,40}$ ]]; then
            version=0.0.0+g${commit:0:7}
        else
            version=0.0.0
        fi
    fi
    local log=$work/$name.build.log
    if ! SETUPTOOLS_SCM_PRETEND_VERSION=$version "$PYTHON" -m pip wheel --no-build-isolation --no-index \
        --no-deps --disable-pip-version-check -w "$work/wheels/$name" "$copy" >"$log" 2>&1; then
        tail -n 15 "$log" | sed 's/^/    /' >&2
        die "could not build $name from $src (copied to $copy; pip wheel output above). Build backends come from Debian: apt-get install python3-setuptools python3-setuptools-scm python3-wheel python3-pip"
    fi
}

# install_local NAME: from $source_dir/NAME.
install_local() {
    local name=$1 src=$source_dir/$1 fp version wheel extra=()
    [[ -d $src ]] || die "no source tree for $name: $src does not exist (SSB_SUPPORT_PACKAGES=$source_dir)"
    fp=$(fingerprint "$src")
    version=$(installed_version "$name")
    if [[ -n $version && -f $stamps/$name && $(cat "$stamps/$name") == "$fp" ]]; then
        echo "$name $version: up to date in $venv (from $src)"
        return 0
    fi
    build_wheel "$name" "$src"
    wheel=$(find "$work/wheels/$name" -name '*.whl' | head -n 1)
    [[ -n $wheel ]] || die "building $name from $src produced no wheel"
    [[ $name == bricsauthenticator ]] && extra=(--no-deps)
    local log=$work/$name.install.log
    if ! "$venv/bin/python" -m pip install --no-index --force-reinstall --disable-pip-version-check \
        "${extra[@]}" "$wheel" >"$log" 2>&1; then
        tail -n 15 "$log" | sed 's/^/    /' >&2
        die "could not install $name (wheel built from $src) into $venv (pip output above)"
    fi
    echo "$fp" >"$stamps/$name"
    changed+=("$name")
    version=$(installed_version "$name")
    [[ -n $version ]] || die "$name is not visible in $venv after installing it from $src"
    echo "$name $version: installed in $venv (from $src)"
}

# install_index NAME: as a site does, from the package index / git.
install_index() {
    local name=$1 spec version
    version=$(installed_version "$name")
    if [[ -n $version && -f $stamps/$name && $(cat "$stamps/$name") == index ]]; then
        echo "$name $version: up to date in $venv (installed from the package index)"
        return 0
    fi
    case $name in
        batchspawner) spec=batchspawner ;;
        *) spec="$name @ git+https://github.com/isambard-sc/$name.git" ;;
    esac
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check "$spec"; then
        die "could not install $name ('$spec') into $venv from the package index; with no network, set SSB_SUPPORT_PACKAGES to a directory holding a source tree of each package"
    fi
    echo index >"$stamps/$name"
    version=$(installed_version "$name")
    echo "$name $version: installed in $venv (from the package index: $spec)"
}

changed=()
for p in "${ordered[@]}"; do
    if [[ -n $source_dir ]]; then
        install_local "$p"
    else
        install_index "$p"
    fi
done

if [[ " ${changed[*]} " == *" bricsauthenticator "* ]]; then
    # Installed with --no-deps: say which declared requirements this venv does not meet.
    "$venv/bin/python" -m pip check --disable-pip-version-check 2>&1 | grep '^bricsauthenticator ' |
        sed "s/^/$PROG: note (--no-deps): /" >&2 || true
fi
# Readable and usable by every user (the wrappers run as notebook users).
chmod -R go+rX,go-w -- "$venv"
d=$venv
while [[ $d != / ]]; do
    d=$(dirname "$d")
    (( (8#$(stat -c '%a' "$d") & 8#001) != 0 )) ||
        echo "$PROG: warning: $d is not traversable by other users; the notebook users cannot run $venv/bin/*" >&2
done
