#!/usr/bin/env bash
# test_cuda.sh — `make test-cuda`: the CUDA tests (build/cuda_test_*), on a machine with a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "test-cuda: no NVIDIA GPU here; run this on the GPU machine" >&2
    exit 1
fi
shopt -s nullglob
tests=(build/cuda_test_*)
if [ ${#tests[@]} -eq 0 ]; then
    echo "test-cuda: no CUDA tests are built (the CUDA backend's ops are not written yet)" >&2
    exit 1
fi
fail=0
for t in "${tests[@]}"; do
    echo "== $t"; "$t" || fail=1
done
exit $fail
