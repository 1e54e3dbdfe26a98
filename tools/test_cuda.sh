#!/usr/bin/env bash
# test_cuda.sh — `make test-cuda`: the CUDA tests (build/cuda_test_*, from tests/cuda/test_*.c)
# on a machine with an NVIDIA GPU: every op against the reference backend, then the tiny models
# end to end. A test that skips (77) here counts as a failure: on the GPU machine it means the
# build has no CUDA or the GPU was not found. Then run build/bench_cuda for kernel speeds.
# TALLOW_BUILD=DIR takes the programs from DIR instead of build/ (binaries built on another
# machine and copied to the GPU machine).
set -uo pipefail
cd "$(dirname "$0")/.."
b=${TALLOW_BUILD:-build}
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "test-cuda: no NVIDIA GPU here; run this on the GPU machine" >&2
    exit 1
fi
nvidia-smi -L
shopt -s nullglob
tests=("$b/cuda_test_cuda_ops" "$b/cuda_test_cuda_models")
for t in "$b"/cuda_test_*; do
    case " ${tests[*]} " in *" $t "*) ;; *) tests+=("$t") ;; esac
done
fail=0
for t in "${tests[@]}"; do
    if [ ! -x "$t" ]; then
        echo "test-cuda: $t is not built" >&2
        fail=1
        continue
    fi
    echo "== $t"
    "$t"
    rc=$?
    if [ $rc -eq 77 ]; then
        echo "test-cuda: $t skipped: is this build without CUDA (nvcc not found)?" >&2
        fail=1
    elif [ $rc -ne 0 ]; then
        echo "test-cuda: $t FAILED (exit $rc)" >&2
        fail=1
    fi
done
[ $fail -eq 0 ] && echo "test-cuda: all passed"
exit $fail
