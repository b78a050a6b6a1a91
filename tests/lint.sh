#!/usr/bin/env bash
# Lints every bash script of the repository with shellcheck (using the
# repository's .shellcheckrc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t scripts < <(git ls-files -- '*.sh' '.ci/run' 'environments/*' 'containers/*' |
    while read -r f; do
        [[ -f $f ]] || continue
        case $f in *.sh | .ci/run) echo "$f" ;; *) head -n1 "$f" | grep -qE '^#!.*bash' && echo "$f" ;; esac
    done)
echo "shellcheck: ${#scripts[@]} scripts"
shellcheck -x "${scripts[@]}"
echo "shellcheck: all clean"
