#!/usr/bin/env bash
# Checks that the README's configuration reference is exactly what
# `slurm-ssh-bridge config --reference` prints (docs cannot drift).
set -euo pipefail
bridge=${1:?usage: $0 PATH/TO/slurm-ssh-bridge}
readme=$(dirname "${BASH_SOURCE[0]}")/../README.md
if diff -u <(sed -n '/<!-- config-reference:begin -->/,/<!-- config-reference:end -->/p' "$readme" | sed '1d;$d') \
    <("$bridge" config --reference); then
    echo "README configuration reference is up to date"
else
    echo "README configuration reference differs from \`slurm-ssh-bridge config --reference\` (diff above)" >&2
    exit 1
fi
