#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, builds, and runs every CTest suite (unit, integration against a
# real sshd + sudo + munge + Slurm, python_shim, pods) except the benchmark.
#
#   sudo scripts/test.sh                 # everything
#   sudo scripts/test.sh -L unit         # extra arguments go to ctest
#
# Environment: BUILD_DIR (default build), SSB_SANITIZE=1 for an ASan+UBSan
# build, SSB_SKIP_DEPS=1 to skip the package check.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
cd "$ROOT"

[[ ${SSB_SKIP_DEPS:-0} == 1 ]] || "$ROOT/scripts/install-deps.sh"

cmake_args=(-S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSSB_WERROR=ON)
[[ ${SSB_SANITIZE:-0} == 1 ]] && cmake_args+=(-DSSB_SANITIZE=ON)
cmake "${cmake_args[@]}"
cmake --build "$BUILD_DIR" -j "$(nproc)"

ctest_args=(--test-dir "$BUILD_DIR" --output-on-failure -LE bench)
(($# > 0)) && ctest_args=(--test-dir "$BUILD_DIR" --output-on-failure "$@")
ctest "${ctest_args[@]}"
