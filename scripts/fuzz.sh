#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from
# its seed corpus and dictionary; new inputs go to build-fuzz/corpus/NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-fuzz}
secs=${2:-60}
for bin in "$dir"/fuzz/fuzz_*; do
    name=$(basename "$bin")
    short=${name#fuzz_}
    out="$dir/corpus/$short"
    mkdir -p "$out"
    dict=()
    [ -f "fuzz/dict/$short.dict" ] && dict=(-dict="fuzz/dict/$short.dict")
    echo "fuzz: $short for ${secs}s"
    "$bin" "${dict[@]}" -max_total_time="$secs" -max_len=65536 "$out" "fuzz/corpus/$short"
done
