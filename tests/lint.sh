#!/usr/bin/env bash
# Lints every bash script of the repository with shellcheck (using the
# repository's .shellcheckrc), and the test helpers' Python (the modules
# that replaced the suites' heredocs, and the benchmark) with pyflakes.
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

# Debian's pyflakes (python3-pyflakes, scripts/install-deps.sh) on Debian's
# interpreter, which is what the suites run these modules with.
mapfile -t modules < <(git ls-files -- 'tests/integration/*.py' 'tests/integration/helpers/*.py' 'tests/bench/*.py' 'tests/sandbox/lib/*.py' 'tests/packaging/*.py')
echo "pyflakes: ${#modules[@]} modules"
/usr/bin/python3 -m pyflakes "${modules[@]}"
echo "pyflakes: all clean"
