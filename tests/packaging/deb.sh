#!/usr/bin/env bash
# tests/packaging/deb.sh - builds the Debian package from the checkout with
# dpkg-buildpackage (in a copy: it writes next to the source), checks it with
# lintian (no errors), installs it on this machine, checks what an admin
# gets (the binary, the man page, the completion, the conffile, the unit,
# the system account), verifies the unit (systemd-analyze verify and
# security, exposure below 2.0) and purges it again.
#
#   sudo tests/packaging/deb.sh [OUT_DIR]
#
# OUT_DIR (default build/artifacts/deb) receives the .deb and the lintian and
# systemd-analyze reports. Needs root (apt installs the package).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/build/artifacts/deb}")
PKG=slurm-ssh-bridge
MAX_EXPOSURE=2.0

fails=0
ok() { printf 'ok    %s\n' "$*"; }
bad() {
    printf 'FAIL  %s\n' "$1"
    [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/      /'
    fails=$((fails + 1))
}
# expect DESCRIPTION CMD...: ok when CMD succeeds, else a failure.
expect() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}
die() {
    echo "deb.sh: $*" >&2
    exit 1
}

((EUID == 0)) || die "must run as root (it installs and purges the package)"
for tool in dpkg-buildpackage lintian apt-get man systemd-analyze; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "install ok installed"; then
    die "$PKG is already installed on this machine; this test would replace and purge it (remove it first)"
fi

WORK=$(mktemp -d /tmp/ssb-deb.XXXXXX)
installed=no
# Debian keeps a package's system account after purge; the account this
# test caused to exist is removed again, one that was there before is kept.
had_account=no
getent passwd "_$PKG" >/dev/null && had_account=yes
cleanup() {
    if [[ $installed == yes ]]; then apt-get purge -y -q "$PKG" >/dev/null 2>&1 || true; fi
    if [[ $had_account == no ]] && getent passwd "_$PKG" >/dev/null; then
        userdel "_$PKG" >/dev/null 2>&1 || true
        if getent group "_$PKG" >/dev/null; then groupdel "_$PKG" >/dev/null 2>&1 || true; fi
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT" "$WORK/src"

# The tracked files plus new ones not yet committed (never build dirs).
(cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$WORK/src" -xf -
rm -rf "$WORK/src/build"*

echo "== dpkg-buildpackage (nocheck: the unit tests run from the source tree)"
if ! (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
    >"$OUT/dpkg-buildpackage.log" 2>&1; then
    tail -40 "$OUT/dpkg-buildpackage.log"
    die "dpkg-buildpackage failed (log: $OUT/dpkg-buildpackage.log)"
fi
deb=$(ls "$WORK"/${PKG}_*.deb)
cp "$deb" "$OUT/"
ok "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

echo "== lintian"
lintian --info --display-info "$deb" >"$OUT/lintian.txt" 2>&1 || true
if grep -q '^E: ' "$OUT/lintian.txt"; then
    bad "lintian reports errors" "$(grep '^E: ' "$OUT/lintian.txt")"
else
    ok "lintian: no errors ($(grep -c '^W: ' "$OUT/lintian.txt" || true) warnings, report in $OUT/lintian.txt)"
fi

echo "== the package's contents and metadata"
depends=$(dpkg-deb -f "$deb" Depends)
expect "Depends names libssh-4 ($depends)" grep -q 'libssh-4' <<<"$depends"
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/$PKG ./usr/share/man/man1/$PKG.1.gz ./usr/share/bash-completion/completions/$PKG \
    ./etc/$PKG/config.toml ./lib/systemd/system/$PKG.service ./lib/systemd/system/$PKG.socket \
    ./usr/lib/sysusers.d/$PKG.conf ./usr/share/doc/$PKG/examples/$PKG-rules.yml \
    ./usr/share/doc/$PKG/examples/$PKG.json; do
    expect "ships $path" grep -q " $path\$" <<<"$contents"
done
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
expect "config.toml is a conffile" grep -qx "/etc/$PKG/config.toml" <<<"$conffiles"

echo "== install"
if apt-get install -y -q "$deb" >"$OUT/install.log" 2>&1; then
    installed=yes
    ok "apt-get install ./$(basename "$deb")"
else
    bad "apt-get install failed" "$(tail -20 "$OUT/install.log")"
fi
if [[ $installed == yes ]]; then
    v=$(/usr/bin/$PKG --version 2>&1 | head -1)
    expect "--version: $v" grep -q "^$PKG [0-9]" <<<"$v"
    m=$(man -w $PKG 2>&1) || true
    expect "man -w: $m" test -f "$m"
    warnings=$(man --warnings -E UTF-8 -l "$m" 2>&1 >/dev/null || true)
    expect "the man page renders without warnings${warnings:+: $warnings}" test -z "$warnings"
    expect "system account _$PKG exists" getent passwd "_$PKG"
    perms=$(stat -c '%a %G' /etc/$PKG/config.toml)
    expect "config.toml is 0640 group _$PKG (it is $perms)" test "$perms" = "640 _$PKG"
    if /usr/bin/$PKG --config /etc/$PKG/config.toml --set ssh.host=login.example config >/dev/null 2>"$WORK/cfg.err"; then
        ok "the example configuration loads (with ssh.host set)"
    else
        bad "the example configuration does not load" "$(cat "$WORK/cfg.err")"
    fi
    comp=$(bash -c "source /usr/share/bash-completion/completions/$PKG; COMP_WORDS=($PKG qu); COMP_CWORD=1; _slurm_ssh_bridge; echo \${COMPREPLY[*]}")
    expect "bash completion: 'qu' completes to query (offered: $comp)" test "$comp" = query

    echo "== systemd-analyze"
    unit=/lib/systemd/system/$PKG.service
    if systemd-analyze verify "$unit" "/lib/systemd/system/$PKG.socket" >"$OUT/verify.txt" 2>&1; then
        ok "systemd-analyze verify: clean"
    else
        bad "systemd-analyze verify" "$(cat "$OUT/verify.txt")"
    fi
    systemd-analyze security --offline=yes "$unit" >"$OUT/security.txt" 2>&1 || true
    exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$OUT/security.txt")
    if [[ -n $exposure ]] && awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e < m) }'; then
        ok "systemd-analyze security: exposure $exposure (below $MAX_EXPOSURE)"
    else
        bad "systemd-analyze security: exposure '${exposure:-?}' (must be below $MAX_EXPOSURE)" "$(tail -5 "$OUT/security.txt")"
    fi

    echo "== purge"
    if apt-get purge -y -q "$PKG" >"$OUT/purge.log" 2>&1; then
        installed=no
        ok "apt-get purge"
    else
        bad "apt-get purge failed" "$(tail -20 "$OUT/purge.log")"
    fi
    left=""
    for path in /usr/bin/$PKG /usr/share/man/man1/$PKG.1.gz /etc/$PKG /lib/systemd/system/$PKG.service; do
        [[ -e $path ]] && left+=" $path"
    done
    expect "nothing of the package is left${left:+ (left:$left)}" test -z "$left"
fi

echo "reports in $OUT"
if ((fails > 0)); then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
