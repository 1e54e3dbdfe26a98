#!/usr/bin/env bash
# test_synth_cli.sh — `tallow synth` from the command line: it says the model is synthetic, writes
# the mlx-community file set, is byte-for-byte deterministic for a seed, and refuses bad flags (2).
set -u
cd "$(dirname "$0")/.."
BIN=${TALLOW_BIN:-build/tallow}
[ -x "$BIN" ] || { echo "SKIPPED: no tallow binary at $BIN"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { if eval "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1 ${2:-}" >&2; fi; }

out=$("$BIN" synth --like qwen3.5-0.8b --layers 1 --seed 5 -o "$tmp/a" 2>&1); rc=$?
check '[ $rc = 0 ]' "$out"
check 'echo "$out" | grep -q "synthetic qwen3.5-0.8b (random weights, seed 5): 1 layers"' "$out"
for f in config.json generation_config.json model.safetensors model.safetensors.index.json \
         tokenizer.json tokenizer_config.json chat_template.jinja; do
    check '[ -s "$tmp/a/$f" ]' "$f"
done
check 'grep -q "\"tallow_synthetic\": true" "$tmp/a/config.json"'
check 'grep -q "\"bits\": 4" "$tmp/a/config.json"'
"$BIN" synth --like qwen3.5-0.8b --layers 1 --seed 5 -o "$tmp/b" >/dev/null 2>&1
"$BIN" synth --like qwen3.5-0.8b --layers 1 --seed 6 -o "$tmp/c" >/dev/null 2>&1
check 'cmp -s "$tmp/a/model.safetensors" "$tmp/b/model.safetensors"' "same seed, same bytes"
check '! cmp -s "$tmp/a/model.safetensors" "$tmp/c/model.safetensors"' "another seed, other bytes"
check 'cmp -s "$tmp/a/tokenizer.json" "$tmp/c/tokenizer.json"'

# everything tallow prints about a synthetic model says so
"$BIN" synth --like qwen3.5-0.8b --layers 4 --seed 5 -o "$tmp/d" >/dev/null 2>&1
out=$("$BIN" inspect "$tmp/d" 2>&1)
check 'echo "$out" | grep -q "^  synthetic      yes: random weights"' "inspect: $out"
out=$("$BIN" generate --model "$tmp/d" --prompt-ids 1,2,3 -m 2 --format json 2>"$tmp/gen.err")
check 'echo "$out" | grep -q "\"synthetic\":true"' "generate json: $out"
check 'grep -q "is a synthetic model" "$tmp/gen.err"' "generate: $(cat "$tmp/gen.err")"
out=$("$BIN" bench -m "$tmp/d" --prompt-tokens 4 -n 2 -r 1 --peak-bw 10 2>/dev/null)
check 'echo "$out" | grep -q "^| d (synthetic) |"' "bench: $out"

"$BIN" synth --help >/dev/null 2>&1; check '[ $? = 0 ]'
for args in "--like qwen3.5-9b -o $tmp/x" "--like llama-3.2-3b --bits 3 -o $tmp/x" \
            "--like llama-3.2-3b --layers 29 -o $tmp/x" "--like llama-3.2-3b" "-o $tmp/x" \
            "--like llama-3.2-3b --seed -1 -o $tmp/x" "--like llama-3.2-3b -o $tmp/x --frob"; do
    err=$("$BIN" synth $args 2>&1 >/dev/null); rc=$?
    check '[ $rc = 2 ] && [ -n "$err" ] && [ $(echo "$err" | wc -l) = 1 ]' "synth $args -> $rc: $err"
done
check '[ ! -e "$tmp/x/config.json" ]'
echo "$pass passed, $fail failed"
[ $fail = 0 ]
