#!/usr/bin/env bash
# setup.sh deps       — Debian packages the build needs (installed only if missing)
# setup.sh test-venv  — .venv-test with the Python packages the tests use (openai client)
# setup.sh ref-venv   — .venv with the references that make goldens (torch, transformers, mlx-lm)
# setup.sh lcpp       — .venv-lcpp with llama-cpp-python (its vendored llama.cpp compiled here,
#                       -march=native, LCPP_JOBS=2 jobs) and gguf, for tools/bench_llamacpp.py
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: installing ${missing[*]}" >&2
        local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
    fi
}

case "${1:-deps}" in
deps)
    need_pkgs build-essential cmake pkg-config libjansson-dev libpcre2-dev libutf8proc-dev \
        libmicrohttpd-dev libcurl4-openssl-dev python3 python3-venv
    ;;
test-venv)
    if [ ! -x .venv-test/bin/python ] || ! .venv-test/bin/python -c 'import openai' 2>/dev/null; then
        echo "setup: creating .venv-test (openai client for the server tests)" >&2
        python3 -m venv .venv-test >&2
        .venv-test/bin/pip install -q --disable-pip-version-check openai >&2
    fi
    ;;
fuzz)
    need_pkgs clang libclang-rt-14-dev
    ;;
ref-venv)
    if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
    .venv/bin/pip install -q --disable-pip-version-check torch transformers tokenizers jinja2 \
        numpy safetensors "mlx[cpu]" mlx-lm openai
    ;;
lcpp)
    if [ ! -x .venv-lcpp/bin/python ] || ! .venv-lcpp/bin/python -c 'import llama_cpp, gguf' 2>/dev/null; then
        echo "setup: creating .venv-lcpp (llama-cpp-python compiles llama.cpp: slow on 2 cores)" >&2
        [ -x .venv-lcpp/bin/python ] || python3 -m venv .venv-lcpp >&2
        .venv-lcpp/bin/pip install -q --disable-pip-version-check numpy gguf >&2
        CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF ${LCPP_CMAKE_ARGS:-}" \
        CMAKE_BUILD_PARALLEL_LEVEL="${LCPP_JOBS:-2}" \
            .venv-lcpp/bin/pip install --disable-pip-version-check --no-cache-dir \
            "llama-cpp-python${LCPP_VERSION:+==$LCPP_VERSION}" >&2
    fi
    ;;
*)
    echo "usage: tools/setup.sh deps|test-venv|fuzz|ref-venv|lcpp" >&2; exit 2 ;;
esac
