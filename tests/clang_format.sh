#!/usr/bin/env bash
# Checks that every C++ file of the repository is formatted as .clang-format
# says (clang-format --dry-run --Werror): fix with
#   git ls-files -z -- '*.cpp' '*.hpp' '*.hpp.in' | xargs -0 clang-format -i
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
clang_format=${CLANG_FORMAT:-clang-format}
mapfile -t files < <(git ls-files -- '*.cpp' '*.hpp' '*.hpp.in')
echo "clang-format: $("$clang_format" --version | head -n1); ${#files[@]} files"
"$clang_format" --dry-run --Werror "${files[@]}"
echo "clang-format: all formatted"
