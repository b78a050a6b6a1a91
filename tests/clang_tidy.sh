#!/usr/bin/env bash
# Runs clang-tidy (checks in .clang-tidy; every finding is an error) over
# every source file under src/, with the build's compile_commands.json.
# usage: clang_tidy.sh BUILD_DIR   (the build must exist: generated headers)
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
clang_tidy=${CLANG_TIDY:-clang-tidy}
[[ -f $build/compile_commands.json ]] || {
    echo "clang-tidy: $build/compile_commands.json is missing (CMAKE_EXPORT_COMPILE_COMMANDS)" >&2
    exit 1
}
mapfile -t files < <(git ls-files -- 'src/*.cpp')
jobs=${SSB_TIDY_JOBS:-$(nproc)}
echo "clang-tidy: $("$clang_tidy" --version | grep -m1 version); ${#files[@]} files, $jobs at a time"
start=$SECONDS
# One process per file; xargs exits non-zero when any of them found something.
if printf '%s\0' "${files[@]}" |
    xargs -0 -n1 -P "$jobs" "$clang_tidy" -p "$build" --quiet 2> >(grep -v -e '^[0-9]* warnings\? generated\.$' >&2); then
    echo "clang-tidy: all clean ($((SECONDS - start)) s)"
else
    echo "clang-tidy: findings above ($((SECONDS - start)) s)" >&2
    exit 1
fi
