#!/usr/bin/env bash
# bench_side_by_side.sh — `make bench-peers`: tallow and llama.cpp on the same model shapes, in one run.
# For each thread count: `tallow bench --pp PP --tg TG -t N` over the models, then
# tools/bench_llamacpp.py (llama.cpp from PyPI's llama-cpp-python, random Q4_0 GGUFs of the same
# shapes cached in .cache/lcpp) over the same models and threads, back to back. Prints tallow's
# table, llama.cpp's table (same columns) for each thread count, then one combined table
# (model, threads, tallow pp/tg, llama.cpp pp/tg, ratios). The JSON of every run is kept in $OUT.
# Environment: MODELS (space separated dirs; default the three `make demo` models, written if
# missing), THREADS ("1 2"), PP (512), TG (128), REPS (3), OUT (.cache/lcpp/runs/<UTC time>).
# Needs build/tallow (make build) and .venv-lcpp (tools/setup.sh lcpp); exits non-zero if either
# engine fails every model.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/tallow
py=.venv-lcpp/bin/python
PP=${PP:-512}
TG=${TG:-128}
REPS=${REPS:-3}
THREADS=${THREADS:-1 2}
OUT=${OUT:-.cache/lcpp/runs/$(date -u +%Y%m%dT%H%M%SZ)}

[ -x "$bin" ] || { echo "bench-peers: $bin missing: run make build" >&2; exit 2; }
[ -x "$py" ] || { echo "bench-peers: $py missing: run tools/setup.sh lcpp" >&2; exit 2; }

if [ -z "${MODELS:-}" ]; then
    MODELS=""
    for like in qwen3.5-2b llama-3.2-3b qwen3.5-4b; do
        d=.cache/demo/$like
        if [ ! -f "$d/config.json" ]; then
            echo "bench-peers: writing a synthetic $like (4-bit, random weights) to $d" >&2
            rm -rf "$d.tmp"
            "$bin" synth --like "$like" --bits 4 --seed 1 -o "$d.tmp"
            mv "$d.tmp" "$d"
        fi
        MODELS="$MODELS $d"
    done
fi
margs=()
for m in $MODELS; do margs+=(-m "$m"); done

mkdir -p "$OUT"
# write the GGUFs first so that their writing is not inside anyone's measurement
"$py" tools/bench_llamacpp.py "${margs[@]}" --gguf-only >/dev/null

files=()
rc=0
for t in $THREADS; do
    echo "bench-peers: tallow, $t thread(s), pp$PP tg$TG x$REPS" >&2
    if ! "$bin" bench "${margs[@]}" --pp "$PP" --tg "$TG" -r "$REPS" -t "$t" --format json \
            >"$OUT/tallow-t$t.json"; then
        echo "bench-peers: tallow bench failed with $t thread(s)" >&2
        rc=1
    fi
    [ -s "$OUT/tallow-t$t.json" ] && files+=("$OUT/tallow-t$t.json")
    echo "bench-peers: llama.cpp, $t thread(s), pp$PP tg$TG x$REPS" >&2
    if ! "$py" tools/bench_llamacpp.py "${margs[@]}" --pp "$PP" --tg "$TG" -r "$REPS" -t "$t" \
            --format json >"$OUT/llamacpp-t$t.json"; then
        echo "bench-peers: llama.cpp failed with $t thread(s)" >&2
        rc=1
    fi
    [ -s "$OUT/llamacpp-t$t.json" ] && files+=("$OUT/llamacpp-t$t.json")
done
[ ${#files[@]} -gt 0 ] || { echo "bench-peers: no results" >&2; exit 1; }
"$py" tools/bench_llamacpp.py --combine "${files[@]}" | tee "$OUT/tables.md"
echo
echo "bench-peers: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; JSON and tables in $OUT"
exit $rc
