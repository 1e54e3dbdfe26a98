#!/usr/bin/env bash
# test_bench_flags.sh — `tallow bench` end to end on the tiny Llama (tests/data/llama/llama-a):
# a llama-bench style run gives one JSON row with the workload's token counts, and every bad
# flag value is refused before any model is loaded or measured: one line naming the flag, exit 2.
set -u
cd "$(dirname "$0")/.."
BIN=${TALLOW_BIN:-build/tallow}
MODEL=tests/data/llama/llama-a/bf16
[ -x "$BIN" ] || { echo "SKIPPED: no tallow binary at $BIN"; exit 77; }
[ -f $MODEL/model.safetensors ] || { echo "SKIPPED: tiny model missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: python3 needed to read JSON"; exit 77; }

T=$(mktemp -d /tmp/tallow-bench-sh-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
check() { if eval "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2" >&2; fi; }

# --peak-bw given: no bandwidth probe, so a refused run prints nothing before its error
B() { "$BIN" bench --peak-bw 10 --threads 1 "$@"; }

expect_usage_error() { # what, grep pattern, args...
    local what=$1 pat=$2; shift 2
    B "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    check "[ $rc = 2 ]" "$what: exit $rc, expected 2"
    check "[ \$(wc -l <\"$T/err\") = 1 ] && grep -q -- \"$pat\" \"$T/err\"" \
        "$what: stderr: $(cat "$T/err")"
    check "[ ! -s \"$T/out\" ]" "$what: printed a table for a refused run"
}
expect_usage_error "no model" "no model given" --pp 4 --tg 2
expect_usage_error "empty model" "-m needs" -m ""
expect_usage_error "unknown flag" "--bogus" -m $MODEL --bogus
expect_usage_error "missing value" "--ctx needs a value" -m $MODEL --ctx
expect_usage_error "reps 0" "--reps" -m $MODEL -r 0
expect_usage_error "gen tokens text" "--gen-tokens" -m $MODEL -n many
expect_usage_error "threads negative" "--threads" -m $MODEL -t -1
expect_usage_error "bad format" "--format" -m $MODEL --format yaml
expect_usage_error "bad device" "--device" -m $MODEL --device tpu
expect_usage_error "bad thinking" "--thinking" -m $MODEL --thinking maybe
expect_usage_error "peak-bw nan" "--peak-bw" -m $MODEL --peak-bw nan
expect_usage_error "pp without tg" "--pp and --tg" -m $MODEL --pp 8
expect_usage_error "prompt and pp" "not both" -m $MODEL -p hi --pp 8 --tg 2
expect_usage_error "ctx too small" "--ctx 16 is too small" -m $MODEL --prompt-tokens 100 -n 2 --ctx 16
expect_usage_error "plot not svg" "--plot" -m $MODEL --pp 4 --tg 2 --plot "$T/p.png"
expect_usage_error "extra argument" "unexpected argument" -m $MODEL extra

# --help prints the usage and exits 0
"$BIN" bench --help >"$T/out" 2>&1
check "[ $? = 0 ] && grep -q 'usage: tallow bench' \"$T/out\"" "--help: $(head -2 "$T/out")"

# a run: one JSON row with the workload's counts, and the plot
B -m $MODEL --pp 8 --tg 4 -r 1 --no-warmup --format json --plot "$T/p.svg" >"$T/b.json" 2>"$T/err"
check "[ $? = 0 ]" "bench run failed: $(cat "$T/err")"
check "python3 -c \"import json,sys; d=json.load(open('$T/b.json')); r=d['results'][0]; \
sys.exit(not (r['prompt_tokens'] == 8 and r['generation_tokens'] == 4 and r['generation_tps']['median'] > 0))\"" \
    "json row: $(head -c 600 "$T/b.json")"
check "head -c 4 \"$T/p.svg\" | grep -q '<svg'" "plot not written"

# a chat prompt on a model whose max_position_embeddings (512) is below 2048: the context fits
# the model (it used to ask for 2048 and fail)
M="$T/m"
mkdir -p "$M"
for f in $MODEL/config.json $MODEL/model.safetensors tests/data/sample/tok256/tokenizer.json \
    tests/data/sample/tok256/tokenizer_config.json; do ln -s "$PWD/$f" "$M/"; done
B -m "$M" -p "hello there" -n 3 -r 1 --no-warmup --format csv >"$T/c.csv" 2>"$T/err"
check "[ $? = 0 ] && [ \$(wc -l <\"$T/c.csv\") = 2 ]" "chat prompt run: $(cat "$T/err")"

# a model that is not there: the error names it, and nothing is measured
B -m "$T/no-such-model" --pp 4 --tg 2 -r 1 >"$T/out" 2>"$T/err"
rc=$?
check "[ $rc != 0 ] && grep -q 'no-such-model' \"$T/err\"" "missing model: rc $rc, $(cat "$T/err")"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
