#!/usr/bin/env bash
# demo.sh — `make demo`: the comparison table on this machine, with nothing to download.
# Writes synthetic models of the real Qwen3.5-2B, Llama-3.2-3B and Qwen3.5-4B shapes at 4 bits
# (random weights; cached in .cache/demo after the first run), then benchmarks them with a short
# workload. Set DEMO_ARGS to change the bench flags.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/tallow
dir=.cache/demo
mkdir -p "$dir"
for like in qwen3.5-2b llama-3.2-3b qwen3.5-4b; do
    if [ ! -f "$dir/$like/config.json" ]; then
        echo "demo: writing a synthetic $like (4-bit, random weights) to $dir/$like" >&2
        rm -rf "$dir/$like.tmp"
        "$bin" synth --like "$like" --bits 4 --seed 1 -o "$dir/$like.tmp"
        mv "$dir/$like.tmp" "$dir/$like"
    fi
done
# shellcheck disable=SC2086
"$bin" bench -m "$dir/qwen3.5-2b" -m "$dir/llama-3.2-3b" -m "$dir/qwen3.5-4b" \
    ${DEMO_ARGS:---prompt-tokens 64 -n 16 -r 2} --plot "$dir/bench.svg"
echo
echo "demo: the models are synthetic (random weights of the real shapes): their speed and memory"
echo "are the real models', their text is noise. Plot: $dir/bench.svg"
