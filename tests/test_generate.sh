#!/usr/bin/env bash
# test_generate.sh — `tallow generate` end to end on the tiny Llama (tests/data/llama/llama-a)
# with the 256-id test tokenizer and template (tests/data/sample/tok256): mlx-lm's output lines
# with the right counts, --format json, seeds, stop strings, extra eos ids, thinking display,
# and one-line errors with exit code 2.
set -u
cd "$(dirname "$0")/.."
BIN=${TALLOW_BIN:-build/tallow}
MODEL=tests/data/llama/llama-a/bf16
TOK=tests/data/sample/tok256
[ -x "$BIN" ] || { echo "SKIPPED: no tallow binary at $BIN"; exit 77; }
[ -f $MODEL/model.safetensors ] && [ -f $TOK/tokenizer.json ] || { echo "SKIPPED: tiny model missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: python3 needed to read JSON"; exit 77; }

T=$(mktemp -d /tmp/tallow-gen-sh-XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/m" "$T/notpl"
for f in $MODEL/config.json $MODEL/model.safetensors $TOK/tokenizer.json $TOK/tokenizer_config.json; do
    ln -s "$PWD/$f" "$T/m/"
done
for f in $MODEL/config.json $MODEL/model.safetensors $TOK/tokenizer.json; do ln -s "$PWD/$f" "$T/notpl/"; done
M="$T/m"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
json() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

# --- errors: one line on stderr, exit 2 ---
expect_usage_error() { # what, grep pattern, args...
    local what=$1 pat=$2; shift 2
    "$BIN" generate "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    check "[ $rc = 2 ]" "$what: exit $rc, expected 2"
    check "[ \$(wc -l <\"$T/err\") = 1 ] && grep -q -- \"$pat\" \"$T/err\"" "$what: stderr: $(cat "$T/err")"
}
# one thread: the tiny model gains nothing from more, and the test machine is shared
gen() { "$BIN" generate --threads 1 "$@"; }
expect_usage_error "unknown flag" "unknown flag '--bogus'" --model "$M" --bogus
expect_usage_error "negative temp" "--temp" --model "$M" --temp -0.5
expect_usage_error "top-p 0" "--top-p must be in (0, 1]" --model "$M" --top-p 0
expect_usage_error "top-p > 1" "--top-p" --model "$M" --top-p 1.5
expect_usage_error "min-p > 1" "--min-p" --model "$M" --min-p 1.2
expect_usage_error "no model" "no model given" -p hi
expect_usage_error "missing model" "not" --model "$T/does-not-exist"
expect_usage_error "no template" "has no chat template" --model "$T/notpl" -p hi
expect_usage_error "no tokenizer" "prompt-ids" --model "$MODEL" -p hi
expect_usage_error "bad logit bias" "logit-bias" --model "$M" --logit-bias 'x:1'
expect_usage_error "bias id outside vocab" "outside the vocabulary" --model "$M" --logit-bias '{"999": 1}'
expect_usage_error "bad template config" "chat-template-config" --model "$M" --chat-template-config '[1]'
expect_usage_error "unknown preset" "unknown preset" --model "$M" --preset nope
expect_usage_error "system prompt without template" "needs the chat template" --model "$M" -p hi --ignore-chat-template --system-prompt S
expect_usage_error "thinking with prompt ids" "needs the chat template" --model "$M" --prompt-ids 1,2 --thinking off
expect_usage_error "prompt id outside vocab" "outside the vocabulary" --model "$M" --prompt-ids 1,300

# --- issue 2's JSON contract with --prompt-ids ---
gen --model "$MODEL" --prompt-ids 1,5,9,14 -m 7 --temp 0 --format json >"$T/a.json" 2>"$T/err"
check "[ $? = 0 ]" "prompt-ids json run failed: $(cat "$T/err")"
check "[ \"\$(json $T/a.json 'd[\"prompt_ids\"]')\" = '[1, 5, 9, 14]' ]" "prompt_ids echoed"
check "[ \"\$(json $T/a.json 'len(d[\"generated_ids\"])')\" = 7 ]" "7 generated ids"
check "[ \"\$(json $T/a.json 'd[\"finish_reason\"]')\" = length ]" "finish_reason length"
check "[ \"\$(json $T/a.json 'd[\"timings\"][\"prompt_tokens\"], d[\"timings\"][\"generation_tokens\"]')\" = '4 7' ]" "timing counts"
check "[ \"\$(json $T/a.json 'all(k in d[\"timings\"] for k in (\"prompt_tps\",\"generation_tps\",\"ttft_ms\",\"peak_memory_bytes\")) and d[\"timings\"][\"peak_memory_bytes\"] > 0')\" = True ]" "timings fields"
# greedy is deterministic: the same ids again, also with --threads 1
gen --model "$MODEL" --prompt-ids 1,5,9,14 -m 7 --temp 0 --format json --threads 2 >"$T/b.json"
check "[ \"\$(json $T/a.json 'd[\"generated_ids\"]')\" = \"\$(json $T/b.json 'd[\"generated_ids\"]')\" ]" "greedy repeats"

# greedy through the CLI gives transformers' 32 greedy tokens (tests/data/llama/llama-a/golden_hf.txt,
# whose top-2 margins are all well above noise)
G=tests/data/llama/llama-a/golden_hf.txt
if [ -f $G ]; then
    p0=$(awk '/^prompt0 /{getline; gsub(/ /, ","); print; exit}' $G)
    want=$(awk '/^greedy /{getline; print; exit}' $G)
    gen --model "$MODEL" --prompt-ids "$p0" -m 32 --temp 0 --format json >"$T/golden.json"
    got=$(json "$T/golden.json" '" ".join(str(i) for i in d["generated_ids"])')
    check '[ "$got" = "$want" ]' "greedy tokens vs transformers: got '$got' want '$want'"
fi

# --- seeds ---
run_seed() { gen --model "$M" -p "Tell me a story" -m 16 --temp 1.0 --seed "$1" --format json >"$2"; }
run_seed 7 "$T/s1.json"; run_seed 7 "$T/s2.json"; run_seed 8 "$T/s3.json"
check "[ \"\$(json $T/s1.json 'd[\"generated_ids\"]')\" = \"\$(json $T/s2.json 'd[\"generated_ids\"]')\" ]" "same seed, same tokens"
check "[ \"\$(json $T/s1.json 'd[\"generated_ids\"]')\" != \"\$(json $T/s3.json 'd[\"generated_ids\"]')\" ]" "other seed, other tokens"
check "[ \"\$(json $T/s1.json 'd[\"seed\"]')\" = 7 ]" "seed reported"

# --- text output: mlx-lm's frame and lines, counts that match the JSON run ---
gen --model "$M" -p "Hello world" -m 12 --temp 0 >"$T/text" 2>"$T/err"
check "[ $? = 0 ]" "text run failed: $(cat "$T/err")"
gen --model "$M" -p "Hello world" -m 12 --temp 0 --format json >"$T/h.json"
np=$(json "$T/h.json" 'len(d["prompt_ids"])')
check "[ \"\$(head -1 $T/text)\" = ========== ]" "first line is =========="
check "[ \"\$(grep -c '^==========\$' $T/text)\" = 2 ]" "two separator lines"
check "grep -Eq '^Prompt: $np tokens, [0-9]+\.[0-9]{3} tokens-per-sec\$' $T/text" "Prompt line with $np tokens: $(grep Prompt "$T/text")"
check "grep -Eq '^Generation: 12 tokens, [0-9]+\.[0-9]{3} tokens-per-sec\$' $T/text" "Generation line"
check "grep -Eq '^Peak memory: [0-9]+\.[0-9]{3} GB\$' $T/text" "Peak memory line"
check "grep -Eq '^Time to first token: [0-9]+\.[0-9]{3} s\$' $T/text" "ttft line"
# the template opens <think>: reasoning is shown under a header, or hidden
check "grep -q '^Thinking:' $T/text" "reasoning shown under Thinking:"
gen --model "$M" -p "Hello world" -m 12 --temp 0 --hide-thinking >"$T/hide"
check "! grep -q 'Thinking:' $T/hide" "--hide-thinking hides it"
check "[ \"\$(json $T/h.json 'd[\"reasoning\"] == d[\"text\"] and d[\"content\"] == \"\"')\" = True ]" "json: the open think block is reasoning"
gen --model "$M" -p "Hello world" -m 12 --temp 0 --thinking off --format json >"$T/off.json"
check "[ \"\$(json $T/off.json 'len(d[\"prompt_ids\"]) > $np and d[\"reasoning\"] is None')\" = True ]" "--thinking off pre-closes the block"
# --verbose false: the text only
gen --model "$M" -p "Hello world" -m 12 --temp 0 --verbose false >"$T/quiet"
check "! grep -q '==========\|Prompt:' $T/quiet" "--verbose false prints the text only"
# stdin prompt, and --ignore-chat-template on a directory without a template
printf "Hello world" | gen --model "$M" -p - -m 12 --temp 0 --format json >"$T/stdin.json"
check "[ \"\$(json $T/stdin.json 'd[\"generated_ids\"]')\" = \"\$(json $T/h.json 'd[\"generated_ids\"]')\" ]" "-p - reads stdin"
gen --model "$T/notpl" -p "Hello world" --ignore-chat-template -m 4 --format json >"$T/raw.json"
check "[ \$? = 0 ] && [ \"\$(json $T/raw.json 'len(d[\"prompt_ids\"])')\" -lt $np ]" "--ignore-chat-template tokenizes the raw prompt"

# --prefill-response continues an assistant message (no <|im_end|> = id 2 after it)
gen --model "$M" -p "Hi" --prefill-response "Sure, here" -m 4 --temp 0 --format json >"$T/pre.json"
check "[ \"\$(json $T/pre.json 'd[\"prompt_ids\"][-1] != 2 and d[\"prompt_ids\"].count(3) == 2')\" = True ]" "prefill: the assistant turn is left open: $(json "$T/pre.json" 'd["prompt_ids"]')"
expect_usage_error "prefill without template" "needs the chat template" --model "$M" -p hi --ignore-chat-template --prefill-response x
expect_usage_error "min-tokens-to-keep 0" "--min-tokens-to-keep" --model "$M" --min-tokens-to-keep 0

# --- stop strings and extra eos ids ---
gen --model "$M" -p "Hello world" -m 24 --temp 0 --thinking off --format json >"$T/g.json"
stop=$(json "$T/g.json" 'd["text"][5:9]')
gen --model "$M" -p "Hello world" -m 24 --temp 0 --thinking off --format json --stop "$stop" >"$T/st.json"
check "[ \"\$(json $T/st.json 'd[\"finish_reason\"]')\" = stop ]" "stop string ends with finish_reason stop"
check "[ \"\$(python3 -c \"import json; a=json.load(open('$T/g.json'))['text']; b=json.load(open('$T/st.json'))['text']; s=a[5:9]; print(b == a[:a.index(s)])\")\" = True ]" "text ends before the stop string"
eos=$(json "$T/g.json" 'd["generated_ids"][6]')
first=$(json "$T/g.json" "d['generated_ids'].index($eos)")
gen --model "$M" -p "Hello world" -m 24 --temp 0 --thinking off --extra-eos-token "$eos" >"$T/eos" 2>&1
check "grep -Eq '^Generation: $((first + 1)) tokens' $T/eos" "extra eos id ends generation and counts as generated: $(grep Generation "$T/eos")"
gen --model "$M" -p "Hello world" -m 24 --temp 0 --thinking off --extra-eos-token "$eos" --format json >"$T/eos.json"
check "[ \"\$(json $T/eos.json 'd[\"finish_reason\"], d[\"generated_ids\"][-1]')\" = \"stop $eos\" ]" "eos: finish stop, eos id last"

# --- defaults from generation_config.json, --preset, explicit flags: in that order of strength ---
mkdir -p "$T/gc"
for f in "$M"/*; do ln -s "$(readlink "$f")" "$T/gc/"; done
echo '{"temperature": 1.0, "top_k": 1, "top_p": 0.9}' >"$T/gc/generation_config.json"
gen --model "$T/gc" -p "Tell me a story" -m 16 --seed 1 --format json --verbose >"$T/gc1.json" 2>"$T/gc.err"
gen --model "$T/gc" -p "Tell me a story" -m 16 --seed 2 --format json >"$T/gc2.json"
gen --model "$T/gc" -p "Tell me a story" -m 16 --temp 0 --format json >"$T/gc0.json"
ids() { json "$1" 'd["generated_ids"]'; }
check "grep -q 'temp 1, top_p 0.9, top_k 1,' $T/gc.err" "--verbose prints the generation_config defaults: $(cat "$T/gc.err")"
check '[ "$(ids $T/gc1.json)" = "$(ids $T/gc2.json)" ]' "top_k 1 from generation_config: greedy whatever the seed"
check '[ "$(ids $T/gc1.json)" = "$(ids $T/gc0.json)" ]' "... the greedy tokens"
gen --model "$T/gc" -p "Tell me a story" -m 16 --seed 1 --top-k 0 --format json >"$T/gc3.json"
gen --model "$T/gc" -p "Tell me a story" -m 16 --seed 2 --top-k 0 --format json >"$T/gc4.json"
check '[ "$(ids $T/gc3.json)" != "$(ids $T/gc4.json)" ]' "--top-k 0 overrides generation_config"
gen --model "$T/gc" -p hi -m 1 --preset qwen-coding --verbose >/dev/null 2>"$T/pre.err"
check "grep -q 'temp 0.6, top_p 0.95, top_k 20, min_p 0, presence 0,.*thinking on, preset qwen-coding' $T/pre.err" "preset values: $(cat "$T/pre.err")"
gen --model "$T/gc" -p hi -m 1 --preset qwen-instruct --temp 0.2 --thinking on --verbose >/dev/null 2>"$T/pre2.err"
check "grep -q 'temp 0.2, top_p 0.8, top_k 20, min_p 0, presence 1.5,.*thinking on' $T/pre2.err" "flags beat the preset: $(cat "$T/pre2.err")"
# --- --pull: a repo id missing from the cache is downloaded (tools/fake_hub.py stands in for the hub)
PY=.venv-test/bin/python; [ -x "$PY" ] || PY=python3
if [ -f tools/fake_hub.py ]; then
    "$PY" tools/fake_hub.py --port-file "$T/port" --log "$T/hub.log" &
    hub=$!
    for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
    (
        export HF_ENDPOINT="http://127.0.0.1:$(cat "$T/port")" HF_HUB_CACHE="$T/cache" HF_TOKEN_PATH="$T/none"
        unset HF_TOKEN HF_HUB_OFFLINE HF_HOME
        "$BIN" generate --model org/tiny -p hi </dev/null >/dev/null 2>"$T/nopull.err"; echo "$?" >"$T/nopull.rc"
        "$BIN" generate --model org/tiny -p hi --pull </dev/null >/dev/null 2>"$T/pull.err"; echo "$?" >"$T/pull.rc"
    )
    kill $hub 2>/dev/null
    check "[ \"\$(cat $T/nopull.rc)\" = 2 ] && grep -q -- '--pull' $T/nopull.err" "missing repo without --pull: exit 2 naming --pull: $(cat "$T/nopull.err")"
    check "[ -f \"\$(ls -d $T/cache/models--org--tiny/snapshots/*/ 2>/dev/null | head -1)config.json\" ]" "--pull downloads into the cache: $(cat "$T/pull.err")"
    check "grep -q 'pulling org/tiny' $T/pull.err && [ \"\$(cat $T/pull.rc)\" != 0 ]" "then loads it (the fake repo is no model, so that fails): $(tail -1 "$T/pull.err")"
fi

# --- TALLOW_PROFILE=1: the per-op table on stderr, the same tokens as without it ---
gen --model "$M" --prompt-ids 1,2,3 -m 4 --temp 0 --format json >"$T/np.json" 2>/dev/null
TALLOW_PROFILE=1 gen --model "$M" --prompt-ids 1,2,3 -m 4 --temp 0 --format json >"$T/pr.json" 2>"$T/pr.err"
check "[ \"\$(json $T/pr.json 'd[\"generated_ids\"]')\" = \"\$(json $T/np.json 'd[\"generated_ids\"]')\" ]" "profiling changes nothing generated"
check "grep -q '^tallow profile (cpu backend' $T/pr.err && grep -Eq '^  matmul +[0-9]+ ' $T/pr.err" "profile table: $(head -3 "$T/pr.err")"
check "grep -Eq '^  self_attn.q_proj +8 ' $T/pr.err && grep -Eq '^  mlp.down_proj +8 ' $T/pr.err" "matmul per weight family, a call per layer (2) and forward pass (4): $(grep proj "$T/pr.err" | head -3)"
check "grep -q 'counted memory peaks (MB): weights' $T/pr.err" "memory peaks line"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
