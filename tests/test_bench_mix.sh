#!/usr/bin/env bash
# test_bench_mix.sh — `tallow bench` on any mix of models (Llama, Qwen3, Qwen3.5), in every format: the counts in
# its output (prompt and generation tokens, repetitions, ranges, peak memory against the weights),
# the plot as an SVG with the models' labels, a broken model reported in its row.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${TALLOW_BIN:-build/tallow}
PY=.venv-test/bin/python; [ -x "$PY" ] || PY=python3
pass=0; fail=0
ok() { if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $*" >&2; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
A=tests/data/llama/llama-a/q4
B=tests/data/llama/qwen3-a/q8
Q=tests/data/qwen35/a_mlx4
common=(--prompt-tokens 20 -n 8 -r 3 --peak-bw 10 -t 1)

"$BIN" bench -m "$A" -m "$B" -m "$Q" "${common[@]}" --format json >"$tmp/b.json" 2>"$tmp/err"
ok test $? -eq 0
ok "$PY" - "$tmp/b.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "tallow-bench/1", d["schema"]
r = d["results"]
assert [x["label"] for x in r] == ["q4", "q8", "a_mlx4"], [x["label"] for x in r]
assert [x["arch"] for x in r] == ["llama", "qwen3", "qwen3_5"], [x["arch"] for x in r]
for x in r:
    assert "error" not in x, x
    assert x["prompt_tokens"] == 20 and x["generation_tokens"] == 8, x   # eos ignored
    for k in ("prompt_tps", "generation_tps", "ttft_ms", "decode_gbs"):
        s = x[k]
        assert s["n"] == 3 and s["min"] <= s["median"] <= s["max"] and s["min"] > 0, (k, s)
    assert x["peak_memory_bytes"] >= x["weight_bytes"] > 0, x
    assert x["peak_bandwidth_gbs"] == 10.0
    assert x["threads"] == 1 and x["device"] == "cpu" and x["synthetic"] is False
    assert x["quant"] in ("4-bit g32", "4-bit g64", "8-bit g32", "8-bit g64"), x["quant"]
PY
ok test $? -eq 0

"$BIN" bench -m "$A" "${common[@]}" --format csv >"$tmp/b.csv" 2>/dev/null
ok test "$(wc -l <"$tmp/b.csv")" -eq 2
ok grep -q '^model,label,synthetic,quant' "$tmp/b.csv"

"$BIN" bench -m "$A" -m "$tmp/nope" "${common[@]}" --plot "$tmp/p.svg" >"$tmp/b.md" 2>"$tmp/err"
ok test $? -eq 0                               # one of two models ran
ok grep -q '^| model | quant | load s | prompt tok |' "$tmp/b.md"
ok grep -q '^| q4 | 4-bit' "$tmp/b.md"
ok grep -q "^| nope | error: .*nope" "$tmp/b.md"
ok grep -q '^Workload: 20 random prompt tokens, 8 generated' "$tmp/b.md"
ok grep -q '<svg' "$tmp/p.svg"
ok grep -q '>q4<' "$tmp/p.svg"
ok grep -q 'generation tokens/s' "$tmp/p.svg"

"$BIN" bench -m "$A" --prompt-tokens 16 -n 4 -r 1 --peak-bw 10 --mlx-lines >"$tmp/m.txt" 2>/dev/null
ok grep -q '^\[q4\] Prompt: 16 tokens, [0-9.]* tokens-per-sec$' "$tmp/m.txt"
ok grep -q '^\[q4\] Generation: 4 tokens, [0-9.]* tokens-per-sec$' "$tmp/m.txt"
ok grep -q '^\[q4\] Peak memory: [0-9.]* GB$' "$tmp/m.txt"

"$BIN" bench -m "$A" --pp 24 --tg 6 -r 2 --peak-bw 10 --format json >"$tmp/pp.json" 2>/dev/null
ok "$PY" -c "import json,sys; x=json.load(open('$tmp/pp.json'))['results'][0]; assert x['prompt_tokens']==24 and x['generation_tokens']==6, x"

# only broken models: exit 1 (usage errors: test_bench_cli.sh)
"$BIN" bench -m "$tmp/nope" --peak-bw 10 >/dev/null 2>&1; ok test $? -eq 1

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
