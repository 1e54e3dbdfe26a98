#!/usr/bin/env bash
# test_chat_cli.sh — `tallow template` and `tallow inspect` as a user runs them, on two small
# model directories made here: a Qwen3.5-4B-style one (its template opens <think> by default)
# and a 2B-style one (same template with the 2B's final block, which pre-closes it), each with a
# config.json and a tokenizer_config.json holding the template. Needs the shared fixtures (77 =
# skipped without them) and $TALLOW_BIN.
set -u
BIN=${TALLOW_BIN:-build/tallow}
FIX=${TALLOW_SHARED:-../shared/fixtures}
[ -f "$FIX/templates/Qwen3.5-4B.jinja" ] || { echo "SKIPPED: no shared fixtures"; exit 77; }
[ -x "$BIN" ] || { echo "SKIPPED: no tallow binary at $BIN"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi; }

tpl4=$(cat "$FIX/templates/Qwen3.5-4B.jinja"; printf x); tpl4=${tpl4%x}
old="    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- else %}
        {{- '<think>\n' }}
    {%- endif %}"
new="    {%- if enable_thinking is defined and enable_thinking is true %}
        {{- '<think>\n' }}
    {%- else %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}"
tpl2=${tpl4/"$old"/"$new"}
ok "2B form differs from 4B" '[ "$tpl2" != "$tpl4" ]'

mkmodel() { # dir hidden layers heads kv vinter vheads template
    mkdir -p "$1"
    cat >"$1/config.json" <<EOF
{"architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text", "vocab_size": 248320,
 "hidden_size": $2, "num_hidden_layers": $3, "num_attention_heads": $4, "num_key_value_heads": $5,
 "head_dim": 256, "intermediate_size": $6, "max_position_embeddings": 262144, "rms_norm_eps": 1e-6,
 "attn_output_gate": true, "linear_num_key_heads": 16, "linear_num_value_heads": $7,
 "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4,
 "full_attention_interval": 4, "tie_word_embeddings": true, "partial_rotary_factor": 0.25,
 "rope_parameters": {"rope_type": "default", "rope_theta": 10000000, "partial_rotary_factor": 0.25},
 "quantization": {"group_size": 64, "bits": 4}, "eos_token_id": 248044}
EOF
    printf '%s' "$8" | "${PY:-python3}" -c 'import json,sys; print(json.dumps({"bos_token": None, "eos_token": "<|im_end|>", "chat_template": sys.stdin.read()}))' >"$1/tokenizer_config.json"
}
mkmodel "$T/q4b" 2560 32 16 4 9216 32 "$tpl4"
mkmodel "$T/q2b" 2048 24 8 2 6144 16 "$tpl2"

printf '[{"role":"system","content":"S"},{"role":"user","content":"U"}]' >"$T/m.json"
base=$'<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n'

# template: exact bytes (compared through files: $() would eat trailing newlines)
"$BIN" template --model "$T/q4b" --messages "$T/m.json" >"$T/out"; rc=$?
printf '%s<think>\n' "$base" >"$T/want"
ok "template 4B default rc" '[ $rc = 0 ]'
ok "template 4B default opens <think>" 'cmp -s "$T/out" "$T/want"'
"$BIN" template --model "$T/q4b" --messages "$T/m.json" --thinking off >"$T/out"
printf '%s<think>\n\n</think>\n\n' "$base" >"$T/want"
ok "template 4B --thinking off" 'cmp -s "$T/out" "$T/want"'
"$BIN" template --model "$T/q2b" --messages "$T/m.json" >"$T/out"
ok "template 2B default pre-closes" 'cmp -s "$T/out" "$T/want"'
"$BIN" template --model "$T/q2b" --messages "$T/m.json" --kwargs '{"enable_thinking": true}' >"$T/out"
printf '%s<think>\n' "$base" >"$T/want"
ok "template 2B kwargs enable_thinking" 'cmp -s "$T/out" "$T/want"'
"$BIN" template --chat-template "$FIX/templates/Qwen3.5-4B.jinja" --messages "$T/m.json" --no-generation-prompt >"$T/out"
printf '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n' >"$T/want"
ok "template --chat-template --no-generation-prompt" 'cmp -s "$T/out" "$T/want"'
"$BIN" template --chat-template "$FIX/templates/meta-llama-Llama-3.2-3B-Instruct.jinja" --messages "$T/m.json" \
    --bos-token '<|begin_of_text|>' --kwargs '{"date_string": "26 Jul 2024"}' >"$T/out"
printf '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n' >"$T/want"
ok "template Llama 3.2 (models.md §6.2 example)" 'cmp -s "$T/out" "$T/want"'
# tools from a file reach the template
printf '[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]' >"$T/tools.json"
"$BIN" template --model "$T/q4b" --messages "$T/m.json" --tools "$T/tools.json" >"$T/out"
ok "template --tools" 'grep -q "\"name\": \"get_weather\"" "$T/out"'
# a template raise: non-zero exit, the template's message on stderr, nothing on stdout
printf '[]' >"$T/empty.json"
"$BIN" template --model "$T/q4b" --messages "$T/empty.json" >"$T/out" 2>"$T/err"; rc=$?
ok "raise exits 1" '[ $rc = 1 ]'
ok "raise message on stderr" 'grep -q "No messages provided." "$T/err"'
ok "raise prints nothing" '[ ! -s "$T/out" ]'
# bad input: usage errors (exit 2) with a message
printf '[{"role": "user", "content": ' >"$T/bad.json"
"$BIN" template --model "$T/q4b" --messages "$T/bad.json" >/dev/null 2>"$T/err"; rc=$?
ok "malformed messages exit 2" '[ $rc = 2 ] && grep -q "invalid JSON" "$T/err"'
"$BIN" template --model "$T/q4b" --messages "$T/m.json" --thinking maybe >/dev/null 2>&1; rc=$?
ok "bad --thinking exit 2" '[ $rc = 2 ]'
printf '{{ x|nope }}' >"$T/bad.jinja"
"$BIN" template --chat-template "$T/bad.jinja" --messages "$T/m.json" >/dev/null 2>"$T/err"; rc=$?
ok "bad template: exit 2 with line and column" '[ $rc = 2 ] && grep -q "line 1, column" "$T/err"'
"$BIN" template --help | grep -q "template's own default"; ok "--help states the thinking default" '[ $? = 0 ]'

# inspect: one model
"$BIN" inspect "$T/q4b" >"$T/i4" 2>&1; rc=$?
ok "inspect 4B rc" '[ $rc = 0 ]'
ok "inspect 4B facts" 'grep -q "32 (24 Gated DeltaNet + 8 full attention)" "$T/i4" && grep -q "MLX affine 4-bit, group size 64" "$T/i4"'
ok "inspect 4B memory estimate" 'grep -q "memory  *~" "$T/i4"'
ok "inspect 4B suffix unset" 'grep -qF "thinking unset (template default)  \"<|im_start|>assistant\n<think>\n\"" "$T/i4"'
ok "inspect 4B warns" 'grep -q "WARNING: by default this template opens a <think> block" "$T/i4"'
"$BIN" inspect "$T/q2b" >"$T/i2" 2>&1
ok "inspect 2B no warning" '! grep -q WARNING "$T/i2" && grep -q "off by default" "$T/i2"'
# inspect: two models -> divergence
"$BIN" inspect "$T/q4b" "$T/q2b" >"$T/i42" 2>&1; rc=$?
ok "inspect A B rc" '[ $rc = 0 ]'
ok "inspect A B divergence" 'grep -q "thinking unset  DIVERGE at byte 128" "$T/i42"'
ok "inspect A B agree when explicit" 'grep -q -- "--thinking on   identical" "$T/i42" && grep -q -- "--thinking off  identical" "$T/i42"'
ok "inspect A B warning" 'grep -q "the same code gets reasoning from one model and prose from the other" "$T/i42"'
"$BIN" inspect "$T/nope" >/dev/null 2>&1; rc=$?
ok "inspect missing model fails" '[ $rc != 0 ]'

echo "$pass passed, $fail failed"
[ $fail = 0 ]
