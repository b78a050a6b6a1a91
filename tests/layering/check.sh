#!/usr/bin/env bash
# build.layering: the build rejects an include against the layer rules.
# Builds the probe target (core including a daemon header) and passes only
# when the compiler fails for exactly that reason.
#   tests/layering/check.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: $0 BUILD_DIR}
out=$(cmake --build "$build" --target ssb_layering_probe 2>&1)
status=$?
if ((status == 0)); then
    echo "FAIL: src/core may include ssb/daemon/pool.hpp: the build did not enforce the layering"
    exit 1
fi
if grep -q 'ssb/daemon/pool.hpp: No such file or directory' <<<"$out"; then
    echo "ok: the build refuses core -> daemon:"
    grep -m1 'ssb/daemon/pool.hpp' <<<"$out"
    exit 0
fi
echo "FAIL: the probe failed to build, but not because of the layering:"
echo "$out" | tail -n 20
exit 1
