#!/usr/bin/env bash
# test_pull.sh — `tallow pull` against tools/fake_hub.py on 127.0.0.1: the huggingface_hub cache
# layout (blobs, relative snapshot symlinks, refs), reuse, revisions, --include, tokens, resume of a
# cut transfer, checksum mismatch, 401/404/network errors, HF_HUB_OFFLINE, unsafe names, usage.
set -u
cd "$(dirname "$0")/.."
BIN=${TALLOW_BIN:-build/tallow}
[ -x "$BIN" ] || { echo "SKIPPED: no tallow binary at $BIN"; exit 77; }
PY=.venv-test/bin/python
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIPPED: no python"; exit 77; }

tmp=$(mktemp -d)
hub_pid=
cleanup() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$PY" tools/fake_hub.py --port-file "$tmp/port" --log "$tmp/log" &
hub_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "FAIL: fake hub did not start"; exit 1; }

export HF_ENDPOINT="http://127.0.0.1:$(cat "$tmp/port")"
export HF_HUB_CACHE="$tmp/cache"
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_OFFLINE HF_HOME
export HF_TOKEN_PATH="$tmp/no-token"

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$1 ${2:-}"; fi; }
# run: sets rc, out, errtxt
run() { out=$("$BIN" pull "$@" 2>"$tmp/err"); rc=$?; errtxt=$(cat "$tmp/err"); }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sha1_of() { printf '%s' "$1" | sha1sum | cut -d' ' -f1; }
requests() { wc -l <"$tmp/log"; }

R=$HF_HUB_CACHE/models--org--tiny
A=$(sha1_of tiny-a)
B=$(sha1_of tiny-b)

# 1. a fresh pull: layout as huggingface_hub writes it
run org/tiny
check '[ $rc = 0 ]' "$errtxt"
check '[ "$out" = "$R/snapshots/$A" ]' "out=$out"
check '[ "$(cat $R/refs/main)" = "$A" ]'
check '[ -L $R/snapshots/$A/model.safetensors ]'
w=$(readlink "$R/snapshots/$A/model.safetensors")
check '[ "${w%/*}" = "../../blobs" ]' "link=$w"
check '[ "$(sha $R/snapshots/$A/model.safetensors)" = "${w##*/}" ]' "LFS blob named by its sha256"
check '[ "$(readlink $R/snapshots/$A/sub/notes.txt | cut -c1-15)" = "../../../blobs/" ]'
check '[ "$(cat $R/snapshots/$A/sub/notes.txt)" = "nested file" ]'
check 'grep -q "\"rev\": \"a\"" $R/snapshots/$A/config.json'
check '[ $(ls $R/blobs | wc -l) = 4 ]'
check '! ls $R/blobs | grep -q incomplete'
check 'grep -q "/cdn/" $tmp/log' "LFS download follows the redirect to the CDN path"

check '[ -e $HF_HUB_CACHE/.locks/models--org--tiny/${w##*/}.lock ]' "huggingface_hub's lock file"

# 1b. two pulls at once into a fresh cache: both succeed, the blobs are whole
export HF_HUB_CACHE="$tmp/cache-par"
"$BIN" pull org/tiny >/dev/null 2>"$tmp/e1" & p1=$!
"$BIN" pull org/tiny >/dev/null 2>"$tmp/e2" & p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
check '[ $r1 = 0 ] && [ $r2 = 0 ]' "$(cat $tmp/e1 $tmp/e2)"
f=$HF_HUB_CACHE/models--org--tiny/snapshots/$A/model.safetensors
check '[ "$(sha $f)" = "$(basename $(readlink $f))" ]'
export HF_HUB_CACHE="$tmp/cache"

# 2. pulling again downloads nothing
n0=$(requests)
run org/tiny
check '[ $rc = 0 ] && echo "$errtxt" | grep -q "0 downloaded"' "$errtxt"
check '[ $(( $(requests) - n0 )) = 1 ]' "only the listing is fetched again"

# 3. another revision reuses the shared blob; refs/v1 written
n0=$(requests)
run org/tiny --revision v1
check '[ $rc = 0 ] && [ "$out" = "$R/snapshots/$B" ] && [ "$(cat $R/refs/v1)" = "$B" ]' "$errtxt"
check 'grep -q "\"rev\": \"b\"" $R/snapshots/$B/config.json'
check '! tail -n +$((n0 + 1)) $tmp/log | grep -q "/cdn/"' "weights blob reused, not downloaded"
check '[ "$(readlink $R/snapshots/$B/model.safetensors)" = "$w" ]'

# 4. a commit hash as revision: no ref file for it
run org/tiny --revision "$A"
check '[ $rc = 0 ] && [ ! -e $R/refs/$A ]' "$errtxt"

# 5. --include
export HF_HUB_CACHE="$tmp/cache-inc"
run org/tiny --include '*.json' --include 'sub/'
check '[ $rc = 0 ]' "$errtxt"
check '[ -e $HF_HUB_CACHE/models--org--tiny/snapshots/$A/config.json ] && [ -e $HF_HUB_CACHE/models--org--tiny/snapshots/$A/sub/notes.txt ]'
check '[ ! -e $HF_HUB_CACHE/models--org--tiny/snapshots/$A/model.safetensors ]'
run org/tiny --include '*.gguf'
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "no file"' "$errtxt"
export HF_HUB_CACHE="$tmp/cache"

# 6. gated: 401 without a token says to set HF_TOKEN; the token is sent as Bearer
run org/gated
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "401" && echo "$errtxt" | grep -q "HF_TOKEN"' "$errtxt"
check '[ $(echo "$errtxt" | wc -l) = 1 ]' "one line"
run org/gated --token wrong
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "refused"' "$errtxt"
HF_TOKEN=secret-token run org/gated
check '[ $rc = 0 ]' "$errtxt"
check 'grep -q "Bearer secret-token" $tmp/log'

# 7. 404s: repo, revision
run org/absent
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "org/absent" && echo "$errtxt" | grep -q "not found"' "$errtxt"
run org/tiny --revision nope
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "revision '"'"'nope'"'"' not found"' "$errtxt"

# 8. checksum mismatch: rejected, nothing left behind
run org/broken
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "checksum mismatch for bad.bin"' "$errtxt"
check '[ -z "$(ls $HF_HUB_CACHE/models--org--broken/blobs)" ]'
check '[ ! -e $HF_HUB_CACHE/models--org--broken/refs/main ]'

# 9. a cut transfer: with no retries it fails and keeps the partial file; the next run resumes
C=$HF_HUB_CACHE/models--org--cut
run org/cut --retries 0
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "interrupted" && echo "$errtxt" | grep -q "resume"' "$errtxt"
inc=$(ls $C/blobs/*.incomplete 2>/dev/null | head -1)
check '[ -n "$inc" ] && [ $(stat -c %s "$inc") = 150000 ]' "partial file kept"
run org/cut
check '[ $rc = 0 ]' "$errtxt"
check 'grep -q "\"range\": \"bytes=150000-\"" $tmp/log' "resumed with a Range request"
f=$C/snapshots/$(sha1_of cut)/big.bin
check '[ -e $f ] && [ $(stat -L -c %s $f) = 300000 ] && [ "$(sha $f)" = "$(basename $(readlink $f))" ]'
# ... and within one run, with retries (the default)
run org/cut2
check '[ $rc = 0 ] && [ -e $HF_HUB_CACHE/models--org--cut2/snapshots/$(sha1_of cut2)/big.bin ]' "$errtxt"
run org/cutalways --retries 2
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "interrupted"' "$errtxt"

# 10. HF_HUB_OFFLINE=1: no network; a cached repo is still found
n0=$(requests)
HF_HUB_OFFLINE=1 run org/never
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "HF_HUB_OFFLINE"' "$errtxt"
HF_HUB_OFFLINE=1 run org/tiny
check '[ $rc = 0 ] && [ "$out" = "$R/snapshots/$A" ]' "$errtxt"
check '[ $(requests) = $n0 ]' "no request while offline"

# 11. the network is down
HF_ENDPOINT=http://127.0.0.1:1 run org/other
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "network error"' "$errtxt"

# 12. a listing with an unsafe path is refused
run org/evil
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "unsafe file name"' "$errtxt"
check '[ ! -e $HF_HUB_CACHE/escape.txt ] && [ ! -e $tmp/escape.txt ]'

# 12b. a listing whose commit is ".." is refused: snapshots/.. is the repo folder itself
run org/dotsha
check '[ $rc = 1 ] && echo "$errtxt" | grep -q "not a model listing"' "$errtxt"
check '[ ! -e $HF_HUB_CACHE/models--org--dotsha/config.json ]'

# 13. usage errors exit 2
run
check '[ $rc = 2 ]'
run not-a-repo-id
check '[ $rc = 2 ] && echo "$errtxt" | grep -q "repo id"' "$errtxt"
run org/tiny --bogus
check '[ $rc = 2 ]'
for f in --include --revision --token; do # an empty value is a mistake, not "match nothing"
    run org/tiny $f ''
    check '[ $rc = 2 ] && echo "$errtxt" | grep -q -- "$f needs a value"' "$f '': $errtxt"
done

echo "$pass passed, $fail failed"
[ $fail = 0 ]
