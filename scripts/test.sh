#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, then
#   1. builds (warnings are errors) and runs every CTest suite but the
#      benchmark: unit, integration (real sshd + sudo + munge + Slurm:
#      direct, daemon, faults, security), python_shim, pods, lint;
#   2. builds with ASan + UBSan and runs the unit tests and the direct,
#      faults and security suites under the sanitizers;
#   3. builds the libFuzzer targets with clang and fuzzes each for a bounded
#      time, replaying the known reproducers.
# Exits non-zero if any phase fails.
#
#   sudo scripts/test.sh                 # everything
#   sudo scripts/test.sh -L unit         # only phase 1, extra arguments go to ctest
#
# Environment: BUILD_DIR (default build), SSB_SKIP_DEPS=1 skips the package
# check, SSB_QUICK=1 runs phase 1 only, SSB_FUZZ_SECONDS (default 45).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
cd "$ROOT"

[[ ${SSB_SKIP_DEPS:-0} == 1 ]] || "$ROOT/scripts/install-deps.sh"

failed=()
phase() { printf '\n==== %s\n' "$*"; }

phase "1/3 build and run all suites (ctest -LE bench)"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSSB_WERROR=ON
cmake --build "$BUILD_DIR" -j "$(nproc)"
ctest_args=(--output-on-failure -LE bench)
(($# > 0)) && ctest_args=(--output-on-failure "$@")
ctest --test-dir "$BUILD_DIR" "${ctest_args[@]}" || failed+=("suites")

if (($# == 0)) && [[ ${SSB_QUICK:-0} != 1 ]]; then
    phase "2/3 ASan + UBSan: unit tests and the direct, faults and security suites"
    cmake -S "$ROOT" -B "$BUILD_DIR-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSSB_SANITIZE=ON
    cmake --build "$BUILD_DIR-asan" -j "$(nproc)" --target slurm-ssh-bridge unit_tests
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    # The sanitized executables carry their own runtime defaults on top of
    # these (tests/sanitizer/default_options.cpp: why LeakSanitizer's tracer
    # needs intercept_tls_get_addr=0 on Debian 12).
    ctest --test-dir "$BUILD_DIR-asan" --output-on-failure \
        -R '^(unit\.|integration\.(direct|faults|security|hostile)$)' || failed+=("sanitizers")
    unset ASAN_OPTIONS UBSAN_OPTIONS

    phase "3/3 libFuzzer: request parser + command builder, config loader"
    CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSSB_FUZZ=ON \
        -DSSB_FUZZ_SECONDS="${SSB_FUZZ_SECONDS:-45}"
    cmake --build "$BUILD_DIR-fuzz" -j "$(nproc)" --target fuzz_request fuzz_config
    ctest --test-dir "$BUILD_DIR-fuzz" --output-on-failure -L fuzz || failed+=("fuzz")
fi

if ((${#failed[@]})); then
    echo "scripts/test.sh: FAILED phase(s): ${failed[*]}" >&2
    exit 1
fi
echo "scripts/test.sh: all phases passed"
