#!/usr/bin/env bash
# Fails when any C source or header in the tree differs from .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null || true)
[ -n "$files" ] || files=$(find include src tests fuzz bench -name '*.[ch]')
clang-format --dry-run --Werror $files
echo "$(echo "$files" | wc -w) passed, 0 failed"
