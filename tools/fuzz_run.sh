#!/usr/bin/env bash
# fuzz_run.sh SECONDS — run every libFuzzer target in build-fuzz for SECONDS each, with its seed
# corpus from fuzz/seeds/<target>/ when there is one. Runs them all; exits 1 if any crashed (its
# log tail printed).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
status=0
for f in build-fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus=build-fuzz/corpus-$name
    mkdir -p "$corpus"
    seeds=()
    [ -d "fuzz/seeds/$name" ] && seeds=("fuzz/seeds/$name")
    echo "== $name for ${secs}s"
    if ! "$f" -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 "$corpus" "${seeds[@]}" \
        >"build-fuzz/$name.log" 2>&1; then
        echo "$name: FAILED (build-fuzz/$name.log)"; tail -30 "build-fuzz/$name.log"; status=1
    else
        grep -E '^(#[0-9]+|Done)' "build-fuzz/$name.log" | tail -1
    fi
done
exit $status
